/**
 * Why a pool is dry: its keys counted by why a lease cannot use them, for the `no_usable_key`
 * refusal. A count is taken from the keys' records (lib/use-cases/dry-pool-counts.ts keeps one
 * per pool for a minute); the cap is applied when the refusal is answered, so one count serves
 * every cap a caller may ask for.
 */
import { effectiveStatus } from './rules.js';
import type { KeyRecord, UnusableCounts } from './types.js';

/** What a count reads of a key. */
export type CountedKey = Pick<KeyRecord, 'status' | 'cooldownUntil' | 'usageCount'>;

/** A pool's keys counted at one moment. */
export interface PoolCount {
  /** effectively active keys by usage count: how many are over any cap */
  activeByCount: Record<number, number>;
  /** the keys out of use for a reason of their own (overCap aside: it depends on the cap) */
  resting: Omit<UnusableCounts, 'overCap'>;
  /** the earliest end of a rest (cooling, or a caller's suspect or exhausted), ms since the epoch */
  nextReturnMs?: number;
  countedAtMs: number;
}

/** What a refusal says about the pool: the counts under its cap, when they were taken, the next return. */
export interface DryPool {
  unusable: UnusableCounts;
  /** when the keys were counted (ISO 8601): the counts are at most a minute old */
  countedAt: string;
  /** the earliest end of a rest seen by the count, while it is still ahead (ISO 8601) */
  nextReturnAt?: string;
}

/** Counts keys by effective status at `nowMs`; a retired key is not counted (it is gone for good). */
export function countKeys(keys: Iterable<CountedKey>, nowMs: number): PoolCount {
  const count: PoolCount = {
    activeByCount: {},
    resting: { cooling: 0, suspect: 0, exhausted: 0, disabled: 0, undecryptable: 0, accountExhausted: 0 },
    countedAtMs: nowMs,
  };
  for (const key of keys) {
    const status = effectiveStatus(key, nowMs);
    if (status === 'retired') continue;
    if (status === 'active') {
      count.activeByCount[key.usageCount] = (count.activeByCount[key.usageCount] ?? 0) + 1;
      continue;
    }
    count.resting[status]++;
    if (key.cooldownUntil !== undefined && key.cooldownUntil > nowMs)
      count.nextReturnMs = Math.min(count.nextReturnMs ?? Infinity, key.cooldownUntil);
  }
  return count;
}

/** The refusal's account of the pool under the cap `maxUses`, as of `nowMs`. */
export function dryPool(count: PoolCount, maxUses: number, nowMs: number): DryPool {
  let overCap = 0;
  for (const [uses, keys] of Object.entries(count.activeByCount)) if (Number(uses) > maxUses) overCap += keys;
  const next = count.nextReturnMs;
  return {
    unusable: { overCap, ...count.resting },
    countedAt: new Date(count.countedAtMs).toISOString(),
    ...(next !== undefined && next > nowMs ? { nextReturnAt: new Date(next).toISOString() } : {}),
  };
}

const REASON_TEXT: Record<keyof UnusableCounts, string> = {
  overCap: 'over the cap',
  cooling: 'cooling',
  suspect: 'suspect',
  exhausted: 'exhausted',
  disabled: 'disabled',
  undecryptable: 'undecryptable',
  accountExhausted: 'in an exhausted account',
};

/** The counts in words, e.g. "4 over the cap, 1 disabled"; "no keys" when every count is 0. */
export function unusableText(unusable: UnusableCounts): string {
  const parts = (Object.keys(REASON_TEXT) as (keyof UnusableCounts)[])
    .filter((reason) => unusable[reason] > 0)
    .map((reason) => `${unusable[reason]} ${REASON_TEXT[reason]}`);
  return parts.length ? parts.join(', ') : 'no keys';
}
