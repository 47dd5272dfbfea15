/**
 * The broker's choice, spreading and retry logic, on the in-memory store with a fake clock:
 * which key a lease tries first, what it does after a lost race, and when it gives up.
 * (The same guarantees under real concurrency are proven on DynamoDB Local in
 * test/integration/broker.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import type { CandidatePage, LeaseAttempt, LeaseAttemptResult } from '../../lib/ports/lease-store.js';
import {
  CARRIED_PAGES_PER_POOL,
  CARRIED_POOLS,
  CONTENTION_MEMORY_MS,
  Leasing,
  PAGE_REUSE_MS,
} from '../../lib/use-cases/leasing.js';
import { LeaseExpired, NoUsableKey, StoreThrottled } from '../../lib/domain/errors.js';
import { classifyProviderAnswer } from '../../lib/domain/provider-answers.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';

import { fixedRandom, POOL, setup, world } from '../support/memory-world.js';

describe('which key a lease takes', () => {
  it('takes the least used, then least recently used key: oldest import first, then round robin', async () => {
    // Prepare
    const { leasing, clock, ids } = await setup(3);
    // Act
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      clock.advance(10);
      const grant = await leasing.lease(POOL);
      await leasing.complete(POOL, grant.leaseId, { outcome: 'success' });
      order.push(grant.keyId);
    }
    // Assess
    expect(order).toEqual([...ids, ...ids]);
  });

  it('a refunded key goes back to the front of its tier', async () => {
    // Prepare
    const { leasing, clock, ids } = await setup(2);
    clock.advance(10);
    const first = await leasing.lease(POOL);
    // Act: the failure refunds the use, so the key is at count 0 again, with its newer stamp.
    await leasing.complete(POOL, first.leaseId, { outcome: 'failure' });
    const next = await leasing.lease(POOL);
    // Assess: the other never-used key (older stamp) comes first.
    expect(first.keyId).toBe(ids[0]);
    expect(next.keyId).toBe(ids[1]);
  });

  it('honours a lower cap: a key at count 1 is not usable under maxUses 0', async () => {
    // Prepare
    const { leasing } = await setup(1);
    const grant = await leasing.lease(POOL, { maxUses: 0 });
    await leasing.complete(POOL, grant.leaseId, { outcome: 'success' });
    // Act / Assess
    await expect(leasing.lease(POOL, { maxUses: 0 })).rejects.toBeInstanceOf(NoUsableKey);
    await expect(leasing.lease(POOL, { maxUses: 1 })).resolves.toMatchObject({ usageCount: 1 });
  });

  it('gives up with NoUsableKey after one empty query on a dry pool', async () => {
    // Prepare
    const { leasing, store } = await setup(0);
    // Act / Assess
    await expect(leasing.lease(POOL)).rejects.toBeInstanceOf(NoUsableKey);
    expect(store.calls).toMatchObject({ candidates: 1 });
    expect(store.calls.tryLease).toBeUndefined();
  });

  it('skips a cooling key until its cooldown has passed', async () => {
    // Prepare
    const { leasing, clock, ids } = await setup(2);
    const grant = await leasing.lease(POOL);
    await leasing.complete(POOL, grant.leaseId, { outcome: 'rate_limited' });
    // Act
    const during = await leasing.lease(POOL);
    clock.advance(60_001);
    const after = await leasing.lease(POOL);
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

/** A store in which every lease write is refused as if another lease had just changed the key, which stays leasable. */
class OutrunStore extends MemoryKeyStore {
  readonly tried: string[] = [];

  override tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    this.tried.push(attempt.keyId);
    // The count this write expects is never the stored one: refused, answering the key as it stands.
    return super.tryLease({ ...attempt, seenCount: attempt.seenCount + 1 });
  }
}

