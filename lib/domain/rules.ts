/**
 * keypool's rules about keys, written once. The use cases and the in-memory store in the tests
 * apply these functions; the DynamoDB key stores (lib/adapters/dynamo-lease-store.ts,
 * dynamo-key-admin-store.ts, dynamo-key-table.ts) state the same rules as condition
 * expressions, each named there after the function it mirrors.
 */
import type { KeyRecord, KeyStatus, LeaseSlot, Outcome, StatusStamp } from './types.js';

/**
 * Statuses that may be temporary: with an end (`cooldownUntil`) a key in one of them rests in
 * the usage index, skipped by leases until the end and effectively active after it.
 */
export const TEMPORARY_STATUSES = ['cooling', 'exhausted', 'suspect'] as const satisfies readonly KeyStatus[];

function isTemporary(status: KeyStatus): boolean {
  return (TEMPORARY_STATUSES as readonly KeyStatus[]).includes(status);
}

/**
 * Whether a key with this status belongs in the usage-count index, the only keys a lease ever
 * reads: active and cooling keys, and a suspect or exhausted key with an end (a caller's
 * hypothesis: leased again once it ends). A verdict without an end (the provider's exhausted or
 * suspect, disabled, undecryptable) keeps a key out.
 */
export function inUsageIndex(status: KeyStatus, hasUntil = false): boolean {
  return status === 'active' || status === 'cooling' || (hasUntil && isTemporary(status));
}

/**
 * A temporary status whose end has passed is active again: no sweeper has to say so. A status
 * without an end (a verdict) stays what it is.
 */
export function effectiveStatus(record: Pick<KeyRecord, 'status' | 'cooldownUntil'>, nowMs: number): KeyStatus {
  if (isTemporary(record.status) && record.cooldownUntil !== undefined && record.cooldownUntil <= nowMs)
    return 'active';
  return record.status;
}

/**
 * An operator's `disabled`: changed by nothing but an operator. A `disabled` with no setter was
 * written before setters were recorded, when only an operator (or the provider, through
 * maintenance, which re-reads it) could disable: it is taken as the operator's.
 */
export function isOperatorDisabled(record: Pick<KeyRecord, 'status' | 'statusBy'>): boolean {
  return record.status === 'disabled' && (record.statusBy === undefined || record.statusBy === 'operator');
}

/** The status a key has now, with who set it, why, when and until when: what an undecryptable mark keeps. */
export function statusStamp(
  record: Pick<KeyRecord, 'status' | 'statusBy' | 'statusReason' | 'statusAt' | 'cooldownUntil'>,
): StatusStamp {
  return {
    status: record.status,
    ...(record.statusBy === undefined ? {} : { by: record.statusBy }),
    ...(record.statusReason === undefined ? {} : { reason: record.statusReason }),
    ...(record.statusAt === undefined ? {} : { at: record.statusAt }),
    ...(record.cooldownUntil === undefined ? {} : { until: record.cooldownUntil }),
  };
}

/** An operator's status: `active` has no setter; `disabled` is the operator's, at `at`. */
export function operatorStamp(status: Extract<KeyStatus, 'active' | 'disabled'>, at: string): StatusStamp {
  return status === 'active' ? { status } : { status, by: 'operator', reason: 'operator', at };
}

/**
 * The status maintenance gives a key for what the provider said (lib/ports/balance-store.ts):
 * `exhaust` (a balance below the pool's minimum) and `disable` (the provider refused the key,
 * in its documented error shape) are the provider's verdicts, without an end; `reactivate`
 * makes the key active; `none` changes no status.
 */
export function balanceStamp(
  change: 'none' | 'exhaust' | 'disable' | 'reactivate',
  at: string,
): StatusStamp | undefined {
  switch (change) {
    case 'exhaust':
      return { status: 'exhausted', by: 'provider', reason: 'low_balance', at };
    case 'disable':
      return { status: 'disabled', by: 'provider', reason: 'provider_rejected', at };
    case 'reactivate':
      return { status: 'active' };
    default:
      return undefined;
  }
}

/**
 * The status a revive restores: the one the key had before it was marked undecryptable, or
 * `active` for a key marked before the prior status was kept.
 */
export function restoredStatus(prior: StatusStamp | undefined): StatusStamp {
  return prior ?? { status: 'active' };
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
