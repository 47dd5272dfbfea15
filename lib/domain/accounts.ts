/**
 * Accounts above keys. A provider's credits (and perhaps its rate limit) belong to an account
 * that may hold several keys: its balance is read once per account, and a verdict about the
 * account (out of credits, rate limited where the pool says the limit is the account's) is put
 * on every key of it when it changes, so the lease path reads nothing more than a key's own
 * status. Until its account is known a key is its own account.
 */
import { effectiveStatus, type ReportChange, type Reporter, reportChange, type ReportPolicy } from './rules.js';
import type { KeyRecord, KeyStatus, Outcome, PoolSettings, StatusBy, StatusReason } from './types.js';

/**
 * An account's name: the provider's organization id, or an operator's name for it. Never "#"
 * (it is part of the account-keys partition `<pool>#<account>`), never a space or control.
 */
export const ACCOUNT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/**
 * An account's status: `active` (its keys are leased), `exhausted` (out of credits: by the
 * provider until a balance read shows credits, by a client's report until its bound), `cooling`
 * (rate limited as a whole, until `cooldownUntil`).
 */
export const ACCOUNT_STATUSES = ['active', 'exhausted', 'cooling'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

/** Why a key was stopped for its account's sake (statusReason): a balance read or an answer about a sibling. */
export const ACCOUNT_OUT_OF_CREDITS = 'account_out_of_credits';
export const ACCOUNT_RATE_LIMITED = 'account_rate_limited';

/** One account of a pool, as its record keeps it (never a secret). */
export interface AccountRecord {
  pool: string;
  account: string;
  /** the balance at the last read through any of its keys */
  credits?: number;
  creditsCheckedAt?: string;
  status: AccountStatus;
  statusBy?: StatusBy;
  statusReason?: StatusReason;
  statusAt?: string;
  /** the end of a temporary status (ms since the epoch) */
  cooldownUntil?: number;
}

/** What GET /pools/{pool}/accounts shows of an account. */
export interface AccountView {
  account: string;
  /** keys of the pool that belong to it */
  keys: number;
  /** of them, leasable now (effectively active, under the pool's cap) */
  usableKeys: number;
  credits: number | null;
  creditsCheckedAt: string | null;
  status: AccountStatus;
  /** until when a temporary status lasts (ISO 8601) */
  cooldownUntil?: string;
}

export interface AccountPage {
  accounts: AccountView[];
  cursor: string | null;
}

/** A key's account: the one known, or the key itself until it is. */
export function effectiveAccount(key: Pick<KeyRecord, 'keyId' | 'account'>): string {
  return key.account ?? key.keyId;
}

/** An account's status now: a temporary one whose end has passed is active again. */
export function effectiveAccountStatus(
  record: Pick<AccountRecord, 'status' | 'cooldownUntil'> | undefined,
  nowMs: number,
): AccountStatus {
  // The key's rule (effectiveStatus) answers the record's own status or active: an account's.
  return record ? (effectiveStatus(record, nowMs) as AccountStatus) : 'active';
}

/**
 * What an answer about one key says about its whole account, or undefined when it says nothing:
 * out_of_credits always (credits are the account's), rate_limited only where the pool says its
 * provider's limit is per account. The change is the one the key itself got (reportChange: a
 * client's report is a hypothesis with an end, the provider's a verdict), with a reason that
 * says it came from the account, so a balance read with credits puts back exactly these keys.
 */
export function accountChange(
  outcome: Outcome,
  by: Reporter['by'],
  policy: ReportPolicy & Pick<PoolSettings, 'rateLimitScope'>,
  retryAfterSeconds: number | undefined,
  nowMs: number,
): ReportChange | undefined {
  if (outcome !== 'out_of_credits' && !(outcome === 'rate_limited' && policy.rateLimitScope === 'account'))
    return undefined;
  const change = reportChange(outcome, by, policy, retryAfterSeconds, nowMs);
  if (!change) return undefined;
  const reason = outcome === 'out_of_credits' ? ACCOUNT_OUT_OF_CREDITS : ACCOUNT_RATE_LIMITED;
  return { ...change, stamp: { ...change.stamp, reason } };
}

/** The account record's status for a change spread over its keys. */
export function accountStatusOf(
  change: ReportChange,
): Pick<AccountRecord, 'status' | 'statusBy' | 'statusReason' | 'statusAt' | 'cooldownUntil'> {
  const status: AccountStatus = change.stamp.status === 'cooling' ? 'cooling' : 'exhausted';
  return {
    status,
    ...(change.stamp.by === undefined ? {} : { statusBy: change.stamp.by }),
    ...(change.stamp.reason === undefined ? {} : { statusReason: change.stamp.reason }),
    ...(change.stamp.at === undefined ? {} : { statusAt: change.stamp.at }),
    ...(change.stamp.until === undefined ? {} : { cooldownUntil: change.stamp.until }),
  };
}

/**
 * The status a key imported into an account takes from the account's record: an exhausted or
 * cooling account's state (while it lasts), else none (the key is active).
 */
export function inheritedStatus(
  record: AccountRecord | undefined,
  nowMs: number,
):
  | { status: KeyStatus; statusBy?: StatusBy; statusReason?: StatusReason; statusAt?: string; cooldownUntil?: number }
  | undefined {
  if (!record || effectiveAccountStatus(record, nowMs) === 'active') return undefined;
  return {
    status: record.status,
    ...(record.statusBy === undefined ? {} : { statusBy: record.statusBy }),
    statusReason: record.status === 'cooling' ? ACCOUNT_RATE_LIMITED : ACCOUNT_OUT_OF_CREDITS,
    ...(record.statusAt === undefined ? {} : { statusAt: record.statusAt }),
    ...(record.cooldownUntil === undefined ? {} : { cooldownUntil: record.cooldownUntil }),
  };
}
