/**
 * The store contract for a reshard: a key's placement, and the move of its home (and index
 * entry) conditioned on where it was read.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import type { StoredKey } from '../../lib/domain/types.js';
import { byKeyId, newKeyId, PLAIN, storeContract, STORES } from '../support/store-contract.js';

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, given, stored, lease, complete, candidateIds } = storeContract(build);

  describe('placements and rehome', () => {
    it('placements: the home of each key, and the shard it is indexed in while it is', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const home = await given();
      const away = await given({ shard: 3 });
      const disabled = await given({ shard: 3, status: 'disabled' });
      const setAside = await given(PLAIN);
      await keys.setAsideUnsealed({ keyId: setAside.keyId, pool });
      // Act
      const page = await keys.placements(pool, 10);
      // Assess
      const placement = (key: StoredKey, shard: number, indexedIn: number | undefined) => ({
        keyId: key.keyId,
        pool,
        shard,
        indexedIn,
      });
      expect(page.keys).toEqual(
        byKeyId([
          placement(home, 0, 0),
          placement(away, 3, 3),
          placement(disabled, 3, undefined),
          placement(setAside, 0, undefined),
        ]),
      );
    });

    it('moves an indexed key and its index entry: a candidate of its new shard only, leased there only', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given();
      // Act
      const moved = await keys.rehome({ keyId: key.keyId, pool, from: { shard: 0, indexedIn: 0 }, to: 2 });
      // Assess
      expect(moved).toEqual({ moved: true });
      expect([await candidateIds(0), await candidateIds(2)]).toEqual([[], [key.keyId]]);
      expect((await keys.placements(pool, 10)).keys).toEqual([{ keyId: key.keyId, pool, shard: 2, indexedIn: 2 }]);
      expect((await lease(key, { shard: 0 })).granted).toBe(false);
      expect((await lease(key, { shard: 2 })).granted).toBe(true);
      expect((await stored(key.keyId)).shard).toBe(2);
    });

    it('moves only the home of a key out of the index; back in use, it is indexed at its new home', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ status: 'disabled' });
      // Act
      const moved = await keys.rehome({ keyId: key.keyId, pool, from: { shard: 0, indexedIn: undefined }, to: 3 });
      await keys.update({ keyId: key.keyId, pool, status: 'active' });
      // Assess
      expect(moved).toEqual({ moved: true });
      expect(await candidateIds(3)).toEqual([key.keyId]);
    });

    it('is refused on a placement other than the one read, and answers where the key is', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ shard: 1 });
      const now = { keyId: key.keyId, pool, shard: 1, indexedIn: 1 };
      // Act
      const notIndexed = await keys.rehome({ keyId: key.keyId, pool, from: { shard: 1, indexedIn: undefined }, to: 2 });
      const otherHome = await keys.rehome({ keyId: key.keyId, pool, from: { shard: 0, indexedIn: 1 }, to: 2 });
      const otherPool = await keys.rehome({
        keyId: key.keyId,
        pool: 'another-pool',
        from: { shard: 1, indexedIn: 1 },
        to: 2,
      });
      const unknown = await keys.rehome({ keyId: newKeyId(), pool, from: { shard: 1, indexedIn: 1 }, to: 2 });
      // Assess
      expect([notIndexed, otherHome]).toEqual([
        { moved: false, current: now },
        { moved: false, current: now },
      ]);
      expect([otherPool, unknown]).toEqual([
        { moved: false, current: undefined },
        { moved: false, current: undefined },
      ]);
    });

    it('moves a key home to shard 0 as well', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ shard: 2 });
      // Act
      const moved = await keys.rehome({ keyId: key.keyId, pool, from: { shard: 2, indexedIn: 2 }, to: 0 });
      // Assess
      expect(moved).toEqual({ moved: true });
      expect(await keys.get(key.keyId)).toEqual({ ...key, shard: undefined });
      expect(await candidateIds(0)).toEqual([key.keyId]);
    });

    it('leaves the count and the open leases alone: a lease in flight completes after the move', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given();
      const granted = await lease(key);
      if (!granted.granted) throw new Error('the lease was refused');
      // Act
      await keys.rehome({ keyId: key.keyId, pool, from: { shard: 0, indexedIn: 0 }, to: 1 });
      const completed = await complete(granted.key, '0');
      // Assess
      expect(completed).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 1, status: 'active' } });
    });
  });
});
