/** Per-pool counts from keys' states: what `keypool status`, the maintenance summary and the metrics report. */
import { effectiveStatus } from '../../domain/rules.js';
import type { KeyStatus, KeyView, PoolPolicy } from '../../domain/types.js';

export interface HealthInput {
  pool: string;
  /** the stored status (a cooling key past its cooldown counts as active) */
  status: KeyStatus;
  cooldownUntil?: number;
  usageCount: number;
  /** the key's balance, or its account's once its account is known */
  credits?: number | null;
  creditsCheckedAt?: string | null;
  keyId?: string;
  /** the key's account: its balance is counted once per account (absent: the key is its own) */
  account?: string | null;
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
  /** sum of the last known balances, once per account (keys never checked add nothing) */
  credits: number;
  /** the same sum over the accounts in service only: those with a usable key */
  usableCredits: number;
  /** keys not disabled whose balance was never checked */
  unchecked: number;
  /** the oldest balance check among keys not disabled; null when none was checked */
  oldestCheck: string | null;
}

/**
 * A key's view as poolHealth reads it: its balance is already its account's, and its status the
 * effective one; without an end (the view's cooldownUntil is a time for people), poolHealth keeps
 * the status as it is.
 */
export function viewHealth({ cooldownUntil: _end, ...view }: KeyView): HealthInput {
  return view;
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
      usableCredits: 0,
      unchecked: 0,
      oldestCheck: null,
    });
  }
  /** per pool, each account's balance and whether it has a usable key */
  const accounts = new Map<string, Map<string, { credits: number; usable: boolean }>>();
  let anonymous = 0;
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
    const usable = status === 'active' && key.usageCount <= counts.maxUses;
    if (usable) counts.usable++;
    const byAccount = accounts.get(key.pool) ?? new Map<string, { credits: number; usable: boolean }>();
    accounts.set(key.pool, byAccount);
    const name = key.account ?? key.keyId ?? `#${anonymous++}`;
    const account = byAccount.get(name) ?? { credits: 0, usable: false };
    if (typeof key.credits === 'number') account.credits = key.credits;
    account.usable ||= usable;
    byAccount.set(name, account);
    if (status !== 'disabled') {
      const checked = key.creditsCheckedAt ?? null;
      if (checked === null) counts.unchecked++;
      else if (counts.oldestCheck === null || checked < counts.oldestCheck) counts.oldestCheck = checked;
    }
  }
  // Fractional credits summed in floating point: keep the totals readable.
  for (const counts of health.values()) {
    for (const account of accounts.get(counts.pool)?.values() ?? []) {
      counts.credits += account.credits;
      if (account.usable) counts.usableCredits += account.credits;
    }
    counts.credits = Math.round(counts.credits * 1000) / 1000;
    counts.usableCredits = Math.round(counts.usableCredits * 1000) / 1000;
  }
  return [...health.values()].sort((a, b) => a.pool.localeCompare(b.pool));
}
