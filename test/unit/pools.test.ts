/**
 * Pools are the operator's objects: their policy is the cap and the TTL, a key belongs to one
 * pool, no client report takes a key away for good, the operator can reset a count, and
 * Retry-After travels both ways. On the in-memory stores with a fake clock; the same rules on
 * DynamoDB Local and over HTTP are in test/integration and test/http.
 */
import { describe, expect, it } from 'vitest';
import { InvalidRequest, KeyNotFound, LeaseNotFound, NoUsableKey, PoolNotFound } from '../../lib/domain/errors.js';
import type { LeaseAttempt, LeaseAttemptResult } from '../../lib/ports/lease-store.js';
import { POLICY_CACHE_MS, PoolDirectory } from '../../lib/use-cases/pool-directory.js';
import { Leasing, PAGE_REUSE_MS } from '../../lib/use-cases/leasing.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';
import { POOL, setup, world } from '../support/memory-world.js';
import { FakeSealer } from '../support/fake-sealer.js';

describe("the pool's policy", () => {
  it("refuses a lease that asks for more than the pool's cap, naming the cap; a lower cap is honoured", async () => {
    // Prepare
    const { leasing, poolAdmin } = await setup(1);
    await poolAdmin.set(POOL, { maxUses: 2 });
    // Act
    const above = leasing.lease(POOL, { maxUses: 1000 });
    const lower = await leasing.lease(POOL, { maxUses: 0 });
    // Assess
    await expect(above).rejects.toThrow(InvalidRequest);
    await expect(above).rejects.toThrow(/cap of 2/);
    expect(lower.usageCount).toBe(0);
  });

  it('the cap holds without a caller saying anything: a key at the cap is not leased again', async () => {
    // Prepare: cap 1 means counts 0 and 1 are usable: two uses.
    const { leasing, poolAdmin } = await setup(1);
    await poolAdmin.set(POOL, { maxUses: 1 });
    // Act
    const uses = [await leasing.lease(POOL), await leasing.lease(POOL)];
    // Assess
    expect(uses.map((g) => g.usageCount)).toEqual([0, 1]);
    await expect(leasing.lease(POOL)).rejects.toBeInstanceOf(NoUsableKey);
  });

  it("refuses a TTL above the pool's leaseTtlSeconds; the default is the pool's", async () => {
    // Prepare
    const { leasing, poolAdmin, clock } = await setup(2);
    await poolAdmin.set(POOL, { leaseTtlSeconds: 30 });
    // Act / Assess
    await expect(leasing.lease(POOL, { ttlSeconds: 31 })).rejects.toThrow(/leaseTtlSeconds of 30/);
    const grant = await leasing.lease(POOL);
    expect(Date.parse(grant.expiresAt) - clock.now()).toBe(30_000);
  });

  it('a pool that does not exist answers PoolNotFound on every path', async () => {
    // Prepare
    const { leasing, admin } = await setup(1);
    // Act / Assess
    await expect(leasing.lease('nope')).rejects.toBeInstanceOf(PoolNotFound);
    await expect(leasing.complete('nope', 'k_000000000000000000000000.0.1.0000000000000000')).rejects.toBeInstanceOf(
      PoolNotFound,
    );
    await expect(leasing.increment('nope', 'k_000000000000000000000000')).rejects.toBeInstanceOf(PoolNotFound);
    await expect(admin.list('nope')).rejects.toBeInstanceOf(PoolNotFound);
    await expect(admin.update('nope', 'k_000000000000000000000000', { status: 'disabled' })).rejects.toBeInstanceOf(
      PoolNotFound,
    );
  });

  it('reads a pool once per cache period, not once per lease; a change from elsewhere lands within the period', async () => {
    // Prepare: a second process (its own directory) over the same pool store changes the cap.
    const { leasing, poolStore, clock } = await setup(10);
    await leasing.lease(POOL);
    const reads = poolStore.gets;
    // Act
    for (let i = 0; i < 5; i++) await leasing.lease(POOL);
    const readsForFiveLeases = poolStore.gets - reads;
    await poolStore.put(POOL, { maxUses: 0 }, new Date(clock.now()).toISOString());
    const withinPeriod = await leasing.lease(POOL, { maxUses: 3 });
    clock.advance(POLICY_CACHE_MS + 1);
    const afterPeriod = leasing.lease(POOL, { maxUses: 3 });
    // Assess: no read per lease; the old cap served until the period ended, the new one after.
    expect(readsForFiveLeases).toBe(0);
    expect(withinPeriod.usageCount).toBe(0);
    await expect(afterPeriod).rejects.toThrow(/cap of 0/);
  });
});

