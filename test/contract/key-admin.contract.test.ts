/**
 * The store contract for an operator's keys: import's insert, the reads, an operator's status
 * and count, and a pool's pages.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import { withoutSecret } from '../../lib/domain/keys.js';
import { MAX_SORTED_COUNT } from '../../lib/table.js';
import { uniqueName } from '../support/dynamo.js';
import { byKeyId, iso, newKeyId, openSlot, PLAIN, storeContract, STORES, T0 } from '../support/store-contract.js';

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, storedKey, given, lease, complete, candidateIds } = storeContract(build);

  describe('insert and reads', () => {
    it('insert stores a new key and answers its record without the secret; get reads it back whole', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = storedKey({ label: 'ops', shard: 2, slots: { '3': openSlot() } });
      // Act
      const inserted = await keys.insert(key);
      // Assess
      expect(inserted).toEqual({ inserted: true, key: withoutSecret(key) });
      expect(await keys.get(key.keyId)).toEqual(key);
      expect(await keys.record(pool, key.keyId)).toEqual(withoutSecret(key));
    });

    it('a second insert of the same id changes nothing and answers the key as stored', async () => {
      // Prepare
      const { keys } = fresh();
      const first = await given({ label: 'first' });
      // Act
      const again = await keys.insert({ ...first, label: 'second', usageCount: 2, secret: 'sealed-other' });
      // Assess
      expect(again).toEqual({ inserted: false, key: withoutSecret(first) });
      expect(await keys.get(first.keyId)).toEqual(first);
    });

    it("record finds no key under another pool's name; get and record find no unknown id", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given();
      // Act / Assess
      expect(await keys.record('another-pool', key.keyId)).toBeUndefined();
      expect(await keys.get(newKeyId())).toBeUndefined();
      expect(await keys.record(pool, newKeyId())).toBeUndefined();
    });
  });

  describe("an operator's update", () => {
    it('disabled takes the key out of the candidates and ends its cooldown; active puts it back at its home', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ status: 'cooling', cooldownUntil: T0 + 9_000, shard: 1 });
      // Act
      const disabled = await keys.update({ keyId: key.keyId, pool, status: 'disabled', at: iso(T0) });
      const whileDisabled = await candidateIds(1, 3, T0 + 9_000);
      const active = await keys.update({ keyId: key.keyId, pool, status: 'active' });
      // Assess
      const { cooldownUntil: _gone, ...record } = withoutSecret(key);
      const byOperator = { statusBy: 'operator', statusReason: 'operator', statusAt: iso(T0) };
      expect(disabled).toEqual({ applied: true, key: { ...record, status: 'disabled', ...byOperator } });
      expect(whileDisabled).toEqual([]);
      expect(active).toEqual({ applied: true, key: { ...record, status: 'active' } });
      expect(await candidateIds(1)).toEqual([key.keyId]);
    });

    it.each(['suspect', 'exhausted', 'undecryptable'] as const)(
      'active brings a %s key back into use',
      async (status) => {
        // Prepare
        const { keys, pool } = fresh();
        const key = await given({ status });
        // Act
        await keys.update({ keyId: key.keyId, pool, status: 'active' });
        // Assess
        expect(await candidateIds()).toEqual([key.keyId]);
        expect((await lease(key)).granted).toBe(true);
      },
    );

    it('active brings back into the index a plain key a lease set aside', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const plain = await given(PLAIN);
      await keys.setAsideUnsealed({ keyId: plain.keyId, pool });
      // Act
      await keys.update({ keyId: plain.keyId, pool, status: 'active' });
      // Assess
      expect(await candidateIds()).toEqual([plain.keyId]);
    });

    it('a new count applies only from the count seen, keeps the key where it was among its count, and ends its open leases', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const reset = await given({ usageCount: 2, slots: { '0': openSlot() }, createdAt: iso(T0 - 9_000) });
      const other = await given({ createdAt: iso(T0 - 1_000) });
      // Act
      const stale = await keys.update({ keyId: reset.keyId, pool, count: { seen: 1, to: 0 } });
      const applied = await keys.update({ keyId: reset.keyId, pool, count: { seen: 2, to: 0 } });
      const late = await complete(reset, '0', { outcome: 'failure' });
      // Assess
      expect(stale).toEqual({ applied: false, current: withoutSecret(reset) });
      expect(applied).toEqual({ applied: true, key: { ...withoutSecret(reset), usageCount: 0 } });
      expect(late).toEqual({ applied: false, current: { ...withoutSecret(reset), usageCount: 0, slots: {} } });
      expect(await candidateIds(0, 0)).toEqual([reset.keyId, other.keyId]);
    });

    it('a new count sorts by whole tiers, past the top one too', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const high = await given({ usageCount: 5_000 });
      const low = await given();
      // Act
      await keys.update({ keyId: high.keyId, pool, count: { seen: 5_000, to: 0 } });
      await keys.update({ keyId: low.keyId, pool, count: { seen: 0, to: 5_000 } });
      // Assess
      expect(await candidateIds(0, 0)).toEqual([high.keyId]);
      expect(await candidateIds(0, MAX_SORTED_COUNT - 1)).toEqual([high.keyId]);
    });

    it('both at once, and nothing for a key of another pool or an unknown one', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: 3, status: 'exhausted' });
      // Act
      const both = await keys.update({ keyId: key.keyId, pool, status: 'active', count: { seen: 3, to: 1 } });
      const otherPool = await keys.update({ keyId: key.keyId, pool: 'another-pool', status: 'disabled' });
      const unknown = await keys.update({ keyId: newKeyId(), pool, status: 'disabled' });
      // Assess
      expect(both).toEqual({ applied: true, key: { ...withoutSecret(key), status: 'active', usageCount: 1 } });
      expect([otherPool, unknown]).toEqual([
        { applied: false, current: undefined },
        { applied: false, current: undefined },
      ]);
      expect(await candidateIds(0, 1)).toEqual([key.keyId]);
    });

    it("an enable from a status and setter applies only while the key still has both: an operator's disabled is left alone", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const stamp = { statusReason: 'provider_rejected', statusAt: iso(T0) } as const;
      const byProvider = await given({ status: 'disabled', statusBy: 'provider', ...stamp });
      const byOperator = await given({ status: 'disabled', statusBy: 'operator', statusReason: 'operator' });
      const legacy = await given({ status: 'disabled' });
      const from = { status: 'disabled', by: 'provider' } as const;
      // Act
      const results = await Promise.all(
        [byProvider, byOperator, legacy].map((key) => keys.update({ keyId: key.keyId, pool, status: 'active', from })),
      );
      // Assess
      expect(results.map((r) => r.applied)).toEqual([true, false, false]);
      expect(await keys.record(pool, byProvider.keyId)).toMatchObject({ status: 'active' });
      expect((await keys.record(pool, byProvider.keyId))?.statusBy).toBeUndefined();
      expect(await keys.record(pool, byOperator.keyId)).toEqual(withoutSecret(byOperator));
      expect(await keys.record(pool, legacy.keyId)).toEqual(withoutSecret(legacy));
      expect(await candidateIds(0, 1)).toEqual([byProvider.keyId]);
    });
  });

  describe("a pool's pages", () => {
    it("read the pool's keys in id order a page at a time, to the end, and none of another pool", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const written = [];
      for (let i = 0; i < 5; i++) written.push(await given({ usageCount: i }));
      await keys.insert(storedKey({ pool: uniqueName('other') }));
      const ids = written.map((k) => k.keyId).sort();
      // Act
      const pages = [];
      let after: string | undefined;
      do {
        const page = await keys.poolKeys(pool, 2, after);
        pages.push(page.keys.map((k) => k.keyId));
        after = page.lastKeyId;
      } while (after !== undefined);
      const last = await keys.poolKeys(pool, 10);
      // Assess
      expect(pages).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
      expect(last).toEqual({
        keys: byKeyId(written).map(withoutSecret),
        lastKeyId: undefined,
      });
    });

    it('a full page names its last key (more may follow), even at the end of the pool; the read after it is empty', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await given()).keyId);
      ids.sort();
      // Act
      const first = await keys.poolKeys(pool, 2);
      const second = await keys.poolKeys(pool, 2, first.lastKeyId);
      const after = await keys.poolKeys(pool, 2, second.lastKeyId);
      // Assess
      expect([first.lastKeyId, second.lastKeyId]).toEqual([ids[1], ids[3]]);
      expect(after).toEqual({ keys: [], lastKeyId: undefined });
    });

    it('with secrets: each key whole, as get reads it', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ slots: { '1': openSlot() }, shard: 3 });
      // Act
      const page = await keys.poolKeysWithSecrets(pool, 10);
      // Assess
      expect(page).toEqual({ keys: [key], lastKeyId: undefined });
    });
  });
});
