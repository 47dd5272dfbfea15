/**
 * The store contract for retirements and what a dry pool's refusal reads: retiring a key (its
 * secret removed, its record kept, out of the lease's reach), an open lease of it completing,
 * an import reviving it, the key states a count reads, and a pool record's deletion.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import { withoutSecret } from '../../lib/domain/keys.js';
import { reportChange } from '../../lib/domain/rules.js';
import { POOL_DEFAULTS } from '../../lib/domain/types.js';
import { uniqueName } from '../support/dynamo.js';
import { iso, newKeyId, openSlot, PLAIN, storeContract, STORES, T0 } from '../support/store-contract.js';

const RETIRED_BY = { status: 'retired', statusBy: 'operator', statusReason: 'retired', statusAt: iso(T0) } as const;

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, storedKey, given, stored, lease, complete, candidateIds } = storeContract(build);

  describe('retire', () => {
    it('keeps the record (id, mask, label, counts, who and when), removes the secret and takes the key out of the candidates', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ label: 'old', usageCount: 2, status: 'cooling', cooldownUntil: T0 + 9_000 });
      // Act
      const result = await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      // Assess
      const { cooldownUntil: _gone, ...record } = withoutSecret(key);
      expect(result).toEqual({ retired: true, key: { ...record, ...RETIRED_BY } });
      expect(await keys.record(pool, key.keyId)).toEqual({ ...record, ...RETIRED_BY });
      const after = await stored(key.keyId);
      expect([after.secret, after.sealed]).toEqual(['', false]);
      expect(await candidateIds(0, 3, T0 + 10_000)).toEqual([]);
      expect((await lease(after, { seenCount: 2, nowMs: T0 + 10_000 })).granted).toBe(false);
    });

    it('is listed with its pool for the audit, but in no page of secrets (reseal and maintenance never see it)', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const retired = await given();
      const kept = await given();
      // Act
      await keys.retire({ keyId: retired.keyId, pool, at: iso(T0), reason: 'pool_deleted' });
      // Assess
      const listed = (await keys.poolKeys(pool, 10)).keys.map((k) => [k.keyId, k.status]);
      expect(listed.sort()).toEqual(
        [
          [retired.keyId, 'retired'],
          [kept.keyId, 'active'],
        ].sort(),
      );
      expect((await keys.poolKeysWithSecrets(pool, 10)).keys).toEqual([kept]);
    });

    it.each([
      ['disabled', { status: 'disabled', statusBy: 'operator', statusReason: 'operator', statusAt: iso(T0 - 5) }],
      ['undecryptable', { status: 'undecryptable', statusBy: 'sealing', prior: { status: 'active' } }],
    ] as const)('retires a %s key too, its history and secret gone', async (_label, fields) => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given(fields);
      // Act
      const result = await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      // Assess
      expect(result.retired).toBe(true);
      const after = await stored(key.keyId);
      expect(after).toMatchObject({ ...RETIRED_BY, secret: '', sealed: false });
      expect(after.prior).toBeUndefined();
    });

    it('refuses a key still in plain text (its secret waits for a reseal): nothing changes', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given(PLAIN);
      // Act
      const result = await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      // Assess
      expect(result).toEqual({ retired: false, current: withoutSecret(key) });
      expect(await stored(key.keyId)).toEqual(key);
    });

    it('once: a second retirement writes nothing and shows the first; nothing for another pool or an unknown key', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given();
      await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      // Act
      const again = await keys.retire({ keyId: key.keyId, pool, at: iso(T0 + 5_000), reason: 'pool_deleted' });
      const otherPool = await keys.retire({ keyId: key.keyId, pool: 'another-pool', at: iso(T0), reason: 'retired' });
      const unknown = await keys.retire({ keyId: newKeyId(), pool, at: iso(T0), reason: 'retired' });
      // Assess
      expect(again).toEqual({ retired: false, current: { ...withoutSecret(key), ...RETIRED_BY } });
      expect([otherPool, unknown]).toEqual([
        { retired: false, current: undefined },
        { retired: false, current: undefined },
      ]);
    });
  });

  describe('an open lease of a retired key', () => {
    it('completes: success keeps its use counted, a failure gives it back, the key stays retired', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: 2, slots: { '0': openSlot(), '1': openSlot() } });
      await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      // Act
      const success = await complete(key, '0');
      const failure = await complete(key, '1', { outcome: 'failure' });
      // Assess
      expect(success).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 2, status: 'retired' } });
      expect(failure).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 1, status: 'retired' } });
      expect(await candidateIds()).toEqual([]);
    });

    it("refuses a report's status change (the use case completes it without one): a retired key stays retired", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: 1, slots: { '0': openSlot() } });
      await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      const change = reportChange('rate_limited', 'client', POOL_DEFAULTS, 30, T0 + 1);
      // Act
      const withChange = await complete(key, '0', { outcome: 'rate_limited', ...(change ? { change } : {}) });
      const without = await complete(key, '0', { outcome: 'rate_limited' });
      // Assess
      expect(withChange.applied).toBe(false);
      expect(without).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 0, status: 'retired' } });
    });
  });

  describe('revive', () => {
    it('brings a retired key back sealed anew, active, its count kept, into the candidates of its pool', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: 2, label: 'old' });
      await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'retired' });
      // Act
      const result = await keys.revive(storedKey({ keyId: key.keyId, secret: 'sealed-anew', label: 'new' }), pool);
      // Assess
      expect(result).toEqual({ revived: true, key: { ...withoutSecret(key), label: 'new' } });
      expect(await stored(key.keyId)).toMatchObject({ status: 'active', secret: 'sealed-anew', sealed: true });
      expect(await candidateIds()).toEqual([key.keyId]);
      expect((await lease(await stored(key.keyId))).granted).toBe(true);
    });

    it("into another pool: the key is that pool's now, at its home shard there", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: 1, shard: 2 });
      await keys.retire({ keyId: key.keyId, pool, at: iso(T0), reason: 'pool_deleted' });
      const other = uniqueName('contract');
      // Act
      const result = await keys.revive(storedKey({ keyId: key.keyId, pool: other, shard: 1 }), pool);
      // Assess
      expect(result.revived).toBe(true);
      expect(await keys.record(pool, key.keyId)).toBeUndefined();
      expect(await keys.record(other, key.keyId)).toMatchObject({ pool: other, status: 'active', usageCount: 1 });
      expect((await keys.candidates(other, 1, 3, 25, T0)).candidates.map((c) => c.keyId)).toEqual([key.keyId]);
    });

    it('writes nothing for a key that is not retired, or not where it was seen', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const active = await given();
      const retired = await given();
      await keys.retire({ keyId: retired.keyId, pool, at: iso(T0), reason: 'retired' });
      // Act
      const notRetired = await keys.revive(storedKey({ keyId: active.keyId, secret: 'sealed-anew' }), pool);
      const elsewhere = await keys.revive(storedKey({ keyId: retired.keyId }), 'another-pool');
      // Assess
      expect(notRetired).toEqual({ revived: false, key: withoutSecret(active) });
      expect(elsewhere.revived).toBe(false);
      expect(await stored(active.keyId)).toEqual(active);
      expect((await stored(retired.keyId)).status).toBe('retired');
    });
  });

  describe('key states', () => {
    it("read each key's status, count and rest a page at a time, never its secret", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const written = [
        await given({ usageCount: 4 }),
        await given({ status: 'cooling', cooldownUntil: T0 + 5_000 }),
        await given({ status: 'disabled' }),
      ];
      await keys.insert(storedKey({ pool: uniqueName('other') }));
      // Act
      const first = await keys.keyStates(pool, 2);
      const rest = await keys.keyStates(pool, 2, first.lastKeyId);
      // Assess
      const states = [...first.keys, ...rest.keys].map((k) => ({ ...k }));
      const expected = written
        .map(({ keyId, status, usageCount, cooldownUntil }) => ({
          keyId,
          status,
          usageCount,
          ...(cooldownUntil === undefined ? {} : { cooldownUntil }),
        }))
        .sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
      expect(
        states.map(({ keyId, status, usageCount, cooldownUntil }) => ({
          keyId,
          status,
          usageCount,
          ...(cooldownUntil === undefined ? {} : { cooldownUntil }),
        })),
      ).toEqual(expected);
      expect(rest.lastKeyId).toBeUndefined();
      expect(JSON.stringify(states)).not.toContain('sealed-');
    });
  });

  describe('a pool record', () => {
    it('is deleted once; a second delete answers false; its keys stay', async () => {
      // Prepare
      const { pools, keys, pool } = fresh();
      await pools.put(pool, {}, iso(T0));
      const key = await given();
      // Act
      const first = await pools.remove(pool);
      const second = await pools.remove(pool);
      // Assess
      expect([first, second]).toEqual([true, false]);
      expect(await pools.get(pool)).toBeUndefined();
      expect(await keys.record(pool, key.keyId)).toEqual(withoutSecret(key));
    });
  });
});
