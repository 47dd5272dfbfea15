/**
 * Why a pool is dry: a `no_usable_key` refusal counts the pool's keys that are not usable by
 * why, from a count this process takes at most once a minute per pool (on the in-memory store
 * with a fake clock, which counts the store's calls).
 */
import { describe, expect, it } from 'vitest';
import { type CountedKey, countKeys, dryPool } from '../../lib/domain/dry-pool.js';
import type { KeyPageRead } from '../../lib/ports/key-pages.js';
import { Broker } from '../../lib/use-cases/broker.js';
import { DRY_POOL_COUNT_MS, DRY_POOL_WAIT_MS, DryPoolCounts } from '../../lib/use-cases/dry-pool-counts.js';
import { Leasing } from '../../lib/use-cases/leasing.js';
import { Retirement } from '../../lib/use-cases/retirement.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';
import type { NoUsableKey } from '../../lib/domain/errors.js';
import { refusal } from '../support/refusal.js';
import { fakeClock, POOL, world } from '../support/memory-world.js';

/** A pool of seven keys, each unusable for another reason (one retired), under the default cap 3. */
async function dryWorld(store = new MemoryKeyStore()) {
  const w = world(store);
  const [overCap, disabled, cooling, suspect, exhausted, undecryptable, retired] = await w.importKeys('dry', 7);
  await w.admin.update(POOL, overCap ?? '', { usageCount: 4 });
  await w.admin.update(POOL, disabled ?? '', { status: 'disabled' });
  const outcomes = [
    [cooling, 'rate_limited'],
    [suspect, 'invalid_key'],
    [exhausted, 'out_of_credits'],
  ] as const;
  for (const [keyId, outcome] of outcomes) {
    // Each report rests the key the lease just took: the next lease takes the next key.
    const grant = await w.leasing.lease(POOL);
    expect(grant.keyId).toBe(keyId);
    await w.leasing.complete(POOL, grant.leaseId, {
      outcome,
      ...(outcome === 'rate_limited' ? { retryAfterSeconds: 120 } : {}),
    });
  }
  Object.assign(store.peek(undecryptable ?? '') ?? {}, { status: 'undecryptable', statusBy: 'sealing' });
  const retirement = new Retirement({ store, poolStore: w.poolStore, pools: w.pools, clock: w.clock.now });
  await retirement.retireKey(POOL, retired ?? '');
  return w;
}

describe('a no_usable_key refusal', () => {
  it("counts the pool's keys that are not usable by why (retired ones left out) and points to keypool status", async () => {
    // Prepare
    const { leasing, clock } = await dryWorld();
    const at = clock.now();
    // Act
    const error = await refusal(leasing.lease(POOL));
    // Assess
    expect(error.dry).toEqual({
      unusable: {
        overCap: 1,
        cooling: 1,
        suspect: 1,
        exhausted: 1,
        disabled: 1,
        undecryptable: 1,
        accountExhausted: 0,
      },
      countedAt: new Date(at).toISOString(),
      nextReturnAt: new Date(at + 120_000).toISOString(),
    });
    expect(error.retryAfterSeconds).toBe(120);
    expect(error.message).toContain(
      'not usable: 1 over the cap, 1 cooling, 1 suspect, 1 exhausted, 1 disabled, 1 undecryptable',
    );
    expect(error.message).toContain('`keypool status`');
  });

  it('N refusals within a minute read the pool once; the first after the minute reads it again', async () => {
    // Prepare
    const { leasing, clock, store } = await dryWorld();
    const before = store.calls.keyStates ?? 0;
    // Act
    const answers: NoUsableKey[] = [];
    for (let i = 0; i < 12; i++) {
      answers.push(await refusal(leasing.lease(POOL)));
      clock.advance(4_999);
    }
    const withinMinute = (store.calls.keyStates ?? 0) - before;
    clock.advance(1_000);
    const later = await refusal(leasing.lease(POOL));
    // Assess
    expect(withinMinute).toBe(1);
    expect((store.calls.keyStates ?? 0) - before).toBe(2);
    expect(new Set(answers.map((a) => a.dry?.countedAt)).size).toBe(1);
    expect(later.dry?.countedAt).not.toBe(answers[0]?.dry?.countedAt);
  });

  it('concurrent refusals share one count; a granted lease reads no count at all', async () => {
    // Prepare
    const { leasing, store, admin, importKeys } = await dryWorld();
    // Act
    await Promise.all(Array.from({ length: 8 }, () => refusal(leasing.lease(POOL))));
    const afterRefusals = store.calls.keyStates;
    const [fresh] = await importKeys('fresh', 1);
    for (let i = 0; i < 4; i++) await leasing.lease(POOL);
    // Assess
    expect(afterRefusals).toBe(1);
    expect(store.calls.keyStates).toBe(1);
    expect((await admin.list(POOL)).keys.find((k) => k.keyId === fresh)?.usageCount).toBe(4);
  });

  it('a count that cannot be read leaves the refusal a 409 without counts, and is not tried again within the minute', async () => {
    // Prepare
    class FailingCounts extends MemoryKeyStore {
      reads = 0;
      override keyStates(): Promise<KeyPageRead<never>> {
        this.reads++;
        return Promise.reject(new Error('throttled'));
      }
    }
    const store = new FailingCounts();
    const { leasing } = await dryWorld(store);
    // Act
    const first = await refusal(leasing.lease(POOL));
    const second = await refusal(leasing.lease(POOL));
    // Assess
    expect([first.dry, second.dry]).toEqual([undefined, undefined]);
    expect(first.message).toContain('`keypool status`');
    expect(store.reads).toBe(1);
  });
});

