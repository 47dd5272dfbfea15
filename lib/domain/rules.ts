/**
 * keypool's rules about keys, written once. The use cases and the in-memory store in the tests
 * apply these functions; the DynamoDB key stores (lib/adapters/dynamo-lease-store.ts,
 * dynamo-key-admin-store.ts, dynamo-key-table.ts) state the same rules as condition
 * expressions, each named there after the function it mirrors.
 */
import type { KeyRecord, KeyStatus, LeaseSlot, Outcome } from './types.js';

/** Statuses whose keys sit in the usage-count index: the only keys a lease ever reads. */
export const INDEXED_STATUSES = ['active', 'cooling'] as const satisfies readonly KeyStatus[];

/** Whether a key with this status belongs in the usage-count index. */
export function inUsageIndex(status: KeyStatus): boolean {
  return (INDEXED_STATUSES as readonly KeyStatus[]).includes(status);
}

/** A cooling key whose cooldown has passed is active again: no sweeper has to say so. */
export function effectiveStatus(record: Pick<KeyRecord, 'status' | 'cooldownUntil'>, nowMs: number): KeyStatus {
  if (record.status === 'cooling' && (record.cooldownUntil ?? 0) <= nowMs) return 'active';
  return record.status;
}

/**
 * Whether a key could take one more lease from `pool` under `maxUses` at `nowMs`: in that pool,
 * effectively active, and its count at most the cap (a key at count N serves use N + 1).
 */
export function isLeasable(
  key: Pick<KeyRecord, 'pool' | 'status' | 'cooldownUntil' | 'usageCount'>,
  pool: string,
  maxUses: number,
  nowMs: number,
): boolean {
  return key.pool === pool && effectiveStatus(key, nowMs) === 'active' && key.usageCount <= maxUses;
}

/** A lease slot may take a new lease when it is empty, completed, or past its expiry. */
export function isSlotFree(slot: LeaseSlot | undefined, nowMs: number): boolean {
  return slot === undefined || slot.outcome !== undefined || slot.expiresAtMs < nowMs;
}

/** What an outcome does to the key's status, and from which statuses it may. */
export interface StatusChange {
  to: KeyStatus;
  /** the change applies only from these statuses */
  from: readonly KeyStatus[];
}

/**
 * The status an outcome moves a key to. A caller's report never overrides an operator's
 * "disabled" and never revives an exhausted key, so every change names the statuses it may
 * start from; and no report takes a key away for good: invalid_key makes it suspect, for
 * maintenance to confirm or clear.
 */
export function outcomeStatusChange(outcome: Outcome): StatusChange | undefined {
  switch (outcome) {
    case 'invalid_key':
      return { to: 'suspect', from: ['active', 'cooling', 'exhausted', 'suspect'] };
    case 'out_of_credits':
      return { to: 'exhausted', from: ['active', 'cooling', 'exhausted'] };
    case 'rate_limited':
      return { to: 'cooling', from: ['active', 'cooling'] };
    default:
      return undefined;
  }
}

/**
 * Success keeps the use its lease counted, and so does `unknown` (the provider probably billed
 * it); every other outcome gives it back.
 */
export function refundsUse(outcome: Outcome): boolean {
  return outcome !== 'success' && outcome !== 'unknown';
}

/** The cooldown a rate_limited report asks for: the caller's Retry-After, else the pool's cooldown. */
export function cooldownEnd(nowMs: number, poolCooldownSeconds: number, retryAfterSeconds: number | undefined): number {
  return nowMs + (retryAfterSeconds ?? poolCooldownSeconds) * 1000;
}
