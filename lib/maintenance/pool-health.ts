/** Per-pool counts from keys' states: what `keypool status`, the maintenance summary and the metrics report. */
import { effectiveStatus } from '../domain/rules.js';
import type { KeyStatus } from '../domain/types.js';

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
  total: number;
  active: number;
  cooling: number;
  exhausted: number;
  disabled: number;
  /** active with usageCount <= the default cap: what a lease with the default cap can get */
  usable: number;
  /** sum of the last known balances (keys never checked add nothing) */
  credits: number;
  /** keys not disabled whose balance was never checked */
  unchecked: number;
  /** the oldest balance check among keys not disabled; null when none was checked */
  oldestCheck: string | null;
}

/** Groups keys by pool (sorted by name) and counts them by effective status. */
export function poolHealth(keys: Iterable<HealthInput>, defaultMaxUses: number, nowMs: number): PoolHealth[] {
  const pools = new Map<string, PoolHealth>();
  for (const key of keys) {
    let health = pools.get(key.pool);
    if (!health) {
      health = { pool: key.pool, total: 0, active: 0, cooling: 0, exhausted: 0, disabled: 0, usable: 0, credits: 0, unchecked: 0, oldestCheck: null };
      pools.set(key.pool, health);
    }
    const status = effectiveStatus(key, nowMs);
    health.total++;
    health[status]++;
    if (status === 'active' && key.usageCount <= defaultMaxUses) health.usable++;
    if (typeof key.credits === 'number') health.credits += key.credits;
    if (status !== 'disabled') {
      const checked = key.creditsCheckedAt ?? null;
      if (checked === null) health.unchecked++;
      else if (health.oldestCheck === null || checked < health.oldestCheck) health.oldestCheck = checked;
    }
  }
  // Fractional credits summed in floating point: keep the total readable.
  for (const health of pools.values()) health.credits = Math.round(health.credits * 1000) / 1000;
  return [...pools.values()].sort((a, b) => a.pool.localeCompare(b.pool));
}
