/**
 * The store contract for sealed secrets: a key whose secret does not open taken out of use, a
 * plain key set aside until it is sealed, and reseal's conditional replacement of a secret.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import type { KeyStore } from '../../lib/ports/key-store.js';
import type { SecretReplacement } from '../../lib/ports/reseal-store.js';
import type { StoredKey } from '../../lib/domain/types.js';
import { MAX_SORTED_COUNT } from '../../lib/table.js';
import { iso, newNonce, openSlot, PLAIN, storeContract, STORES, T0 } from '../support/store-contract.js';

/** A key's rest as a StatusStamp names it. */
const until = (rest: { cooldownUntil?: number }) =>
  rest.cooldownUntil === undefined ? {} : { until: rest.cooldownUntil };

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, storedKey, given, stored, candidateIds } = storeContract(build);

  describe('markUndecryptable', () => {
    it('takes the key out of use, only while it holds the ciphertext that failed, and only in its pool', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ status: 'cooling', cooldownUntil: T0 + 1 });
      const mark = { keyId: key.keyId, pool, sealed: key.secret };
      // Act
      const otherCiphertext = await keys.markUndecryptable({ ...mark, sealed: 'sealed-other' });
      const otherPool = await keys.markUndecryptable({ ...mark, pool: 'another-pool' });
      const marked = await keys.markUndecryptable(mark);
      // Assess
      expect([otherCiphertext, otherPool, marked]).toEqual([false, false, true]);
      const after = await stored(key.keyId);
      expect(after).toMatchObject({ status: 'undecryptable', usageCount: 0 });
      expect(after.cooldownUntil).toBeUndefined();
      expect(await candidateIds(0, 3, T0 + 2)).toEqual([]);
    });

    it('with the lease just written, ends it and gives its use back, once', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: 1, slots: { '0': openSlot() } });
      const mark = { keyId: key.keyId, pool, sealed: key.secret };
      const nonce = key.slots['0']?.nonce ?? '';
      // Act
      const otherLease = await keys.markUndecryptable({ ...mark, lease: { slot: 0, nonce: newNonce() } });
      const marked = await keys.markUndecryptable({ ...mark, lease: { slot: 0, nonce } });
      const again = await keys.markUndecryptable({ ...mark, lease: { slot: 0, nonce } });
      // Assess
      expect([otherLease, marked, again]).toEqual([false, true, false]);
      const after = await stored(key.keyId);
      expect(after).toMatchObject({ status: 'undecryptable', usageCount: 0 });
      expect(after.slots['0']?.outcome).toBe('failure');
    });

    it('gives a use back from past the top sort tier, the key staying sorted above every cap', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ usageCount: MAX_SORTED_COUNT + 1, slots: { '0': openSlot() } });
      const nonce = key.slots['0']?.nonce ?? '';
      // Act
      const marked = await keys.markUndecryptable({
        keyId: key.keyId,
        pool,
        sealed: key.secret,
        lease: { slot: 0, nonce },
      });
      await keys.update({ keyId: key.keyId, pool, status: 'active' });
      // Assess
      expect(marked).toBe(true);
      expect((await stored(key.keyId)).usageCount).toBe(MAX_SORTED_COUNT);
      expect(await candidateIds(0, MAX_SORTED_COUNT - 1)).toEqual([]);
    });

    it('does not mark a key whose secret is in plain text', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const plain = await given(PLAIN);
      // Act
      const marked = await keys.markUndecryptable({ keyId: plain.keyId, pool, sealed: plain.secret });
      // Assess
      expect(marked).toBe(false);
      expect(await keys.get(plain.keyId)).toEqual(plain);
    });
  });

  describe('setAsideUnsealed', () => {
    it('takes a plain key out of the candidates, once', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const plain = await given(PLAIN);
      const before = await candidateIds();
      // Act
      const first = await keys.setAsideUnsealed({ keyId: plain.keyId, pool });
      const second = await keys.setAsideUnsealed({ keyId: plain.keyId, pool });
      // Assess
      expect(before).toEqual([plain.keyId]);
      expect([first, second]).toEqual([true, false]);
      expect(await candidateIds()).toEqual([]);
      expect(await keys.get(plain.keyId)).toEqual(plain);
    });

    it("refuses a sealed key, another pool's name and a plain key out of the index", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const sealed = await given();
      const plain = await given({ ...PLAIN, secret: 'sk-test-plain-1111111111111111' });
      const disabled = await given({ ...PLAIN, secret: 'sk-test-plain-2222222222222222', status: 'disabled' });
      // Act
      const results = [
        await keys.setAsideUnsealed({ keyId: sealed.keyId, pool }),
        await keys.setAsideUnsealed({ keyId: plain.keyId, pool: 'another-pool' }),
        await keys.setAsideUnsealed({ keyId: disabled.keyId, pool }),
      ];
      // Assess
      expect(results).toEqual([false, false, false]);
      expect((await candidateIds()).sort()).toEqual([sealed.keyId, plain.keyId].sort());
    });
  });

  describe('replaceSecret', () => {
    /** reseal's write for `key` as read (sealed or plain): the secret replaced by `sealed-now`. */
    const reseal = (keys: KeyStore, key: StoredKey, fields: Partial<SecretReplacement> = {}) =>
      keys.replaceSecret({
        keyId: key.keyId,
        pool: key.pool,
        from: { secret: key.secret, sealed: key.sealed },
        sealed: 'sealed-now',
        revive: false,
        ...fields,
      });

    it('replaces the secret as read, only that one, and only in its pool', async () => {
      // Prepare
      const { keys } = fresh();
      const key = await given();
      // Act
      const otherPool = await reseal(keys, key, { pool: 'another-pool' });
      const replaced = await reseal(keys, key);
      const stale = await reseal(keys, key, { sealed: 'sealed-newer' });
      // Assess
      expect([otherPool, replaced, stale]).toEqual([false, true, false]);
      expect(await keys.get(key.keyId)).toEqual({ ...key, secret: 'sealed-now' });
    });

    it('seals a plain secret, and puts a key a lease set aside back at its home while its status is the one seen', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const plain = await given({ ...PLAIN, shard: 2 });
      await keys.setAsideUnsealed({ keyId: plain.keyId, pool });
      // Act
      const sealed = await reseal(keys, plain, { seenStatus: 'active' });
      // Assess
      expect(sealed).toBe(true);
      expect(await keys.get(plain.keyId)).toEqual({ ...plain, secret: 'sealed-now', sealed: true });
      expect(await candidateIds(2)).toEqual([plain.keyId]);
    });

    it('leaves a set-aside key out, and its secret as it was, when its status changed since it was read', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const plain = await given(PLAIN);
      await keys.setAsideUnsealed({ keyId: plain.keyId, pool });
      await keys.update({ keyId: plain.keyId, pool, status: 'disabled' });
      // Act
      const sealed = await reseal(keys, plain, { seenStatus: 'active' });
      // Assess
      expect(sealed).toBe(false);
      expect(await keys.get(plain.keyId)).toMatchObject({ sealed: false, status: 'disabled' });
    });

    it('writes the mask given only where the key has none', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const masked = await given({ ...PLAIN, maskedKey: 'sk-...0000' });
      const { maskedKey: _none, ...unmasked } = storedKey({ ...PLAIN, secret: 'sk-test-plain-1111111111111111' });
      await keys.insert(unmasked as StoredKey);
      // Act
      const results = [
        await reseal(keys, masked, { maskedKey: 'sk-...given' }),
        await reseal(keys, unmasked as StoredKey, { maskedKey: 'sk-...given' }),
      ];
      // Assess
      expect(results).toEqual([true, true]);
      expect((await keys.record(pool, masked.keyId))?.maskedKey).toBe('sk-...0000');
      expect((await keys.record(pool, unmasked.keyId))?.maskedKey).toBe('sk-...given');
    });

    it.each([
      ['disabled', {}],
      ['exhausted', {}],
      ['suspect', {}],
      ['cooling', { cooldownUntil: T0 + 9_000 }],
    ] as const)('a %s key marked undecryptable comes back as it was when reseal revives it', async (status, rest) => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given({ status, ...rest });
      await keys.markUndecryptable({ keyId: key.keyId, pool, sealed: key.secret });
      const marked = await stored(key.keyId);
      // Act
      const revived = await reseal(keys, marked, { revive: true, ...(marked.prior ? { prior: marked.prior } : {}) });
      // Assess
      expect(marked).toMatchObject({ status: 'undecryptable', statusBy: 'sealing', prior: { status, ...until(rest) } });
      expect(revived).toBe(true);
      const after = await stored(key.keyId);
      expect(after).toMatchObject({ status, ...rest });
      expect(after.prior).toBeUndefined();
      expect(await candidateIds(0, 3, T0 + 9_000)).toEqual(status === 'cooling' ? [key.keyId] : []);
    });

    it('revives an undecryptable key that opens again, back at its home; a key of any other status is not revived', async () => {
      // Prepare
      const { keys } = fresh();
      const lost = await given({ status: 'undecryptable', shard: 1, createdAt: iso(T0 - 20_000) });
      const active = await given({ shard: 1 });
      // Act
      const results = [await reseal(keys, lost, { revive: true }), await reseal(keys, active, { revive: true })];
      // Assess
      expect(results).toEqual([true, false]);
      expect(await keys.get(lost.keyId)).toEqual({ ...lost, status: 'active', secret: 'sealed-now' });
      expect(await candidateIds(1)).toEqual([lost.keyId, active.keyId]);
    });
  });
});
