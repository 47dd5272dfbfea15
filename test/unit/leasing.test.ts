/**
 * The broker's choice, spreading and retry logic, on the in-memory store with a fake clock:
 * which key a lease tries first, what it does after a lost race, and when it gives up.
 * (The same guarantees under real concurrency are proven on DynamoDB Local in
 * test/integration/broker.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { KeyAdmin } from '../../lib/domain/key-admin.js';
import type { Candidate, LeaseAttempt, LeaseAttemptResult } from '../../lib/domain/key-store.js';
import { CONTENTION_MEMORY_MS, Leasing } from '../../lib/domain/leasing.js';
import { LeaseExpired, NoUsableKey } from '../../lib/domain/errors.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';

const POOL = 'unit';
const T0 = Date.UTC(2026, 0, 1);

/** A clock the test moves by hand. */
function fakeClock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let at = start;
  return { now: () => at, advance: (ms) => (at += ms) };
}

/** Random numbers from a fixed list, cycling: which candidate a spreading broker takes is then known. */
function fixedRandom(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

async function setup(keys: number, options: { random?: () => number } = {}) {
  const store = new MemoryKeyStore();
  const clock = fakeClock();
  const admin = new KeyAdmin({ store, clock: clock.now });
  const imported = await admin.importKeys(Array.from({ length: keys }, (_, i) => ({ apiKey: `sk-test-unit-${String(i).padStart(4, '0')}-xxxxxxxx`, pool: POOL })));
  const ids = imported.keys.map((k) => k.keyId);
  const leasing = new Leasing({ store, clock: clock.now, ...options });
  return { store, clock, leasing, ids };
}

describe('which key a lease takes', () => {
  it('takes the least used, then least recently used key: oldest import first, then round robin', async () => {
    // Prepare
    const { leasing, clock, ids } = await setup(3);
    // Act
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      clock.advance(10);
      const grant = await leasing.lease({ pool: POOL });
      await leasing.complete(grant.leaseId, 'success');
      order.push(grant.keyId);
    }
    // Assess
    expect(order).toEqual([...ids, ...ids]);
  });

  it('a refunded key goes back to the front of its tier', async () => {
    // Prepare
    const { leasing, clock, ids } = await setup(2);
    clock.advance(10);
    const first = await leasing.lease({ pool: POOL });
    // Act: the failure refunds the use, so the key is at count 0 again, with its newer stamp.
    await leasing.complete(first.leaseId, 'failure');
    const next = await leasing.lease({ pool: POOL });
    // Assess: the other never-used key (older stamp) comes first.
    expect(first.keyId).toBe(ids[0]);
    expect(next.keyId).toBe(ids[1]);
  });

  it('honours a lower cap: a key at count 1 is not usable under maxUses 0', async () => {
    // Prepare
    const { leasing } = await setup(1);
    const grant = await leasing.lease({ pool: POOL, maxUses: 0 });
    await leasing.complete(grant.leaseId, 'success');
    // Act / Assess
    await expect(leasing.lease({ pool: POOL, maxUses: 0 })).rejects.toBeInstanceOf(NoUsableKey);
    await expect(leasing.lease({ pool: POOL, maxUses: 1 })).resolves.toMatchObject({ usageCount: 1 });
  });

  it('gives up with NoUsableKey after one empty query on a dry pool', async () => {
    // Prepare
    const { leasing, store } = await setup(0);
    // Act / Assess
    await expect(leasing.lease({ pool: POOL })).rejects.toBeInstanceOf(NoUsableKey);
    expect(store.calls).toMatchObject({ candidates: 1 });
    expect(store.calls.tryLease).toBeUndefined();
  });

  it('skips a cooling key until its cooldown has passed', async () => {
    // Prepare
    const { leasing, clock, ids } = await setup(2);
    const grant = await leasing.lease({ pool: POOL });
    await leasing.complete(grant.leaseId, 'rate_limited');
    // Act
    const during = await leasing.lease({ pool: POOL });
    clock.advance(60_001);
    const after = await leasing.lease({ pool: POOL });
    // Assess: ids[0] cooled for the default 60 s and comes back when it has passed.
    expect(grant.keyId).toBe(ids[0]);
    expect(during.keyId).toBe(ids[1]);
    expect(after.keyId).toBe(ids[0]);
  });
});

