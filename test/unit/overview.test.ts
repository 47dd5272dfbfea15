/**
 * The console's data (lib/use-cases/overview.ts) on the in-memory stores: the histogram's bars
 * against the cap, usable keys and credits, a cooling key's return time from its record when the
 * view has none, and the runs newest first.
 */
import { describe, expect, it } from 'vitest';
import { KeyAdmin } from '../../lib/use-cases/key-admin.js';
import { histogramBars, Overview, type OverviewOptions } from '../../lib/use-cases/overview.js';
import { Retirement } from '../../lib/use-cases/retirement.js';
import { MemoryMaintenanceRunStore } from '../support/memory-maintenance-runs.js';
import { POOL, setup } from '../support/memory-world.js';

describe('histogramBars', () => {
  it('one bar per count up to the cap while they fit, then ranges of equal width; always one bar over the cap', () => {
    expect(histogramBars(3)).toEqual([
      { from: 0, to: 0, keys: 0 },
      { from: 1, to: 1, keys: 0 },
      { from: 2, to: 2, keys: 0 },
      { from: 3, to: 3, keys: 0 },
      { from: 4, to: null, keys: 0 },
    ]);
    const wide = histogramBars(99);
    expect(wide).toHaveLength(11);
    expect(wide[0]).toEqual({ from: 0, to: 9, keys: 0 });
    expect(wide[9]).toEqual({ from: 90, to: 99, keys: 0 });
    expect(wide[10]).toEqual({ from: 100, to: null, keys: 0 });
  });
});

describe('Overview', () => {
  async function overviewOf(keys: number) {
    const w = await setup(keys);
    const runs = new MemoryMaintenanceRunStore();
    const overview = new Overview({
      pools: w.poolStore,
      keys: w.store,
      keyAdmin: w.admin,
      runs,
      clock: w.clock.now,
    });
    return { ...w, overview, runs };
  }

  it('counts every key of the pool into its bar, its status and its usable credits', async () => {
    // Prepare: cap 2; counts 0, 0, 1, 2, 3 (over the cap); one key disabled; balances on two.
    const { overview, poolAdmin, admin, store, ids } = await overviewOf(5);
    await poolAdmin.set(POOL, { maxUses: 2 });
    for (const [i, usageCount] of [0, 0, 1, 2, 3].entries())
      if (usageCount) await admin.update(POOL, ids[i] ?? '', { usageCount });
    await admin.update(POOL, ids[1] ?? '', { status: 'disabled' });
    await store.write({ keyId: ids[0] ?? '', seenStatus: 'active', change: 'none', credits: 7.5, checkedAt: 'x' });
    await store.write({ keyId: ids[4] ?? '', seenStatus: 'active', change: 'none', credits: 100, checkedAt: 'x' });
    // Act
    const { data } = await overview.pools();
    const summary = data.find((s) => s.policy.pool === POOL);
    // Assess
    expect(summary?.histogram.map((bar) => bar.keys)).toEqual([2, 1, 1, 1]);
    expect(summary?.health).toMatchObject({ total: 5, active: 4, disabled: 1, usable: 3 });
    // Only usable keys' balances: the key over the cap has 100 but is not usable.
    expect(summary?.usableCredits).toBe(7.5);
  });

  it('leaves retired keys out of the histogram, as out of every count but their own: its bars sum to the total', async () => {
    // Prepare: three keys at count 0, one of them retired (kept for the audit, its secret gone).
    const { overview, store, poolStore, pools, clock, ids } = await overviewOf(3);
    await new Retirement({ store, poolStore, pools, clock: clock.now }).retireKey(POOL, ids[0] ?? '');
    // Act
    const { data } = await overview.pools();
    const summary = data.find((s) => s.policy.pool === POOL);
    // Assess
    expect(summary?.health).toMatchObject({ total: 2, retired: 1 });
    expect(summary?.histogram.reduce((sum, bar) => sum + bar.keys, 0)).toBe(2);
    expect(summary?.histogram[0]?.keys).toBe(2);
  });

  it("counts an account's balance once, from the account's record, as keypool status does", async () => {
    // Prepare: two usable keys of one account with 40 credits (the balance lives on the account's
    // record, not on its keys), and a key on its own with 5.
    const { poolStore, pools, store, ids } = await overviewOf(3);
    await store.write({ keyId: ids[2] ?? '', seenStatus: 'active', change: 'none', credits: 5, checkedAt: 'x' });
    const inAccount = new Set([ids[0], ids[1]]);
    const keys: OverviewOptions['keys'] = {
      record: (pool, keyId) => store.record(pool, keyId),
      poolKeys: async (pool, limit, after) => {
        const page = await store.poolKeys(pool, limit, after);
        return { ...page, keys: page.keys.map((k) => (inAccount.has(k.keyId) ? { ...k, account: 'org-a' } : k)) };
      },
    };
    const refuse = () => Promise.reject(new Error('the overview only reads'));
    const keyAdmin = new KeyAdmin({
      store,
      pools,
      accounts: {
        records: (pool, names) =>
          Promise.resolve(
            new Map(
              names.map((account) => [
                account,
                { pool, account, credits: 40, creditsCheckedAt: 'x', status: 'active' as const },
              ]),
            ),
          ),
        setAccount: refuse,
        ensure: refuse,
      },
    });
    const overview = new Overview({ pools: poolStore, keys, keyAdmin, runs: new MemoryMaintenanceRunStore() });
    // Act
    const { data } = await overview.pools();
    const summary = data.find((s) => s.policy.pool === POOL);
    // Assess
    expect(summary?.health).toMatchObject({ usable: 3, credits: 45, usableCredits: 45, unchecked: 0 });
    expect(summary?.usableCredits).toBe(45);
  });

  it("gives a cooling key its return time from its record when the key's view has none", async () => {
    // Prepare
    const { overview, leasing, clock } = await overviewOf(2);
    const grant = await leasing.lease(POOL);
    await leasing.complete(POOL, grant.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 90 });
    // Act
    const { data } = await overview.keys(POOL, {});
    const cooling = data.page.keys.find((k) => k.keyId === grant.keyId);
    // Assess
    expect(cooling?.status).toBe('cooling');
    expect(Date.parse(cooling?.cooldownUntil ?? '')).toBe(clock.now() + 90_000);
    expect(data.page.keys.filter((k) => k.status === 'active').every((k) => !k.cooldownUntil)).toBe(true);
  });

  it('lists the runs newest first, at most the number asked for', async () => {
    // Prepare
    const { overview, runs, clock } = await overviewOf(0);
    const run = (ms: number) => ({
      startedAt: new Date(ms).toISOString(),
      finishedAt: new Date(ms + 1000).toISOString(),
      pool: null,
      checked: 1,
      changed: 0,
      errors: 0,
      firstErrors: [],
    });
    for (const ms of [clock.now() - 3000, clock.now() - 1000, clock.now() - 2000]) await runs.record(run(ms));
    // Act
    const { data } = await overview.runs(2);
    // Assess
    expect(data.map((r) => r.startedAt)).toEqual([
      run(clock.now() - 1000).startedAt,
      run(clock.now() - 2000).startedAt,
    ]);
  });
});
