/** Per-pool counts from keys' states: what `keypool status`, the maintenance summary and the metrics report. */
import { effectiveStatus } from '../../domain/rules.js';
import type { KeyStatus, PoolPolicy } from '../../domain/types.js';

export interface HealthInput {
  pool: string;
  /** the stored status (a cooling key past its cooldown counts as active) */
  status: KeyStatus;
  cooldownUntil?: number;
  usageCount: number;
  credits?: number | null;
  creditsCheckedAt?: string | null;
}

export interface PoolHealth {
  pool: string;
  /** the pool's cap, which `usable` is counted under */
  maxUses: number;
  /** keys not retired */
  total: number;
  active: number;
  cooling: number;
  exhausted: number;
  disabled: number;
  /** reported invalid by a caller, waiting for maintenance to confirm or clear */
  suspect: number;
  /** the stored ciphertext itself does not open: never leased; `keypool reseal` or a re-import */
  undecryptable: number;
  /** retired by an operator: their secrets destroyed, their records kept for the audit; in no other count */
  retired: number;
  /** active with usageCount <= the pool's cap: what a lease can get */
  usable: number;
  /** sum of the last known balances (keys never checked add nothing) */
  credits: number;
  /** keys not disabled whose balance was never checked */
  unchecked: number;
  /** the oldest balance check among keys not disabled; null when none was checked */
  oldestCheck: string | null;
}

/** Counts the keys of each of `pools` (sorted by name, every pool even with no key) by effective status. */
export function poolHealth(
  keys: Iterable<HealthInput>,
  pools: readonly Pick<PoolPolicy, 'pool' | 'maxUses'>[],
  nowMs: number,
): PoolHealth[] {
  const health = new Map<string, PoolHealth>();
  for (const { pool, maxUses } of pools) {
    health.set(pool, {
      pool,
      maxUses,
      total: 0,
      active: 0,
      cooling: 0,
      exhausted: 0,
      disabled: 0,
      suspect: 0,
      undecryptable: 0,
      retired: 0,
      usable: 0,
      credits: 0,
      unchecked: 0,
      oldestCheck: null,
    });
  }
  for (const key of keys) {
    const counts = health.get(key.pool);
    if (!counts) continue;
    const status = effectiveStatus(key, nowMs);
    if (status === 'retired') {
      counts.retired++;
      continue;
    }
    counts.total++;
    counts[status]++;
    if (status === 'active' && key.usageCount <= counts.maxUses) counts.usable++;
    if (typeof key.credits === 'number') counts.credits += key.credits;
    if (status !== 'disabled') {
      const checked = key.creditsCheckedAt ?? null;
      if (checked === null) counts.unchecked++;
      else if (counts.oldestCheck === null || checked < counts.oldestCheck) counts.oldestCheck = checked;
    }
  }
  // Fractional credits summed in floating point: keep the total readable.
  for (const counts of health.values()) counts.credits = Math.round(counts.credits * 1000) / 1000;
  return [...health.values()].sort((a, b) => a.pool.localeCompare(b.pool));
}