describe('after a lost race', () => {
  it('retries the same key with the count the refused write returned, and gets it', async () => {
    // Prepare
    const { store, leasing, importKeys } = world(new RacingStore(0));
    await importKeys('race', 1);
    store.losses = 1;
    // Act
    const grant = await leasing.lease(POOL);
    // Assess: one refused write, then a grant at the fresh count (the rival's use counted first).
    expect(store.tried).toEqual([grant.keyId, grant.keyId]);
    expect(grant.usageCount).toBe(1);
    expect(store.peek(grant.keyId)?.usageCount).toBe(2);
  });

  it('answers 503 store_throttled, not a false 409, when it runs out of rounds losing races for a key still leasable', async () => {
    // Prepare: one key, leasable all along, and every write of this broker outrun by another's
    const { store, leasing, importKeys } = world(new OutrunStore());
    const [keyId] = await importKeys('race', 1);
    // Act
    const refused = await leasing.lease(POOL).catch((e: unknown) => e);
    // Assess
    expect(refused).toBeInstanceOf(StoreThrottled);
    expect(store.tried.length).toBeGreaterThan(1);
    expect(store.peek(keyId ?? '')?.usageCount).toBe(0);
  });

  it('spreads its next first tries over the least used candidates of the page, then returns to strict LRU', async () => {
    // Prepare: 4 keys; the first lease loses one race, so the broker is contending.
    // The page after the race is [ids1, ids2, ids3, ids0 (count 2)]: the spread is over the
    // three never used (ids0 is two uses ahead), and random 0.5 picks the second of them.
    const { store, clock, leasing, importKeys } = world(new RacingStore(0), { random: fixedRandom([0.5]) });
    const ids = await importKeys('spread', 4);
    store.losses = 1;
    const raced = await leasing.lease(POOL);
    await leasing.complete(POOL, raced.leaseId, { outcome: 'success' });
    // Act
    store.tried.length = 0;
    clock.advance(1);
    const spread = await leasing.lease(POOL);
    clock.advance(CONTENTION_MEMORY_MS + 1);
    const strict = await leasing.lease(POOL);
    // Assess: while contending, the first try is the random candidate, not the head.
    expect(raced.keyId).toBe(ids[0]);
    expect(store.tried[0]).toBe(ids[2]);
    expect(spread.keyId).toBe(ids[2]);
    // Past the contention memory, the head of the index again.
    expect(strict.keyId).toBe(ids[1]);
  });

  it('moves to another candidate when the key it lost is no longer leasable', async () => {
    // Prepare: maxUses 0, so once the rival uses the key it is past the cap for us.
    const { store, leasing, importKeys } = world(new RacingStore(0), { random: fixedRandom([0]) });
    const ids = await importKeys('move', 2);
    store.losses = 1;
    // Act
    const grant = await leasing.lease(POOL, { maxUses: 0 });
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
    const grants = await Promise.all([1, 2, 3].map(() => leasing.lease(POOL)));
    // Assess: three distinct keys, each tried once.
    expect(new Set(grants.map((g) => g.keyId))).toEqual(new Set(ids));
    expect(firstTries).toHaveLength(3);
  });

  it('leases that arrive together read the candidate page once and share it', async () => {
    // Prepare
    const { leasing, store, ids } = await setup(5);
    const readsBefore = store.calls.candidates ?? 0;
    // Act
    const grants = await Promise.all(ids.map(() => leasing.lease(POOL)));
    // Assess: one query for all five, each lease its own key, each tried once.
    expect((store.calls.candidates ?? 0) - readsBefore).toBe(1);
    expect(new Set(grants.map((g) => g.keyId))).toEqual(new Set(ids));
    expect(store.calls.tryLease).toBe(5);
  });

  it('leases that arrive together, more than a page holds, read past the keys the others are trying', async () => {
    // Prepare: pages of 5, 12 keys.
    const { store, pools, sealer, clock, importKeys } = world(new MemoryKeyStore());
    const ids = await importKeys('wide', 12);
    const leasing = new Leasing({ store, pools, sealer, clock: clock.now, candidateLimit: 5 });
    // Act
    const grants = await Promise.all(ids.slice(0, 10).map(() => leasing.lease(POOL)));
    // Assess: ten keys, each tried once, none raced for by two leases of this broker.
    expect(new Set(grants.map((g) => g.keyId)).size).toBe(10);
    expect(grants.every((g) => g.usageCount === 0)).toBe(true);
    expect(store.calls.tryLease).toBe(10);
  });

  it('a page read serves the next leases of the broker until PAGE_REUSE_MS has passed since the read', async () => {
    // Prepare
    const { leasing, store, clock, ids } = await setup(4);
    const readsBefore = store.calls.candidates ?? 0;
    // Act
    const first = await leasing.lease(POOL);
    clock.advance(PAGE_REUSE_MS - 1);
    const second = await leasing.lease(POOL);
    const readsWithin = (store.calls.candidates ?? 0) - readsBefore;
    clock.advance(1);
    const third = await leasing.lease(POOL);
    // Assess: strict LRU order all along; one read for the first two, another once the page is old.
    expect([first.keyId, second.keyId, third.keyId]).toEqual(ids.slice(0, 3));
    expect(readsWithin).toBe(1);
    expect((store.calls.candidates ?? 0) - readsBefore).toBe(2);
  });

  it('a key taken moves ahead of the more used keys of the page it came from: they are not carried', async () => {
    // Prepare: the first key unused, the second used twice.
    const { leasing, admin, ids } = await setup(2);
    await admin.update(POOL, ids[1] ?? '', { usageCount: 2 });
    // Act
    const first = await leasing.lease(POOL, { maxUses: 3 });
    const second = await leasing.lease(POOL, { maxUses: 3 });
    // Assess: the first key, now at 1, is still less used than the second.
    expect([first.keyId, second.keyId]).toEqual([ids[0], ids[0]]);
  });

  it('a use given back drops the carried page: the key is back ahead of it', async () => {
    // Prepare: the first key unused, the second used once.
    const { leasing, admin, ids } = await setup(2);
    await admin.update(POOL, ids[1] ?? '', { usageCount: 1 });
    const first = await leasing.lease(POOL);
    // Act: the failure gives the use back: the first key is at 0 again.
    await leasing.complete(POOL, first.leaseId, { outcome: 'failure' });
    const second = await leasing.lease(POOL);
    // Assess
    expect([first.keyId, second.keyId]).toEqual([ids[0], ids[0]]);
  });

  it('carries the pages of at most CARRIED_POOLS pools: the pool read longest ago is read again', async () => {
    // Prepare: CARRIED_POOLS + 1 pools of two keys, each leased once (each carries a page).
    const { leasing, store, keyImport } = world(new MemoryKeyStore());
    const pools = Array.from({ length: CARRIED_POOLS + 1 }, (_, i) => `p${i}`);
    for (const pool of pools)
      await keyImport.importKeys(pool, [
        { apiKey: `sk-test-${pool}-a-xxxxxxxx` },
        { apiKey: `sk-test-${pool}-b-xxxxxxxx` },
      ]);
    for (const pool of pools) await leasing.lease(pool);
    // Act
    const readsBefore = store.calls.candidates ?? 0;
    await leasing.lease(pools[1] ?? '');
    const newest = (store.calls.candidates ?? 0) - readsBefore;
    await leasing.lease(pools[0] ?? '');
    // Assess: the second pool's page was still carried, the first pool's was not.
    expect(newest).toBe(0);
    expect((store.calls.candidates ?? 0) - readsBefore).toBe(1);
  });

  it('carries at most CARRIED_PAGES_PER_POOL pages of one pool, however many caps its callers ask for', async () => {
    // Prepare: a pool capped at 1,000 whose pages hold every key; one lease at each of the caps
    // 0..CARRIED_PAGES_PER_POOL, each carrying a page of its own
    const { leasing, store, poolAdmin, importKeys } = world(new MemoryKeyStore(), { candidateLimit: 1000 });
    await poolAdmin.set(POOL, { maxUses: 1000 });
    await importKeys('caps', CARRIED_PAGES_PER_POOL + 10);
    for (let maxUses = 0; maxUses <= CARRIED_PAGES_PER_POOL; maxUses++) await leasing.lease(POOL, { maxUses });
    // Act: the first cap again, within the second its page was read in
    const readsBefore = store.calls.candidates ?? 0;
    await leasing.lease(POOL, { maxUses: CARRIED_PAGES_PER_POOL });
    const newest = (store.calls.candidates ?? 0) - readsBefore;
    await leasing.lease(POOL, { maxUses: 0 });
    // Assess: the page read last was carried; the one read first was let go, and is read again
    expect(newest).toBe(0);
    expect((store.calls.candidates ?? 0) - readsBefore).toBe(1);
  });

  it('a read under way when a use is given back is not carried: it may not show the key back ahead', async () => {
    // Prepare: the third key used once; the first lease takes the first key.
    const store = new HeldReads();
    const { leasing, admin, clock, importKeys } = world(store);
    const ids = await importKeys('held', 3);
    await admin.update(POOL, ids[2] ?? '', { usageCount: 1 });
    clock.advance(10);
    const first = await leasing.lease(POOL);
    // Act: a lease whose page is read before the first lease's use is given back, and answers after.
    clock.advance(PAGE_REUSE_MS);
    let release = (): void => undefined;
    store.hold = new Promise<void>((done) => (release = done));
    const second = leasing.lease(POOL);
    await store.reading;
    store.hold = undefined;
    await leasing.complete(POOL, first.leaseId, { outcome: 'failure' });
    release();
    await second;
    const third = await leasing.lease(POOL);
    // Assess: the first key, back at 0, not the third key from the page read before the refund.
    expect(first.keyId).toBe(ids[0]);
    expect((await second).keyId).toBe(ids[1]);
    expect(third.keyId).toBe(ids[0]);
  });

  it.each([
    [
      'the use of a failed lease',
      async (leasing: Leasing) => {
        const grant = await leasing.lease(POOL);
        return { keyId: grant.keyId, giveBack: () => leasing.complete(POOL, grant.leaseId, { outcome: 'failure' }) };
      },
    ],
    [
      'the use of a proxied call the provider failed',
      async (leasing: Leasing) => {
        const use = await leasing.takeUse(POOL);
        const verdict = classifyProviderAnswer({ status: 500, documented: true });
        return { keyId: use.keyId, giveBack: () => leasing.settleUse(use, verdict) };
      },
    ],
  ])('a page read while %s is given back is not carried past it: the key is back ahead of it', async (_what, take) => {
    // Prepare: the first key unused, the others used once; the first use takes the first key.
    const store = new HeldGiveBacks();
    const { leasing, admin, clock, importKeys } = world(store);
    const ids = await importKeys('late', 3);
    for (const id of ids.slice(1)) await admin.update(POOL, id, { usageCount: 1 });
    clock.advance(10);
    const first = await take(leasing);
    // Act: the give-back's write is held; a lease reads its page meanwhile, then the write lands.
    clock.advance(PAGE_REUSE_MS);
    let release = (): void => undefined;
    store.hold = new Promise<void>((done) => (release = done));
    const givingBack = first.giveBack();
    const second = await leasing.lease(POOL);
    release();
    await givingBack;
    const third = await leasing.lease(POOL);
    // Assess: the first key, back at 0, not the next key of the page read before the give-back.
    expect([first.keyId, second.keyId]).toEqual([ids[0], ids[1]]);
    expect(third.keyId).toBe(ids[0]);
  });

  it('a use counted without a lease ends the carried page: that key is more used now', async () => {
    // Prepare
    const { leasing, ids } = await setup(3);
    await leasing.lease(POOL);
    // Act: the second key counted from outside a lease, then the next lease.
    await leasing.increment(POOL, ids[1] ?? '');
    const next = await leasing.lease(POOL);
    // Assess: the third key, still unused, not the second at its new count.
    expect(next.keyId).toBe(ids[2]);
  });

  it('after a lost race the broker reads the index again, not its carried page: another process is leasing', async () => {
    // Prepare
    const { leasing, store, ids, pools, sealer, clock } = await setup(4);
    await leasing.lease(POOL);
    // Act: another broker on the same store takes the next key of the page.
    const rival = new Leasing({ store, pools, sealer, clock: clock.now });
    const taken = await rival.lease(POOL);
    const readsBefore = store.calls.candidates ?? 0;
    const triesBefore = store.calls.tryLease ?? 0;
    await leasing.lease(POOL);
    await leasing.lease(POOL);
    // Assess: the carried key's write was refused (the rival's use), and the lease after that
    // read the index again rather than the rest of the page.
    expect(taken.keyId).toBe(ids[1]);
    expect((store.calls.tryLease ?? 0) - triesBefore).toBe(3);
    expect((store.calls.candidates ?? 0) - readsBefore).toBe(1);
  });
});