describe('a key belongs to one pool', () => {
  it("another pool's lease or key is not found under this pool's name, and is left untouched", async () => {
    // Prepare
    const { leasing, admin, keyImport, store } = await setup(1);
    await keyImport.importKeys('other', [{ apiKey: 'sk-test-other-pool-key-0001' }]);
    const grant = await leasing.lease(POOL);
    // Act / Assess
    await expect(leasing.complete('other', grant.leaseId, { outcome: 'failure' })).rejects.toBeInstanceOf(
      LeaseNotFound,
    );
    await expect(leasing.increment('other', grant.keyId)).rejects.toBeInstanceOf(KeyNotFound);
    await expect(admin.update('other', grant.keyId, { usageCount: 0 })).rejects.toBeInstanceOf(KeyNotFound);
    expect(store.peek(grant.keyId)?.usageCount).toBe(1);
  });
});

describe('no client report takes a key away for good', () => {
  it('invalid_key makes the key suspect: refunded, out of the pool, but not disabled', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const grant = await leasing.lease(POOL);
    // Act
    const result = await leasing.complete(POOL, grant.leaseId, { outcome: 'invalid_key' });
    // Assess
    expect(result).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'suspect' });
    expect(store.peek(grant.keyId)?.status).toBe('suspect');
    await expect(leasing.lease(POOL)).rejects.toBeInstanceOf(NoUsableKey);
  });

  it("an operator's disabled always wins over a report", async () => {
    // Prepare
    const { leasing, admin } = await setup(1);
    const grant = await leasing.lease(POOL);
    await admin.update(POOL, grant.keyId, { status: 'disabled' });
    // Act
    const result = await leasing.complete(POOL, grant.leaseId, { outcome: 'invalid_key' });
    // Assess
    expect(result.status).toBe('disabled');
  });
});

describe('Retry-After, both ways', () => {
  it("rate_limited with retryAfterSeconds rests the key that long; without, the pool's cooldown", async () => {
    // Prepare
    const { leasing, store, clock, poolAdmin } = await setup(2);
    await poolAdmin.set(POOL, { cooldownSeconds: 7 });
    const [first, second] = [await leasing.lease(POOL), await leasing.lease(POOL)];
    // Act
    await leasing.complete(POOL, first.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 120 });
    await leasing.complete(POOL, second.leaseId, { outcome: 'rate_limited' });
    // Assess
    expect(store.peek(first.keyId)?.cooldownUntil).toBe(clock.now() + 120_000);
    expect(store.peek(second.keyId)?.cooldownUntil).toBe(clock.now() + 7_000);
  });

  it('a second report never shortens a cooldown, and a longer one extends it', async () => {
    // Prepare: one key leased twice (two slots), both leases open.
    const { leasing, store, clock, poolAdmin } = await setup(1);
    await poolAdmin.set(POOL, { maxClientCooldownSeconds: 3600 });
    const [a, b] = [await leasing.lease(POOL), await leasing.lease(POOL)];
    const c = await leasing.lease(POOL);
    const t0 = clock.now();
    await leasing.complete(POOL, a.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 600 });
    // Act
    const shorter = await leasing.complete(POOL, b.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 5 });
    const longer = await leasing.complete(POOL, c.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 900 });
    // Assess: the shorter report is recorded (and refunded) but leaves 600 s; the longer one extends.
    expect(shorter.status).toBe('cooling');
    expect(longer.usageCount).toBe(0);
    expect(store.peek(a.keyId)?.cooldownUntil).toBe(t0 + 900_000);
    expect(Object.values(store.peek(a.keyId)?.slots ?? {}).every((slot) => slot.outcome === 'rate_limited')).toBe(true);
  });

  it('a dry pool with a cooling key says when that key comes back', async () => {
    // Prepare
    const { leasing, clock } = await setup(1);
    const grant = await leasing.lease(POOL);
    await leasing.complete(POOL, grant.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 90 });
    clock.advance(30_000);
    // Act
    const refusal = await leasing.lease(POOL).catch((error: unknown) => error);
    // Assess
    expect(refusal).toBeInstanceOf(NoUsableKey);
    expect((refusal as NoUsableKey).retryAfterSeconds).toBe(60);
  });

  it('retryAfterSeconds goes with rate_limited only', async () => {
    const { leasing } = await setup(1);
    const grant = await leasing.lease(POOL);
    await expect(
      leasing.complete(POOL, grant.leaseId, { outcome: 'failure', retryAfterSeconds: 5 }),
    ).rejects.toBeInstanceOf(InvalidRequest);
  });
});