/** A store in which another caller wins the first `losses` lease writes, as a concurrent lease would. */
class RacingStore extends MemoryKeyStore {
  losses: number;
  readonly tried: string[] = [];

  constructor(losses: number) {
    super();
    this.losses = losses;
  }

  override async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    this.tried.push(attempt.keyId);
    if (this.losses > 0) {
      this.losses--;
      // The rival's lease lands first: the key's count moves on, so our write is refused.
      await super.tryLease({ ...attempt, nonce: 'feedfeedfeedfeed', slot: (attempt.slot + 1) % 8 });
    }
    return super.tryLease(attempt);
  }
}

describe('after a lost race', () => {
  it('retries the same key with the count the refused write returned, and gets it', async () => {
    // Prepare
    const store = new RacingStore(0);
    const clock = fakeClock();
    await new KeyAdmin({ store, clock: clock.now }).importKeys([{ apiKey: 'sk-test-race-0000-xxxxxxxx', pool: POOL }]);
    const leasing = new Leasing({ store, clock: clock.now });
    store.losses = 1;
    // Act
    const grant = await leasing.lease({ pool: POOL });
    // Assess: one refused write, then a grant at the fresh count (the rival's use counted first).
    expect(store.tried).toEqual([grant.keyId, grant.keyId]);
    expect(grant.usageCount).toBe(1);
    expect(store.peek(grant.keyId)?.usageCount).toBe(2);
  });

  it('spreads its next first tries over the candidate page, then returns to strict LRU', async () => {
    // Prepare: 4 keys; the first lease loses one race, so the broker is contending.
    const store = new RacingStore(0);
    const clock = fakeClock();
    const admin = new KeyAdmin({ store, clock: clock.now });
    const ids = (await admin.importKeys(Array.from({ length: 4 }, (_, i) => ({ apiKey: `sk-test-spread-${i}-xxxxxxxx`, pool: POOL })))).keys.map((k) => k.keyId);
    // The page after the race is [ids1, ids2, ids3, ids0 (count 2)]; random 0.5 picks its third.
    const leasing = new Leasing({ store, clock: clock.now, random: fixedRandom([0.5]) });
    store.losses = 1;
    const raced = await leasing.lease({ pool: POOL });
    await leasing.complete(raced.leaseId, 'success');
    // Act
    store.tried.length = 0;
    clock.advance(1);
    const spread = await leasing.lease({ pool: POOL });
    clock.advance(CONTENTION_MEMORY_MS + 1);
    const strict = await leasing.lease({ pool: POOL });
    // Assess: while contending, the first try is the random candidate, not the head.
    expect(raced.keyId).toBe(ids[0]);
    expect(store.tried[0]).toBe(ids[3]);
    expect(spread.keyId).toBe(ids[3]);
    // Past the contention memory, the head of the index again.
    expect(strict.keyId).toBe(ids[1]);
  });

  it('moves to another candidate when the key it lost is no longer leasable', async () => {
    // Prepare: maxUses 0, so once the rival uses the key it is past the cap for us.
    const store = new RacingStore(0);
    const clock = fakeClock();
    const admin = new KeyAdmin({ store, clock: clock.now });
    const ids = (await admin.importKeys([0, 1].map((i) => ({ apiKey: `sk-test-move-${i}-xxxxxxxx`, pool: POOL })))).keys.map((k) => k.keyId);
    const leasing = new Leasing({ store, clock: clock.now, random: fixedRandom([0]) });
    store.losses = 1;
    // Act
    const grant = await leasing.lease({ pool: POOL, maxUses: 0 });
    // Assess
    expect(store.tried).toEqual([ids[0], ids[1]]);
    expect(grant.keyId).toBe(ids[1]);
  });
});