/** A store whose candidate reads can be held after they read, to answer late (`reading` resolves once one is held). */
class HeldReads extends MemoryKeyStore {
  hold: Promise<void> | undefined;
  private started = (): void => undefined;
  reading = new Promise<void>((done) => (this.started = done));
  override async candidates(...read: Parameters<MemoryKeyStore['candidates']>): Promise<CandidatePage> {
    const page = await super.candidates(...read);
    const hold = this.hold;
    if (hold) {
      this.started();
      await hold;
    }
    return page;
  }
}

/** A store whose give-backs (completions, refunds) can be held before they apply (`hold`), to land after other requests. */
class HeldGiveBacks extends MemoryKeyStore {
  hold: Promise<void> | undefined;
  override async tryComplete(...write: Parameters<MemoryKeyStore['tryComplete']>) {
    await this.hold;
    return super.tryComplete(...write);
  }
  override async refundProxied(...write: Parameters<MemoryKeyStore['refundProxied']>) {
    await this.hold;
    return super.refundProxied(...write);
  }
}

/** A store whose index lags: it keeps answering with candidates that are no longer leasable. */
class LaggingIndex extends MemoryKeyStore {
  stale: CandidatePage | undefined;
  override candidates(
    pool: string,
    shard: number,
    maxUses: number,
    limit: number,
    nowMs: number,
  ): Promise<CandidatePage> {
    if (this.stale) return Promise.resolve(this.stale);
    return super.candidates(pool, shard, maxUses, limit, nowMs);
  }
}