/** A store in which a concurrent lease lands between a reset's read and its write, `times` times. */
class LeaseBeforeWrite extends MemoryKeyStore {
  times = 0;
  rival: ((keyId: string) => Promise<LeaseAttemptResult>) | undefined;
  override async update(update: Parameters<MemoryKeyStore['update']>[0]): ReturnType<MemoryKeyStore['update']> {
    if (this.times > 0 && this.rival) {
      this.times--;
      await this.rival(update.keyId);
    }
    return super.update(update);
  }
  lease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    return super.tryLease(attempt);
  }
}

describe("the operator's reset", () => {
  it('sets the count and moves the key to its place in the usage order', async () => {
    // Prepare: two keys, the first used twice.
    const { leasing, admin, ids, clock } = await setup(2);
    for (let i = 0; i < 3; i++) await leasing.complete(POOL, (await leasing.lease(POOL)).leaseId);
    // Act
    const view = await admin.update(POOL, ids[0] ?? '', { usageCount: 0 });
    // Assess: back at count 0, ahead of the other key (count 1) in the order, for the next lease
    // that reads the index (a broker takes from the page it read for PAGE_REUSE_MS, as an index
    // may lag).
    expect(view.usageCount).toBe(0);
    clock.advance(PAGE_REUSE_MS);
    expect((await leasing.lease(POOL)).keyId).toBe(ids[0]);
  });

  it('loses cleanly to a concurrent lease and is applied from the fresh count', async () => {
    // Prepare
    const store = new LeaseBeforeWrite();
    const { admin, leasing, importKeys, clock } = world(store);
    const [id = ''] = await importKeys('reset', 1);
    await leasing.lease(POOL);
    store.times = 2;
    store.rival = (keyId) => {
      const seen = store.peek(keyId)?.usageCount ?? 0;
      return store.lease({
        keyId,
        pool: POOL,
        shard: 0,
        seenCount: seen,
        maxUses: 3,
        slot: seen + 1,
        nonce: `${seen}`.padStart(16, '0'),
        expiresAtMs: clock.now() + 1000,
        nowMs: clock.now(),
      });
    };
    // Act
    const view = await admin.update(POOL, id, { usageCount: 0 });
    // Assess: two rival leases landed and were not lost: the reset applied after them.
    expect(store.times).toBe(0);
    expect(view.usageCount).toBe(0);
    expect(store.calls.update).toBe(3);
  });

  it('an empty change is a bad request', async () => {
    const { admin, ids } = await setup(1);
    await expect(admin.update(POOL, ids[0] ?? '', {})).rejects.toBeInstanceOf(InvalidRequest);
  });
});

describe('listing a pool', () => {
  it('reads the page, not the pool: a 10-key page of a 250-key pool asks the store for 10 keys', async () => {
    // Prepare
    const { admin, store } = await setup(250);
    const before = store.calls.poolKeys ?? 0;
    // Act
    const page = await admin.list(POOL, { limit: 10 });
    // Assess
    expect(page.keys).toHaveLength(10);
    expect(page.cursor).not.toBeNull();
    expect((store.calls.poolKeys ?? 0) - before).toBe(1);
  });

  it('walks the whole pool by cursor, each key once, in id order', async () => {
    // Prepare
    const { admin, ids } = await setup(25);
    // Act
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await admin.list(POOL, { limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.keys.map((k) => k.keyId));
      cursor = page.cursor;
    } while (cursor);
    // Assess
    expect(seen).toEqual([...ids].sort());
  });

  it('with a status filter, stops after a bounded read and hands back a cursor', async () => {
    // Prepare: 1,200 keys, none disabled.
    const { admin } = await setup(1200);
    // Act
    const page = await admin.list(POOL, { status: 'disabled', limit: 5 });
    // Assess
    expect(page.keys).toEqual([]);
    expect(page.cursor).not.toBeNull();
  });
});

describe('leasing with the pool directory', () => {
  it('a pool created a moment ago by another process is found at once (absence is never cached)', async () => {
    // Prepare
    const { leasing, poolStore, store, clock } = await setup(0);
    await expect(leasing.lease('fresh')).rejects.toBeInstanceOf(PoolNotFound);
    // Act
    await poolStore.put('fresh', {}, new Date(clock.now()).toISOString());
    // Assess
    await expect(
      new Leasing({ store, pools: new PoolDirectory({ store: poolStore }), sealer: new FakeSealer() }).lease('fresh'),
    ).rejects.toBeInstanceOf(NoUsableKey);
    await expect(leasing.lease('fresh')).rejects.toBeInstanceOf(NoUsableKey);
  });
});
