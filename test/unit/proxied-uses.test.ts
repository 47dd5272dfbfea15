/**
 * Proxied uses (Leasing.takeUse, settleUse, openKey) on the in-memory store with a fake clock:
 * the use taken in the lease write, settled by the outcome table's verdict with one refund at
 * most, the keys a request already tried never taken again. (The store's conditions are the
 * contract's, test/contract/proxied-uses.contract.test.ts; concurrency on DynamoDB Local is
 * test/integration/proxied-uses.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { classifyProviderAnswer } from '../../lib/domain/provider-answers.js';
import { NoUsableKey, SealingUnavailable } from '../../lib/domain/errors.js';
import { PROXIED } from '../../lib/domain/types.js';
import { Leasing } from '../../lib/use-cases/leasing.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';
import { POOL, setup, world } from '../support/memory-world.js';

const documented = (status: number, retryAfterSeconds?: number) =>
  classifyProviderAnswer({
    status,
    documented: true,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });

describe('takeUse', () => {
  it('takes the least recently used key, counting the use in the lease write and leaving no open slot', async () => {
    // Prepare
    const { leasing, store, ids } = await setup(2);
    // Act
    const use = await leasing.takeUse(POOL);
    // Assess
    expect(use).toMatchObject({ keyId: ids[0], pool: POOL, usageCount: 0, slot: 0 });
    expect(use.apiKey).toMatch(/^sk-test-unit-0000/);
    expect(store.peek(use.keyId)?.usageCount).toBe(1);
    expect(store.peek(use.keyId)?.slots['0']).toMatchObject({ nonce: use.nonce, outcome: PROXIED });
    expect(store.calls).toMatchObject({ candidates: 1, tryLease: 1 });
  });

  it('never takes a key its request already tried, and refuses with NoUsableKey when only those are left', async () => {
    // Prepare
    const { leasing, ids } = await setup(2);
    const first = await leasing.takeUse(POOL);
    // Act
    const second = await leasing.takeUse(POOL, { exclude: new Set([first.keyId]) });
    const none = leasing.takeUse(POOL, { exclude: new Set(ids) });
    // Assess
    expect(second.keyId).not.toBe(first.keyId);
    await expect(none).rejects.toBeInstanceOf(NoUsableKey);
  });

  it('a use given back ends the page the broker carries: the key is back ahead of it', async () => {
    // Prepare: the first key unused, the second used once.
    const { leasing, admin, ids } = await setup(2);
    await admin.update(POOL, ids[1] ?? '', { usageCount: 1 });
    const first = await leasing.takeUse(POOL);
    // Act: a 500 gives the use back: the first key is at 0 again.
    await leasing.settleUse(first, documented(500));
    const second = await leasing.takeUse(POOL);
    // Assess
    expect([first.keyId, second.keyId]).toEqual([ids[0], ids[0]]);
  });

  it('a use that excludes keys reads the index: a carried rest of only those keys is not a dry shard', async () => {
    // Prepare: pages of 3; the first use carries the rest of its page (the second and third keys).
    const { store, pools, sealer, clock, importKeys } = world(new MemoryKeyStore());
    const ids = await importKeys('rest', 5);
    const leasing = new Leasing({ store, pools, sealer, clock: clock.now, candidateLimit: 3 });
    await leasing.takeUse(POOL);
    // Act: a failover that already tried the second and third keys.
    const next = await leasing.takeUse(POOL, { exclude: new Set(ids.slice(1, 3)) });
    // Assess: the fourth key, from a page read for it.
    expect(next.keyId).toBe(ids[3]);
  });

  it('a page whose only candidate is a key the request tried, its other keys cooling, is not a dry shard', async () => {
    // Prepare: pages of 2. The first key is cooled by a 429; the third is used once. The second
    // key fails with a 500 and is given back: the index reads [first (cooling), second], third.
    const { store, pools, sealer, clock, admin, importKeys } = world(new MemoryKeyStore());
    const ids = await importKeys('cool', 3);
    await admin.update(POOL, ids[2] ?? '', { usageCount: 1 });
    const leasing = new Leasing({ store, pools, sealer, clock: clock.now, candidateLimit: 2 });
    clock.advance(10);
    await leasing.settleUse(await leasing.takeUse(POOL), documented(429, 60));
    clock.advance(10);
    const failed = await leasing.takeUse(POOL);
    await leasing.settleUse(failed, documented(500));
    // Act: the failover, which has tried the second key.
    const next = await leasing.takeUse(POOL, { exclude: new Set([failed.keyId]) });
    // Assess: the third key, past the page, not a 409.
    expect(failed.keyId).toBe(ids[1]);
    expect(next.keyId).toBe(ids[2]);
  });

  it("honours the cap: a key serves maxUses + 1 proxied uses, then the pool is dry; a caller's lower cap too", async () => {
    // Prepare
    const { leasing } = await setup(1);
    // Act
    const counts: number[] = [];
    for (let i = 0; i < 4; i++) counts.push((await leasing.takeUse(POOL)).usageCount);
    // Assess
    expect(counts).toEqual([0, 1, 2, 3]);
    await expect(leasing.takeUse(POOL)).rejects.toBeInstanceOf(NoUsableKey);
    await expect(leasing.takeUse(POOL, { maxUses: 9 })).rejects.toThrow(/above pool/);
  });

  it('gives the use back when the key service fails while opening the secret, and fails the call', async () => {
    // Prepare
    const { leasing, store, sealer } = await setup(1);
    sealer.unavailable = true;
    // Act
    const taking = leasing.takeUse(POOL);
    // Assess
    await expect(taking).rejects.toBeInstanceOf(SealingUnavailable);
    const [key] = (await store.poolKeys(POOL, 10)).keys;
    expect(key?.usageCount).toBe(0);
  });

  it('takes a key whose secret does not open out of the pool, gives its use back, and takes the next one', async () => {
    // Prepare
    const { leasing, store, ids } = await setup(2);
    const broken = store.peek(ids[0] ?? '');
    if (broken) broken.secret = 'not-a-sealed-secret';
    // Act
    const use = await leasing.takeUse(POOL);
    // Assess
    expect(use.keyId).toBe(ids[1]);
    expect(store.peek(ids[0] ?? '')).toMatchObject({ status: 'undecryptable', usageCount: 0 });
  });
});

describe('settleUse', () => {
  it.each([
    ['a success', classifyProviderAnswer({ status: 200, documented: false })],
    ['an unknown outcome', classifyProviderAnswer({ failed: { sent: true } })],
  ])('writes nothing for %s: the use stays counted', async (_what, verdict) => {
    // Prepare
    const { leasing, store } = await setup(1);
    const use = await leasing.takeUse(POOL);
    // Act
    await leasing.settleUse(use, verdict);
    // Assess
    expect(store.calls.refundProxied).toBeUndefined();
    expect(store.peek(use.keyId)?.usageCount).toBe(1);
  });

  it.each([
    ['a 5xx', classifyProviderAnswer({ status: 503, documented: false })],
    ['a firewall page', classifyProviderAnswer({ status: 401, documented: false })],
    ['a moderation 403', documented(403)],
    ['no connection', classifyProviderAnswer({ failed: { sent: false } })],
  ])('gives the use back for %s and leaves the status as it was', async (_what, verdict) => {
    // Prepare
    const { leasing, store } = await setup(1);
    const use = await leasing.takeUse(POOL);
    // Act
    await leasing.settleUse(use, verdict);
    // Assess
    expect(store.peek(use.keyId)).toMatchObject({ usageCount: 0, status: 'active' });
    expect(store.peek(use.keyId)?.slots['0']?.outcome).toBe('failure');
  });

  it.each([
    [401, 'suspect'],
    [402, 'exhausted'],
  ] as const)("gives the use back for a documented %i and gives the key the provider's verdict", async (status, to) => {
    // Prepare
    const { leasing, store } = await setup(1);
    const use = await leasing.takeUse(POOL);
    // Act
    await leasing.settleUse(use, documented(status));
    // Assess
    const key = store.peek(use.keyId);
    expect(key).toMatchObject({ usageCount: 0, status: to, statusBy: 'provider' });
    expect(key?.cooldownUntil).toBeUndefined();
  });

  it("cools a rate-limited key for the longer of the provider's Retry-After and the pool's cooldown", async () => {
    // Prepare
    const { leasing, store, clock, ids } = await setup(2);
    const short = await leasing.takeUse(POOL);
    const long = await leasing.takeUse(POOL);
    // Act
    await leasing.settleUse(short, documented(429, 5));
    await leasing.settleUse(long, documented(429, 600));
    // Assess
    expect(store.peek(ids[0] ?? '')).toMatchObject({ status: 'cooling', cooldownUntil: clock.now() + 60_000 });
    expect(store.peek(ids[1] ?? '')).toMatchObject({ status: 'cooling', cooldownUntil: clock.now() + 600_000 });
  });

  it('refunds once: settling the same use twice gives back one use', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const first = await leasing.takeUse(POOL);
    await leasing.takeUse(POOL);
    // Act
    await leasing.settleUse(first, documented(500));
    await leasing.settleUse(first, documented(500));
    // Assess
    expect(store.peek(first.keyId)?.usageCount).toBe(1);
  });

  it("gives the use back without the change where the key's status forbids it (an operator disabled it meanwhile)", async () => {
    // Prepare
    const { leasing, store, admin } = await setup(1);
    const use = await leasing.takeUse(POOL);
    await admin.update(POOL, use.keyId, { status: 'disabled' });
    // Act
    await leasing.settleUse(use, documented(401));
    // Assess
    expect(store.peek(use.keyId)).toMatchObject({ usageCount: 0, status: 'disabled', statusBy: 'operator' });
  });
});

describe('openKey', () => {
  it("opens a key of the pool for a poll and counts nothing; another pool's key, an unknown id or a retired key is undefined", async () => {
    // Prepare
    const { leasing, store, ids } = await setup(2);
    await store.retire({ keyId: ids[1] ?? '', pool: POOL, reason: 'retired', at: new Date(0).toISOString() });
    // Act
    const secret = await leasing.openKey(POOL, ids[0] ?? '');
    const elsewhere = await leasing.openKey('other', ids[0] ?? '');
    const unknown = await leasing.openKey(POOL, 'k_000000000000000000000000');
    const retired = await leasing.openKey(POOL, ids[1] ?? '');
    // Assess
    expect(secret).toMatch(/^sk-test-unit-0000/);
    expect([elsewhere, unknown, retired]).toEqual([undefined, undefined, undefined]);
    expect(store.peek(ids[0] ?? '')?.usageCount).toBe(0);
    expect(store.calls.tryLease).toBeUndefined();
  });
});
