/**
 * Sharded usage order on the in-memory store: which shard a key belongs in, which shard a
 * lease reads first, what a dry pool costs, how even the counts stay, and the reshard's
 * moves. (The spread of the hash over many key ids: test/slow/shards.test.ts. The same
 * guarantees under real concurrency, on DynamoDB Local: test/integration/shards.test.ts and the
 * S = 8 runs of test/integration/broker.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { NoUsableKey } from '../../lib/domain/errors.js';
import type { CandidatePage, LeaseAttempt, LeaseAttemptResult } from '../../lib/ports/lease-store.js';
import { MAX_PARALLEL_SHARD_READS } from '../../lib/use-cases/leasing.js';
import { reshard, RESHARD_SETTLE_MS } from '../../lib/use-cases/reshard.js';
import { MAX_SHARDS, SHARD_MEMORY_MS, ShardMemory, shardOf, shardSpan } from '../../lib/domain/shards.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';
import { prng } from '../support/prng.js';
import { fixedRandom, POOL, world } from '../support/memory-world.js';

/** A pool of `keys` keys with `shards` shards (set before the import, so each key is homed for it). */
async function shardedPool(
  keys: number,
  shards: number,
  store: MemoryKeyStore = new MemoryKeyStore(),
  random: () => number = prng(7),
) {
  const w = world(store, { random });
  await w.poolAdmin.set(POOL, { shards });
  const ids = await w.importKeys('shard', keys);
  return { ...w, ids };
}

/** max - min of the pool's counts. */
async function spread(store: MemoryKeyStore, ids: string[]): Promise<number> {
  const counts = await Promise.all(ids.map(async (id) => (await store.get(id))?.usageCount ?? 0));
  return Math.max(...counts) - Math.min(...counts);
}

describe('shardOf', () => {
  it('is 0 with one shard, in range otherwise, and never changes for a key id (pinned values)', () => {
    // Prepare
    const ids = ['k_000000000000000000000000', 'k_0123456789abcdef01234567', 'k_ffffffffffffffffffffffff'];
    // Act
    const pinned = ids.map((id) => [shardOf(id, 1), shardOf(id, 8), shardOf(id, 64), shardOf(id, 21)]);
    // Assess: a change here would strand every key of every sharded pool until a reshard.
    expect(pinned).toEqual([
      [0, 7, 15, 17],
      [0, 3, 3, 3],
      [0, 7, 15, 12],
    ]);
    expect(() => shardOf(ids[0] ?? '', 0)).toThrow(RangeError);
  });

  it('a lease reads the widest layout while a reshard is pending', () => {
    expect(shardSpan({ shards: 8 })).toBe(8);
    expect(shardSpan({ shards: 8, previousShards: 1 })).toBe(8);
    expect(shardSpan({ shards: 2, previousShards: 8 })).toBe(8);
  });
});

