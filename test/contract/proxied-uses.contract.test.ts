/**
 * Proxied uses in the store (issue 25): the lease write that takes a use with its slot written
 * closed (the PROXIED mark), and the refund that gives it back once, with the provider's status
 * change, only while the slot still holds that use.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import { reportChange } from '../../lib/domain/rules.js';
import { POOL_DEFAULTS, PROXIED, type StoredKey } from '../../lib/domain/types.js';
import type { ProxiedRefund } from '../../lib/ports/lease-store.js';
import { uniqueName } from '../support/dynamo.js';
import { iso, newNonce, storeContract, STORES, T0 } from '../support/store-contract.js';

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, given, stored, lease, candidateIds } = storeContract(build);

  /** A proxied use taken on `key` in `slot` (the write a takeUse sends); answers its nonce. */
  async function takeUse(key: StoredKey, slot = 0, fields: { seenCount?: number; maxUses?: number } = {}) {
    const nonce = newNonce();
    const result = await lease(key, { slot, nonce, proxied: true, ...fields });
    return { result, nonce };
  }

  /** The refund of the proxied use `nonce` in `slot` of `key` (a failure, no change, unless `fields` say). */
  function refund(key: StoredKey, slot: number, nonce: string, fields: Partial<ProxiedRefund> = {}) {
    return built().keys.refundProxied({
      keyId: key.keyId,
      pool: key.pool,
      slot,
      nonce,
      outcome: 'failure',
      nowMs: T0 + 1,
      ...fields,
    });
  }
  let current: ReturnType<typeof fresh> | undefined;
  const built = () => {
    if (!current) throw new Error('fresh() first');
    return current;
  };
  const freshPool = () => (current = fresh());

  it('takes a use under the cap, in the same write, with the slot marked PROXIED', async () => {
    // Prepare
    freshPool();
    const key = await given({ usageCount: 3 });
    // Act
    const { result, nonce } = await takeUse(key, 3, { maxUses: 3 });
    // Assess
    expect(result.granted).toBe(true);
    const after = await stored(key.keyId);
    expect(after.usageCount).toBe(4);
    expect(after.slots['3']).toEqual({ nonce, expiresAtMs: T0 + 60_000, outcome: PROXIED });
    expect(after.lastUsedAt).toBe(iso(T0));
  });

  it('never takes a use above the cap', async () => {
    // Prepare
    freshPool();
    const key = await given({ usageCount: 4 });
    // Act
    const { result } = await takeUse(key, 4, { maxUses: 3 });
    // Assess
    expect(result.granted).toBe(false);
    expect((await stored(key.keyId)).usageCount).toBe(4);
  });

  it('needs no completion: the next lease takes the next slot, and the slot itself is held for its refund until its expiry', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    // Act
    const sameSlot = await lease(await stored(key.keyId), { slot: 0, nowMs: T0 + 2 });
    const nextSlot = await lease(await stored(key.keyId), { slot: 1, nowMs: T0 + 2 });
    const pastExpiry = await lease(await stored(key.keyId), { slot: 0, nowMs: T0 + 60_001 });
    // Assess
    expect(sameSlot.granted).toBe(false);
    expect(nextSlot.granted).toBe(true);
    expect(pastExpiry.granted).toBe(true);
    expect((await stored(key.keyId)).usageCount).toBe(3);
    expect((await refund(key, 0, nonce, { nowMs: T0 + 60_002 })).applied).toBe(false);
  });

  it('frees its slot once given back', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    await refund(key, 0, nonce);
    // Act
    const again = await lease(await stored(key.keyId), { slot: 0, nowMs: T0 + 2 });
    // Assess
    expect(again.granted).toBe(true);
  });

  it('is not a lease a client can complete: a completion of its slot is refused', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    // Act
    const completion = await built().keys.tryComplete({
      keyId: key.keyId,
      pool: key.pool,
      slot: 0,
      nonce,
      outcome: 'failure',
      nowMs: T0 + 1,
    });
    // Assess
    expect(completion.applied).toBe(false);
    expect((await stored(key.keyId)).usageCount).toBe(1);
  });

  it('gives the use back once: a second refund changes nothing', async () => {
    // Prepare
    freshPool();
    const key = await given({ usageCount: 2 });
    const { nonce } = await takeUse(key, 2);
    // Act
    const first = await refund(key, 2, nonce, { outcome: 'failure' });
    const second = await refund(key, 2, nonce, { outcome: 'failure' });
    // Assess
    expect(first).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 2, status: 'active' } });
    expect(second.applied).toBe(false);
    const after = await stored(key.keyId);
    expect(after.usageCount).toBe(2);
    expect(after.slots['2']?.outcome).toBe('failure');
  });

  it('moves the usage sort key back with the refund: the key sorts at its count again', async () => {
    // Prepare: `refunded` was imported first, `other` has one use less than `refunded` will have
    freshPool();
    const refunded = await given({ createdAt: iso(T0 - 20_000) });
    const other = await given({ usageCount: 1, lastUsedAt: iso(T0 - 5_000) });
    const { nonce } = await takeUse(refunded, 0);
    const before = await candidateIds(0, 3, T0 + 1);
    // Act
    await refund(refunded, 0, nonce);
    // Assess
    expect(before).toEqual([other.keyId, refunded.keyId]);
    expect(await candidateIds(0, 3, T0 + 2)).toEqual([refunded.keyId, other.keyId]);
  });

  it('refuses a refund after the slot was leased again (past its expiry): the use stays counted', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    await lease(await stored(key.keyId), { slot: 0, nowMs: T0 + 60_001 });
    // Act
    const late = await refund(key, 0, nonce, { nowMs: T0 + 60_002 });
    // Assess
    expect(late.applied).toBe(false);
    expect((await stored(key.keyId)).usageCount).toBe(2);
  });

  it('refuses a refund of an open lease: only a proxied use is given back this way', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const nonce = newNonce();
    await lease(key, { slot: 0, nonce });
    // Act
    const wrong = await refund(key, 0, nonce);
    // Assess
    expect(wrong.applied).toBe(false);
    expect((await stored(key.keyId)).slots['0']?.outcome).toBeUndefined();
    expect((await stored(key.keyId)).usageCount).toBe(1);
  });

  it("refuses a refund named under another pool, and changes nothing of the key's", async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    const change = reportChange('invalid_key', 'provider', POOL_DEFAULTS, undefined, T0 + 1);
    // Act
    const crossed = await refund(key, 0, nonce, { pool: uniqueName('other'), outcome: 'invalid_key', change });
    // Assess
    expect(crossed.applied).toBe(false);
    const after = await stored(key.keyId);
    expect(after).toMatchObject({ usageCount: 1, status: 'active' });
    expect(after.slots['0']?.outcome).toBe(PROXIED);
  });

  it("gives the key the provider's status in the same write: invalid_key is suspect by provider, out of the index", async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    const change = reportChange('invalid_key', 'provider', POOL_DEFAULTS, undefined, T0 + 1);
    // Act
    const result = await refund(key, 0, nonce, { outcome: 'invalid_key', change });
    // Assess
    expect(result).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 0, status: 'suspect' } });
    expect(await stored(key.keyId)).toMatchObject({
      status: 'suspect',
      statusBy: 'provider',
      statusReason: 'invalid_key',
      usageCount: 0,
    });
    expect(await candidateIds(0, 3, T0 + 2)).toEqual([]);
  });

  it('cools a rate_limited key for the longer of Retry-After and the pool cooldown, by provider', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    const change = reportChange('rate_limited', 'provider', POOL_DEFAULTS, 120, T0 + 1);
    // Act
    const result = await refund(key, 0, nonce, { outcome: 'rate_limited', change });
    // Assess
    expect(result).toEqual({
      applied: true,
      key: { keyId: key.keyId, usageCount: 0, status: 'cooling', cooldownUntil: T0 + 1 + 120_000 },
    });
    expect(await stored(key.keyId)).toMatchObject({ status: 'cooling', statusBy: 'provider' });
  });

  it("refuses a change the key's status forbids (an operator's disabled), leaving the use taken for a refund alone", async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    await built().keys.update({ keyId: key.keyId, pool: key.pool, status: 'disabled', at: iso(T0) });
    const change = reportChange('out_of_credits', 'provider', POOL_DEFAULTS, undefined, T0 + 1);
    // Act
    const withChange = await refund(key, 0, nonce, { outcome: 'out_of_credits', change });
    const alone = await refund(key, 0, nonce, { outcome: 'out_of_credits' });
    // Assess
    expect(withChange.applied).toBe(false);
    expect(alone).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 0, status: 'disabled' } });
    expect(await stored(key.keyId)).toMatchObject({ status: 'disabled', statusBy: 'operator' });
  });

  it('marks a key undecryptable together with the refund of the proxied use just taken', async () => {
    // Prepare
    freshPool();
    const key = await given();
    const { nonce } = await takeUse(key, 0);
    // Act
    const marked = await built().keys.markUndecryptable({
      keyId: key.keyId,
      pool: key.pool,
      sealed: key.secret,
      lease: { slot: 0, nonce, proxied: true },
    });
    // Assess
    expect(marked).toBe(true);
    expect(await stored(key.keyId)).toMatchObject({ status: 'undecryptable', usageCount: 0 });
    expect((await stored(key.keyId)).slots['0']?.outcome).toBe('failure');
  });
});