describe('within one broker', () => {
  it('concurrent leases in one process try different keys first', async () => {
    // Prepare
    const { leasing, store, ids } = await setup(3);
    const spy = store.tryLease.bind(store);
    const firstTries: string[] = [];
    store.tryLease = (attempt) => {
      firstTries.push(attempt.keyId);
      return spy(attempt);
    };
    // Act
    const grants = await Promise.all([1, 2, 3].map(() => leasing.lease({ pool: POOL })));
    // Assess: three distinct keys, each tried once.
    expect(new Set(grants.map((g) => g.keyId))).toEqual(new Set(ids));
    expect(firstTries).toHaveLength(3);
  });
});

/** A store whose index lags: it keeps answering with candidates that are no longer leasable. */
class LaggingIndex extends MemoryKeyStore {
  stale: Candidate[] = [];
  override candidates(pool: string, maxUses: number, limit: number, nowMs: number): Promise<Candidate[]> {
    if (this.stale.length > 0) return Promise.resolve(this.stale);
    return super.candidates(pool, maxUses, limit, nowMs);
  }
}

describe('when the index lags', () => {
  it('concludes no key is usable after seeing every stale candidate refused, without looping', async () => {
    // Prepare: one key, disabled, but the index still lists it.
    const store = new LaggingIndex();
    const clock = fakeClock();
    const admin = new KeyAdmin({ store, clock: clock.now });
    const [id = ''] = (await admin.importKeys([{ apiKey: 'sk-test-lag-0-xxxxxxxx', pool: POOL }])).keys.map((k) => k.keyId);
    await admin.setStatus(id, 'disabled');
    store.stale = [{ keyId: id, usageCount: 0 }];
    const leasing = new Leasing({ store, clock: clock.now });
    // Act / Assess
    await expect(leasing.lease({ pool: POOL })).rejects.toBeInstanceOf(NoUsableKey);
    expect(store.calls.tryLease).toBe(1);
  });
});

describe('completion', () => {
  it('counts once: a repeated completion changes nothing and answers the same', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const grant = await leasing.lease({ pool: POOL });
    // Act
    const first = await leasing.complete(grant.leaseId, 'failure');
    const again = await leasing.complete(grant.leaseId, 'failure');
    // Assess
    expect(first).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'active' });
    expect(again).toEqual(first);
    expect(store.peek(grant.keyId)?.usageCount).toBe(0);
  });

  it('past its expiry a lease cannot be completed and its use stays counted', async () => {
    // Prepare
    const { leasing, clock, store } = await setup(1);
    const grant = await leasing.lease({ pool: POOL, ttlSeconds: 1 });
    clock.advance(1_001);
    // Act / Assess
    await expect(leasing.complete(grant.leaseId, 'failure')).rejects.toBeInstanceOf(LeaseExpired);
    expect(store.peek(grant.keyId)?.usageCount).toBe(1);
  });

  it('invalid_key never overrides an operator who disabled the key; the use is still refunded', async () => {
    // Prepare
    const store = new MemoryKeyStore();
    const clock = fakeClock();
    const admin = new KeyAdmin({ store, clock: clock.now });
    const leasing = new Leasing({ store, clock: clock.now });
    await admin.importKeys([{ apiKey: 'sk-test-op-0-xxxxxxxx', pool: POOL }]);
    const grant = await leasing.lease({ pool: POOL });
    await admin.setStatus(grant.keyId, 'disabled');
    // Act
    const result = await leasing.complete(grant.leaseId, 'out_of_credits');
    // Assess
    expect(result).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'disabled' });
  });
});

describe('the in-memory store keeps the adapter contract', () => {
  it('refuses a lease write on a stale count, as the condition does', async () => {
    // Prepare
    const { store, ids, clock } = await setup(1);
    const id = ids[0] ?? '';
    const write = (seenCount: number) =>
      store.tryLease({ keyId: id, pool: POOL, seenCount, maxUses: 3, slot: 0, nonce: '0123456789abcdef', expiresAtMs: clock.now() + 1000, nowMs: clock.now() });
    // Act
    const stale = await write(1);
    const fresh = await write(0);
    // Assess
    expect(stale.granted).toBe(false);
    expect(fresh.granted).toBe(true);
  });
});