describe('when the index lags', () => {
  it('concludes no key is usable after seeing every stale candidate refused, without looping', async () => {
    // Prepare: one key, disabled, but the index still lists it.
    const { store, admin, leasing, importKeys } = world(new LaggingIndex());
    const [id = ''] = await importKeys('lag', 1);
    await admin.update(POOL, id, { status: 'disabled' });
    store.stale = { candidates: [{ keyId: id, usageCount: 0 }] };
    // Act / Assess
    await expect(leasing.lease(POOL)).rejects.toBeInstanceOf(NoUsableKey);
    expect(store.calls.tryLease).toBe(1);
  });
});

describe('completion', () => {
  it('counts once: a repeated completion changes nothing and answers the same', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const grant = await leasing.lease(POOL);
    // Act
    const first = await leasing.complete(POOL, grant.leaseId, { outcome: 'failure' });
    const again = await leasing.complete(POOL, grant.leaseId, { outcome: 'failure' });
    // Assess
    expect(first).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'active' });
    expect(again).toEqual(first);
    expect(store.peek(grant.keyId)?.usageCount).toBe(0);
  });

  it('unknown keeps the use counted and frees the slot, without touching the status', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const grant = await leasing.lease(POOL);
    // Act
    const result = await leasing.complete(POOL, grant.leaseId, { outcome: 'unknown' });
    // Assess
    expect(result).toEqual({ keyId: grant.keyId, usageCount: 1, status: 'active' });
    expect(Object.values(store.peek(grant.keyId)?.slots ?? {}).map((slot) => slot.outcome)).toEqual(['unknown']);
  });

  it('past its expiry a lease cannot be completed and its use stays counted', async () => {
    // Prepare
    const { leasing, clock, store } = await setup(1);
    const grant = await leasing.lease(POOL, { ttlSeconds: 1 });
    clock.advance(1_001);
    // Act / Assess
    await expect(leasing.complete(POOL, grant.leaseId, { outcome: 'failure' })).rejects.toBeInstanceOf(LeaseExpired);
    expect(store.peek(grant.keyId)?.usageCount).toBe(1);
  });

  it('past its expiry, a lease whose slot a later lease has taken still answers LeaseExpired', async () => {
    // Prepare: one key, cap 10; lease A (count 0, slot 0) expires; eight more leases take
    // counts 1..8, and the one at count 8 takes slot 8 mod 8 = 0 again.
    const { leasing, clock, poolAdmin } = await setup(1);
    await poolAdmin.set(POOL, { maxUses: 10 });
    const abandoned = await leasing.lease(POOL, { ttlSeconds: 1 });
    clock.advance(1_001);
    for (let i = 0; i < 8; i++)
      await leasing.complete(POOL, (await leasing.lease(POOL)).leaseId, { outcome: 'success' });
    // Act / Assess: the slot holds another lease's nonce now
    await expect(leasing.complete(POOL, abandoned.leaseId, { outcome: 'failure' })).rejects.toBeInstanceOf(
      LeaseExpired,
    );
  });

  it('invalid_key never overrides an operator who disabled the key; the use is still refunded', async () => {
    // Prepare
    const { admin, leasing } = await setup(1);
    const grant = await leasing.lease(POOL);
    await admin.update(POOL, grant.keyId, { status: 'disabled' });
    // Act
    const result = await leasing.complete(POOL, grant.leaseId, { outcome: 'out_of_credits' });
    // Assess
    expect(result).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'disabled' });
  });
});

/** A store whose lease write applies but whose answer is lost: the SDK's retry finds the condition failed. */
class AnswerLost extends MemoryKeyStore {
  lose = 0;
  override async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    const result = await super.tryLease(attempt);
    if (this.lose === 0 || !result.granted) return result;
    this.lose--;
    // The retry of the same request: its condition now fails on the item the first one wrote.
    return super.tryLease(attempt);
  }
}

describe('when a lease write applied but its answer was lost', () => {
  it('takes the refusal that shows its own nonce in the slot as its grant: one use counted, one lease', async () => {
    // Prepare
    const { store, leasing, importKeys } = world(new AnswerLost());
    const [id = ''] = await importKeys('lost', 1);
    store.lose = 1;
    // Act
    const grant = await leasing.lease(POOL);
    // Assess: the key's count moved once, and the grant is the lease written (slot open, ours).
    expect(grant.keyId).toBe(id);
    expect(grant.usageCount).toBe(0);
    expect(store.peek(id)?.usageCount).toBe(1);
    expect(Object.values(store.peek(id)?.slots ?? {})).toHaveLength(1);
  });
});
