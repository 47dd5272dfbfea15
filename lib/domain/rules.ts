/**
 * keypool's rules about keys, written once. The use cases and the in-memory store in the tests
 * apply these functions; the DynamoDB key stores (lib/adapters/dynamo-lease-store.ts,
 * dynamo-key-admin-store.ts, dynamo-key-table.ts) state the same rules as condition
 * expressions, each named there after the function it mirrors.
 */
import {
  type KeyRecord,
  type KeyStatus,
  type LeaseSlot,
  type Outcome,
  type PoolSettings,
  PROXIED,
  type StatusStamp,
} from './types.js';

/**
 * Statuses that may be temporary: with an end (`cooldownUntil`) a key in one of them rests in
 * the usage index, skipped by leases until the end and effectively active after it.
 */
export const TEMPORARY_STATUSES = ['cooling', 'exhausted', 'suspect'] as const satisfies readonly KeyStatus[];

/** Whether a status may be temporary (TEMPORARY_STATUSES). */
export function isTemporary(status: KeyStatus): boolean {
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

/**
 * A status only an operator changes: their `disabled` (isOperatorDisabled) or `retired` (only an
 * operator retires a key, and only an import with `revive` brings it back). No answer from the
 * provider and no report replaces either.
 */
export function isOperatorStatus(record: Pick<KeyRecord, 'status' | 'statusBy'>): boolean {
  return record.status === 'retired' || isOperatorDisabled(record);
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

/**
 * Whether the key's status is exactly the one `stamp` gives (status, setter, reason, time, end):
 * a change known by its stamp, whose time is the moment its writer made it. A writer whose answer
 * was lost tells by this that its change is the one the key bears.
 */
export function bearsStamp(
  record: Pick<KeyRecord, 'status' | 'statusBy' | 'statusReason' | 'statusAt' | 'cooldownUntil'>,
  stamp: StatusStamp,
): boolean {
  const now = statusStamp(record);
  return (
    now.status === stamp.status &&
    now.by === stamp.by &&
    now.reason === stamp.reason &&
    now.at === stamp.at &&
    now.until === stamp.until
  );
}

/** An operator's status: `active` has no setter; `disabled` is the operator's, at `at`. */
export function operatorStamp(status: Extract<KeyStatus, 'active' | 'disabled'>, at: string): StatusStamp {
  return status === 'active' ? { status } : { status, by: 'operator', reason: 'operator', at };
}

/**
 * The status maintenance gives a key for what the provider said (lib/ports/balance-store.ts):
 * `exhaust` (a balance below the pool's minimum; `exhaust_account`: its account's balance) and `disable` (the provider refused the key,
 * in its documented error shape) are the provider's verdicts, without an end; `reactivate`
 * makes the key active; `none` changes no status.
 */
export function balanceStamp(
  change: 'none' | 'exhaust' | 'exhaust_account' | 'disable' | 'reactivate',
  at: string,
): StatusStamp | undefined {
  switch (change) {
    case 'exhaust':
      return { status: 'exhausted', by: 'provider', reason: 'low_balance', at };
    case 'exhaust_account':
      return { status: 'exhausted', by: 'provider', reason: 'account_out_of_credits', at };
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

/**
 * A lease slot may take a new lease when it is empty, completed, or past its expiry. A proxied
 * use's slot (PROXIED) is held until its expiry (the call's bound) unless it is given back
 * first: its refund names the slot, and a slot taken again while the call runs would refuse it
 * (a refund brings the count, and with it the next lease's slot, back to the same number).
 */
export function isSlotFree(slot: LeaseSlot | undefined, nowMs: number): boolean {
  return slot === undefined || (slot.outcome !== undefined && slot.outcome !== PROXIED) || slot.expiresAtMs < nowMs;
}

/**
 * Who reports how a lease went: a `client` over HTTP (its report is a hypothesis: bounded in
 * time, budgeted per caller) or the `provider`, its own documented answer read by keypool in
 * proxy mode (a verdict). Nothing a caller sends selects `provider`: only keypool's in-process
 * completion passes it.
 */
export type Reporter = { by: 'client'; caller?: string } | { by: 'provider' };

/** The outcomes that are a report about the key: the ones that change its status. */
export const NEGATIVE_OUTCOMES = [
  'invalid_key',
  'out_of_credits',
  'rate_limited',
] as const satisfies readonly Outcome[];

/** How much a status says against a key: a report never replaces a rest with a milder one. */
const SEVERITY: Partial<Record<KeyStatus, number>> = { cooling: 1, exhausted: 2, suspect: 3 };
const REPORTED_STATUS = { rate_limited: 'cooling', out_of_credits: 'exhausted', invalid_key: 'suspect' } as const;

/**
 * A report's status change and which statuses it may replace. Besides these it always may
 * replace `active` and a temporary status whose rest has ended (effectively active). Never an
 * operator's disabled, the provider's disabled or undecryptable: none of them is listed
 * anywhere. The DynamoDB lease store states `from` as its condition, the in-memory store
 * applies reportApplies.
 */
export interface ReportChange {
  /** the status given, by whom, why, when, until when (none: a verdict without an end) */
  stamp: StatusStamp;
  from: {
    /** replaced whatever their rest */
    any: readonly KeyStatus[];
    /** replaced only while their rest ends before this one's: a rest is never shortened */
    endingSooner: readonly KeyStatus[];
    /** replaced only while they have a rest: a hypothesis the provider's verdict confirms */
    resting: readonly KeyStatus[];
  };
}

/** The pool's policy a report is bounded by. */
export type ReportPolicy = Pick<PoolSettings, 'cooldownSeconds' | 'maxClientCooldownSeconds'>;

/**
 * What a negative outcome does to the key's status, or undefined for one that changes none.
 * From a client: cooling, exhausted or suspect until now + the pool's maxClientCooldownSeconds
 * (rate_limited: its Retry-After or the pool's cooldownSeconds, at most that), replacing only a
 * rest no more severe that ends sooner. From the provider: rate_limited cools for its
 * Retry-After, at least the pool's cooldownSeconds; invalid_key and out_of_credits are verdicts
 * without an end (out of the index until maintenance reads a balance), replacing a milder
 * status and confirming a resting one of their own.
 */
export function reportChange(
  outcome: Outcome,
  by: Reporter['by'],
  policy: ReportPolicy,
  retryAfterSeconds: number | undefined,
  nowMs: number,
): ReportChange | undefined {
  if (!(NEGATIVE_OUTCOMES as readonly Outcome[]).includes(outcome)) return undefined;
  const status = REPORTED_STATUS[outcome as (typeof NEGATIVE_OUTCOMES)[number]];
  const at = new Date(nowMs).toISOString();
  const severity = SEVERITY[status] ?? 0;
  const milder = TEMPORARY_STATUSES.filter((s) => (SEVERITY[s] ?? 0) < severity);
  if (by === 'client') {
    const seconds =
      status === 'cooling'
        ? Math.min(retryAfterSeconds ?? policy.cooldownSeconds, policy.maxClientCooldownSeconds)
        : policy.maxClientCooldownSeconds;
    return {
      stamp: { status, by, reason: outcome, at, until: nowMs + seconds * 1000 },
      from: { any: [], endingSooner: [...milder, status], resting: [] },
    };
  }
  if (status === 'cooling') {
    const seconds = Math.max(retryAfterSeconds ?? 0, policy.cooldownSeconds);
    return {
      stamp: { status, by, reason: outcome, at, until: nowMs + seconds * 1000 },
      from: { any: [], endingSooner: [status], resting: [] },
    };
  }
  return { stamp: { status, by, reason: outcome, at }, from: { any: milder, endingSooner: [], resting: [status] } };
}

/** Whether `change` may replace the key's status at `nowMs` (ReportChange's rules). */
export function reportApplies(
  key: Pick<KeyRecord, 'status' | 'cooldownUntil'>,
  change: ReportChange,
  nowMs: number,
): boolean {
  const until = key.cooldownUntil;
  if (effectiveStatus(key, nowMs) === 'active') return true;
  if (change.from.any.includes(key.status)) return true;
  const newUntil = change.stamp.until;
  if (change.from.endingSooner.includes(key.status) && until !== undefined && newUntil !== undefined)
    return until < newUntil;
  return change.from.resting.includes(key.status) && until !== undefined;
}

/**
 * Success keeps the use its lease counted, and so does `unknown` (the provider probably billed
 * it); every other outcome gives it back.
 */
export function refundsUse(outcome: Outcome): boolean {
  return outcome !== 'success' && outcome !== 'unknown';
}