describe('a refusal in a pool whose count is slow', () => {
  /** A store whose count reads wait until the test opens the gate (a large pool, or a slow table). */
  class GatedCounts extends MemoryKeyStore {
    reads = 0;
    private opened = false;
    private readonly waiting: (() => void)[] = [];
    open(): void {
      this.opened = true;
      for (const release of this.waiting.splice(0)) release();
    }
    override async keyStates(pool: string, limit: number, afterKeyId?: string) {
      this.reads++;
      if (!this.opened) await new Promise<void>((resolve) => this.waiting.push(resolve));
      return super.keyStates(pool, limit, afterKeyId);
    }
  }

  it('is answered without counts after the bounded wait; the count goes on and the next refusal carries it', async () => {
    // Prepare
    const store = new GatedCounts();
    const { clock, ...w } = await dryWorld(store);
    const leasing = new Leasing({
      store,
      pools: w.pools,
      sealer: w.sealer,
      clock: clock.now,
      dryPool: new DryPoolCounts({ store, clock: clock.now, waitMs: 20 }),
    });
    // Act
    const first = await refusal(leasing.lease(POOL));
    store.open();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const second = await refusal(leasing.lease(POOL));
    // Assess
    expect(first.dry).toBeUndefined();
    expect(first.message).toContain('`keypool status`');
    expect(second.dry?.unusable).toMatchObject({ overCap: 1, cooling: 1, disabled: 1 });
    expect(store.reads).toBe(1);
  }, 5_000);

  it('a broker told to wait for the whole count (the CLI, which refuses once and exits) answers with it', async () => {
    // Prepare
    const store = new GatedCounts();
    const { clock, poolStore, sealer } = await dryWorld(store);
    const broker = new Broker({ store, poolStore, sealer, clock: clock.now, dryPoolWaitMs: Infinity });
    // Act
    const answer = refusal(broker.lease(POOL));
    setTimeout(() => store.open(), DRY_POOL_WAIT_MS + 100);
    const refused = await answer;
    // Assess
    expect(refused.dry?.unusable).toMatchObject({ overCap: 1, cooling: 1, disabled: 1 });
    expect(store.reads).toBe(1);
  }, 5_000);

  it('a count that outlasts the minute stops paging and counts nothing; the next refusal after it counts again', async () => {
    // Prepare: a pool whose pages never end, each read taking 10 s of the clock.
    class EndlessCounts extends MemoryKeyStore {
      reads = 0;
      constructor(private readonly advance: (ms: number) => void) {
        super();
      }
      override keyStates(): Promise<KeyPageRead<CountedKey & { keyId: string }>> {
        this.reads++;
        this.advance(10_000);
        if (this.reads > 50) return Promise.reject(new Error('read past any bound'));
        return Promise.resolve({
          keys: [{ keyId: `k_${this.reads}`, status: 'disabled', usageCount: 0 }],
          lastKeyId: `k_${this.reads}`,
        });
      }
    }
    const clock = fakeClock();
    const store = new EndlessCounts(clock.advance);
    const counts = new DryPoolCounts({ store, clock: clock.now });
    // Act
    const first = await counts.dry(POOL, 3);
    const readsOfFirst = store.reads;
    const second = await counts.dry(POOL, 3);
    // Assess
    expect(first).toBeUndefined();
    expect(second).toBeUndefined();
    expect(readsOfFirst).toBeLessThanOrEqual(DRY_POOL_COUNT_MS / 10_000);
    expect(store.reads).toBeGreaterThan(readsOfFirst);
    expect(store.reads).toBeLessThanOrEqual((2 * DRY_POOL_COUNT_MS) / 10_000);
  });
});

describe('a count of keys', () => {
  it('tells over the cap under any cap from one count; a rest that ended counts as active; retired keys not at all', () => {
    // Prepare
    const now = Date.UTC(2030, 0, 1);
    const count = countKeys(
      [
        { status: 'active', usageCount: 2 },
        { status: 'active', usageCount: 5 },
        { status: 'cooling', usageCount: 4, cooldownUntil: now - 1 },
        { status: 'suspect', usageCount: 0, cooldownUntil: now + 9_000 },
        { status: 'exhausted', usageCount: 0 },
        { status: 'retired', usageCount: 9 },
      ],
      now,
    );
    // Act
    const underThree = dryPool(count, 3, now);
    const underOne = dryPool(count, 1, now);
    const afterRest = dryPool(count, 3, now + 10_000);
    // Assess
    expect(underThree.unusable).toMatchObject({ overCap: 2, cooling: 0, suspect: 1, exhausted: 1 });
    expect(underOne.unusable.overCap).toBe(3);
    expect(underThree.nextReturnAt).toBe(new Date(now + 9_000).toISOString());
    expect(afterRest.nextReturnAt).toBeUndefined();
  });
});