describe('which shard a broker reads first', () => {
  it('knowing nothing, any shard, chosen at random', () => {
    // Prepare
    const memory = new ShardMemory();
    const random = fixedRandom([0, 0.5, 0.99]);
    // Act
    const picks = [0, 1, 2].map(() => memory.next(POOL, 8, new Set(), 3, 0, random));
    // Assess
    expect(picks).toEqual([0, 4, 7]);
  });

  it('the shard whose head it saw least used; one seen dry last; none left when all are excluded', () => {
    // Prepare
    const memory = new ShardMemory();
    memory.seen(POOL, 0, 2, 0);
    memory.seen(POOL, 1, 1, 0);
    memory.dry(POOL, 2, 3, 0);
    // Act
    const first = memory.next(POOL, 3, new Set(), 3, 10, () => 0);
    const second = memory.next(POOL, 3, new Set([1]), 3, 10, () => 0);
    const third = memory.next(POOL, 3, new Set([0, 1]), 3, 10, () => 0);
    const none = memory.next(POOL, 3, new Set([0, 1, 2]), 3, 10, () => 0);
    // Assess
    expect([first, second, third, none]).toEqual([1, 0, 2, undefined]);
  });

  it('a shard not seen lately counts as level with the best seen; what it saw is forgotten after SHARD_MEMORY_MS', () => {
    // Prepare
    const memory = new ShardMemory();
    memory.seen(POOL, 0, 1, 0);
    memory.seen(POOL, 1, 2, 0);
    // Act: shard 2 unknown ties with shard 0 (head 1); shard 1 (head 2) loses.
    const tied = [0, 0.99].map((r) => memory.next(POOL, 3, new Set(), 3, 10, () => r));
    const later = memory.next(POOL, 3, new Set(), 3, SHARD_MEMORY_MS + 1, () => 0.5);
    // Assess
    expect(tied).toEqual([0, 2]);
    expect(later).toBe(1);
  });

  it('a shard seen dry under a lower cap is tried again under a higher one', () => {
    // Prepare
    const memory = new ShardMemory();
    memory.dry(POOL, 0, 0, 0);
    memory.seen(POOL, 1, 1, 0);
    // Act
    const capZero = memory.next(POOL, 2, new Set(), 0, 10, () => 0);
    const capThree = memory.next(POOL, 2, new Set(), 3, 10, () => 0);
    // Assess: head 1 under cap 0 is dry too; under cap 3 shard 0 (no key <= 0, maybe one at 1) ties with shard 1.
    expect(capZero).toBe(0);
    expect(capThree).toBe(0);
  });
});

/** Counts candidate queries and the most in flight at once. */
class CountingStore extends MemoryKeyStore {
  inFlight = 0;
  maxInFlight = 0;
  roundTrips = 0;
  readonly shardsRead = new Set<number>();
  override async candidates(...query: Parameters<MemoryKeyStore['candidates']>): Promise<CandidatePage> {
    const [, shard] = query;
    this.shardsRead.add(shard);
    if (this.inFlight === 0) this.roundTrips++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await Promise.resolve();
    try {
      return await super.candidates(...query);
    } finally {
      this.inFlight--;
    }
  }
}

