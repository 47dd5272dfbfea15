/**
 * The operator's read-only overview (the console's data): every pool's health and the spread of
 * its usage counts against its cap, one pool's keys a page at a time, and the last maintenance
 * runs. Reads only, through the ports; never a secret (key records and KeyViews are masked).
 */
import { PoolNotFound } from '../domain/errors.js';
import type { MaintenanceRunRecord } from '../domain/maintenance-run.js';
import type { KeyRecord, KeyView, ListQuery, PoolPolicy } from '../domain/types.js';
import type { KeyAdminStore } from '../ports/key-admin-store.js';
import type { MaintenanceRunStore } from '../ports/maintenance-run-store.js';
import type { PoolStore } from '../ports/pool-store.js';
import type { KeyAdmin } from './key-admin.js';
import { type HealthInput, poolHealth, type PoolHealth, viewHealth } from './maintenance/pool-health.js';

/** The most bars a histogram has below the cap: a wider cap is shown in ranges of counts. */
export const HISTOGRAM_BARS = 10;
/** Keys read per request while summing a pool. */
const SUMMARY_PAGE = 1000;

/** One bar: the keys whose count is in [from, to] (`to` null: above the cap, unbounded). */
export interface HistogramBar {
  from: number;
  to: number | null;
  keys: number;
}

export interface PoolSummary {
  policy: PoolPolicy;
  health: PoolHealth;
  /** the last known balances of the accounts with a usable key, once per account (health's usableCredits) */
  usableCredits: number;
  /** counts 0..maxUses in at most HISTOGRAM_BARS bars, then one bar for the keys over the cap; retired keys in none */
  histogram: HistogramBar[];
}

/**
 * A key as the console lists it: the API's KeyView, with who set its status, why, when and
 * until when wherever the view carries them (older views do not: each is optional).
 */
export type KeyRow = KeyView & {
  statusBy?: string | null;
  statusReason?: string | null;
  statusAt?: string | null;
  cooldownUntil?: string | null;
};

export interface OverviewOptions {
  pools: Pick<PoolStore, 'list' | 'get'>;
  keys: Pick<KeyAdminStore, 'poolKeys' | 'record'>;
  /** lists a pool's keys, and gives each key of a known account its account's balance */
  keyAdmin: Pick<KeyAdmin, 'list' | 'views'>;
  runs: Pick<MaintenanceRunStore, 'recent'>;
  clock?: () => number;
}

/** An answer and the moment its data was read (ISO 8601). */
export interface Read<T> {
  readAt: string;
  data: T;
}

/** How many counts one bar of the histogram spans under a cap. */
function barWidth(maxUses: number): number {
  return Math.ceil((maxUses + 1) / HISTOGRAM_BARS);
}

/** The bars for a cap: one per count while they fit, else ranges of equal width; the last is over the cap. */
export function histogramBars(maxUses: number): HistogramBar[] {
  const width = barWidth(maxUses);
  const bars: HistogramBar[] = [];
  for (let from = 0; from <= maxUses; from += width)
    bars.push({ from, to: Math.min(from + width - 1, maxUses), keys: 0 });
  bars.push({ from: maxUses + 1, to: null, keys: 0 });
  return bars;
}

/** Sums one pool's keys (every page, each with its account's balance) into its summary. */
function summarize(policy: PoolPolicy, records: readonly HealthInput[], nowMs: number): PoolSummary {
  const [health] = poolHealth(records, [policy], nowMs);
  if (!health) throw new Error(`no health for pool ${policy.pool}`);
  const histogram = histogramBars(policy.maxUses);
  const width = barWidth(policy.maxUses);
  for (const record of records) {
    // A retired key is kept for the audit only: like poolHealth's total, the bars leave it out.
    if (record.status === 'retired') continue;
    const bar =
      record.usageCount > policy.maxUses ? histogram.at(-1) : histogram[Math.floor(record.usageCount / width)];
    if (bar) bar.keys++;
  }
  // Every key of an account shows the account's balance: summed per key, it would count it once per key.
  return { policy, health, usableCredits: health.usableCredits, histogram };
}

export class Overview {
  private readonly options: OverviewOptions;
  private readonly clock: () => number;

  constructor(options: OverviewOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
  }

  /** Every pool, by name, with its keys counted: reads each pool's keys once, a page at a time. */
  async pools(): Promise<Read<PoolSummary[]>> {
    const readAt = this.clock();
    const policies = await this.options.pools.list();
    const summaries: PoolSummary[] = [];
    for (const policy of policies) {
      const records: KeyRecord[] = [];
      let after: string | undefined;
      do {
        const page = await this.options.keys.poolKeys(policy.pool, SUMMARY_PAGE, after);
        records.push(...page.keys);
        after = page.lastKeyId;
      } while (after !== undefined);
      // The balance of a key of a known account is on the account's record: its view carries it.
      const views = await this.options.keyAdmin.views(policy.pool, records, readAt);
      summaries.push(summarize(policy, views.map(viewHealth), readAt));
    }
    return { readAt: new Date(readAt).toISOString(), data: summaries };
  }

  /** One page of a pool's keys, with the API's cursor; PoolNotFound for a pool that does not exist. */
  async keys(
    pool: string,
    query: Pick<ListQuery, 'cursor' | 'limit'>,
  ): Promise<Read<{ policy: PoolPolicy; page: { keys: KeyRow[]; cursor: string | null } }>> {
    const readAt = this.clock();
    const policy = await this.options.pools.get(pool);
    if (!policy) throw new PoolNotFound(pool);
    const page = await this.options.keyAdmin.list(pool, query);
    const keys = await Promise.all(page.keys.map((view) => this.withCooldown(view)));
    return { readAt: new Date(readAt).toISOString(), data: { policy, page: { keys, cursor: page.cursor } } };
  }

  /** The newest `limit` maintenance runs kept (30 days at most), newest first. */
  async runs(limit: number): Promise<Read<MaintenanceRunRecord[]>> {
    const readAt = this.clock();
    return { readAt: new Date(readAt).toISOString(), data: await this.options.runs.recent(limit, readAt) };
  }

  /**
   * A cooling key's return time. A view that carries `cooldownUntil` says it; an older view
   * does not, and the key's record (one narrow read, for cooling keys only) does.
   */
  private async withCooldown(view: KeyRow): Promise<KeyRow> {
    // Read through the wider type: where KeyView always has the field, this still compiles.
    const carried = (view as { cooldownUntil?: string | null }).cooldownUntil;
    if (view.status !== 'cooling' || carried !== undefined) return view;
    const record = await this.options.keys.record(view.pool, view.keyId);
    const until = record?.cooldownUntil;
    return { ...view, cooldownUntil: until === undefined ? null : new Date(until).toISOString() };
  }
}