describe('leasing over shards', () => {
  it.each([
    [1, 1, 1],
    [8, 8, 4],
    [MAX_SHARDS, MAX_SHARDS, 11],
  ])(
    'a dry pool with %i shard(s) costs %i index queries and no write before its 409, in %i round trips',
    async (shards, queries, roundTrips) => {
      // Prepare
      const store = new CountingStore();
      const { leasing } = await shardedPool(0, shards, store);
      // Act
      const refused = leasing.lease(POOL);
      // Assess
      await expect(refused).rejects.toBeInstanceOf(NoUsableKey);
      expect(store.calls.candidates).toBe(queries);
      expect(store.calls.tryLease).toBeUndefined();
      expect(store.roundTrips).toBe(roundTrips);
      expect(store.maxInFlight).toBeLessThanOrEqual(MAX_PARALLEL_SHARD_READS);
    },
  );

  it('finds the one usable key of a 64-shard pool wherever it is, whichever shard it reads first', async () => {
    // Prepare
    const results: number[] = [];
    for (const start of [0, 0.3, 0.7, 0.99]) {
      const store = new MemoryKeyStore();
      const { leasing, ids } = await shardedPool(1, MAX_SHARDS, store, fixedRandom([start]));
      // Act
      const grant = await leasing.lease(POOL);
      results.push(grant.keyId === ids[0] ? 1 : 0);
    }
    // Assess
    expect(results).toEqual([1, 1, 1, 1]);
  });

  it('every key serves maxUses + 1 uses at 8 shards, and the pool answers 409 only when none is left', async () => {
    // Prepare
    const { leasing, ids, store } = await shardedPool(40, 8);
    // Act
    let granted = 0;
    for (;;) {
      try {
        const grant = await leasing.lease(POOL, { maxUses: 3 });
        await leasing.complete(POOL, grant.leaseId);
        granted++;
      } catch (error) {
        if (error instanceof NoUsableKey) break;
        throw error;
      }
    }
    // Assess
    expect(granted).toBe(40 * 4);
    for (const id of ids) expect((await store.get(id))?.usageCount).toBe(4);
  });

  it('fairness: after 3 leases per key, the counts are as even at 8 shards as with one LRU order', async () => {
    // Prepare
    // 12 keys per shard: enough for a head to fall behind, small enough for the unit project.
    const keys = 96;
    const flat = await shardedPool(keys, 1);
    const sharded = await shardedPool(keys, 8);
    // Act
    for (const w of [flat, sharded]) {
      for (let i = 0; i < keys * 3; i++) {
        w.clock.advance(1);
        const grant = await w.leasing.lease(POOL);
        await w.leasing.complete(POOL, grant.leaseId);
      }
    }
    // Assess: one LRU order is exact; the shards' heads stay within one use of each other.
    expect(await spread(flat.store, flat.ids)).toBe(0);
    expect(await spread(sharded.store, sharded.ids)).toBeLessThanOrEqual(1);
  });

  it('a key moved by a reshard between the query and the write is refused there and leased in its new shard', async () => {
    // Prepare: the first lease write finds its key just moved to shard 1.
    class MovingStore extends MemoryKeyStore {
      shards: number[] = [];
      moved = false;
      override async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
        this.shards.push(attempt.shard);
        if (!this.moved) {
          this.moved = true;
          await this.rehome({ keyId: attempt.keyId, pool: attempt.pool, from: { shard: 0, indexedIn: 0 }, to: 1 });
        }
        return super.tryLease(attempt);
      }
    }
    const store = new MovingStore();
    const { leasing, ids } = await shardedPool(1, 1, store);
    // Act
    const grant = await leasing.lease(POOL);
    // Assess
    expect(grant.keyId).toBe(ids[0]);
    expect(store.shards).toEqual([0, 1]);
  });

  it('while a reshard is pending, leases find the keys not yet moved (both layouts are read)', async () => {
    // Prepare: 10 keys in one shard; the pool then asks for 8, nothing moved yet.
    const { leasing, poolAdmin, ids } = await shardedPool(10, 1);
    const policy = await poolAdmin.set(POOL, { shards: 4 });
    // Act
    const granted = new Set<string>();
    for (let i = 0; i < 10; i++) granted.add((await leasing.lease(POOL, { maxUses: 0 })).keyId);
    // Assess
    expect(policy).toMatchObject({ shards: 4, previousShards: 1 });
    expect(granted).toEqual(new Set(ids));
    await expect(leasing.lease(POOL, { maxUses: 0 })).rejects.toBeInstanceOf(NoUsableKey);
  });
});

describe('reshard (the sweep)', () => {
  it('waits RESHARD_SETTLE_MS after the change, then moves every key home in one write each, and ends the change', async () => {
    // Prepare
    const { store, poolStore, poolAdmin, clock, ids, leasing } = await shardedPool(30, 1);
    const grant = await leasing.lease(POOL);
    await poolAdmin.set(POOL, { shards: 8 });
    const before = await Promise.all(ids.map((id) => store.get(id)));
    // Act
    const early = await reshard({ store, pools: poolStore, pool: POOL, clock: clock.now });
    clock.advance(RESHARD_SETTLE_MS);
    const run = await reshard({ store, pools: poolStore, pool: POOL, clock: clock.now });
    const again = await reshard({ store, pools: poolStore, pool: POOL, clock: clock.now });
    // Assess
    expect(early).toMatchObject({ keys: 0, moved: 0, finished: false, notBefore: new Date(clock.now()).toISOString() });
    const expected = ids.filter((id) => shardOf(id, 8) !== 0).length;
    expect(run).toMatchObject({
      shards: 8,
      previousShards: 1,
      keys: 30,
      moved: expected,
      changedMeanwhile: 0,
      finished: true,
    });
    expect(again).toMatchObject({ previousShards: null, moved: 0, finished: false });
    expect(store.calls.rehome).toBe(expected);
    expect(await poolStore.get(POOL)).not.toHaveProperty('previousShards');
    for (const [i, id] of ids.entries()) {
      const after = await store.get(id);
      // Only the shard moved: count, stamp, slots and status are as they were.
      expect(after).toEqual({ ...before[i], ...(shardOf(id, 8) === 0 ? {} : { shard: shardOf(id, 8) }) });
    }
    // The open lease completes as if nothing happened.
    await expect(leasing.complete(POOL, grant.leaseId)).resolves.toMatchObject({ usageCount: 1 });
  });

  it('a shrink (8 -> 2) moves keys out of the shards that go away; leases then read only 2', async () => {
    // Prepare
    const countingStore = new CountingStore();
    const { poolStore, poolAdmin, clock, ids, leasing } = await shardedPool(40, 8, countingStore);
    await poolAdmin.set(POOL, { shards: 2 });
    clock.advance(RESHARD_SETTLE_MS);
    // Act
    const run = await reshard({ store: countingStore, pools: poolStore, pool: POOL, clock: clock.now });
    clock.advance(60_000);
    countingStore.shardsRead.clear();
    const granted = new Set<string>();
    for (let i = 0; i < 40; i++) granted.add((await leasing.lease(POOL, { maxUses: 0 })).keyId);
    await expect(leasing.lease(POOL, { maxUses: 0 })).rejects.toBeInstanceOf(NoUsableKey);
    // Assess
    expect(run.finished).toBe(true);
    expect(granted).toEqual(new Set(ids));
    const placements = await countingStore.placements(POOL, 100);
    for (const p of placements.keys) expect(p.shard).toBe(shardOf(p.keyId, 2));
    // The policy no longer names shards 2..7: leases read only the new layout.
    expect([...countingStore.shardsRead].sort()).toEqual([0, 1]);
  });

  it('a key whose placement changed since it was read is read again and moved from where it is', async () => {
    // Prepare: one key, disabled (out of the index) just after the sweep read it.
    class DisablingStore extends MemoryKeyStore {
      disabled = false;
      override async rehome(move: Parameters<MemoryKeyStore['rehome']>[0]) {
        if (!this.disabled) {
          this.disabled = true;
          await this.update({ keyId: move.keyId, pool: move.pool, status: 'disabled' });
        }
        return super.rehome(move);
      }
    }
    const store = new DisablingStore();
    const w = world(store);
    const ids = await w.importKeys('move', 12);
    const id = ids.find((k) => shardOf(k, 4) !== 0) ?? '';
    await w.poolAdmin.set(POOL, { shards: 4 });
    w.clock.advance(RESHARD_SETTLE_MS);
    // Act
    const run = await reshard({ store, pools: w.poolStore, pool: POOL, clock: w.clock.now, concurrency: 1 });
    // Assess
    expect(run).toMatchObject({ changedMeanwhile: 0, finished: true });
    expect(store.calls.rehome).toBe(ids.filter((k) => shardOf(k, 4) !== 0).length + 1);
    expect((await store.placements(POOL, 100)).keys.find((p) => p.keyId === id)).toBeDefined();
  });

  it('the memory store refuses a move from a placement the key no longer has, as the condition does', async () => {
    // Prepare
    const { store, ids } = await shardedPool(1, 1);
    const keyId = ids[0] ?? '';
    // Act
    const stale = await store.rehome({ keyId, pool: POOL, from: { shard: 0, indexedIn: undefined }, to: 1 });
    const wrongPool = await store.rehome({ keyId, pool: 'other', from: { shard: 0, indexedIn: 0 }, to: 1 });
    const fresh = await store.rehome({ keyId, pool: POOL, from: { shard: 0, indexedIn: 0 }, to: 1 });
    const staleLease = await store.tryLease({
      keyId,
      pool: POOL,
      shard: 0,
      seenCount: 0,
      maxUses: 3,
      slot: 0,
      nonce: '0123456789abcdef',
      expiresAtMs: 2e12,
      nowMs: 1e12,
    });
    // Assess
    expect(stale).toEqual({ moved: false, current: { keyId, pool: POOL, shard: 0, indexedIn: 0 } });
    expect(wrongPool).toEqual({ moved: false, current: undefined });
    expect(fresh).toEqual({ moved: true });
    expect(staleLease.granted).toBe(false);
  });
});
