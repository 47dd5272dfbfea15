/** The domain's vocabulary: pools and their policy, keys and their statuses, leases and completion outcomes. */

/**
 * A key's status. `cooling`, `exhausted` and `suspect` set by a caller's report are hypotheses
 * with an end (`cooldownUntil`): the key rests until then, or until maintenance confirms or
 * clears the report. Set by the provider's own answer they are verdicts (`exhausted`,
 * `suspect`: no end; maintenance re-reads the balance). Only an operator's `disabled` is for
 * good. `undecryptable`: its sealed ciphertext itself does not open (malformed, copied from
 * another item, or failing authentication under a held wrapping key; a key the process does not
 * hold is a wrong setting, never this); never leased, until `keypool reseal` can open it again
 * (the key then gets back the status it had) or it is imported anew. `retired`: an operator
 * retired it (DELETE of the key or of its pool): its secret is destroyed, it is never leased
 * again, and its record stays for the audit; only an import with `revive` brings it back.
 */
export const KEY_STATUSES = [
  'active',
  'cooling',
  'exhausted',
  'disabled',
  'suspect',
  'undecryptable',
  'retired',
] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];
/** The order people read statuses in (CLI columns, console): in service, resting, out on evidence, out for good. */
export const STATUS_READING_ORDER: readonly KeyStatus[] = [
  'active',
  'cooling',
  'suspect',
  'exhausted',
  'disabled',
  'undecryptable',
  'retired',
];

/**
 * Who set a key's status: an `operator` (PATCH, the CLI), the `provider` (its documented
 * answer, read by maintenance or, in proxy mode, by keypool itself), a `client` (a completion's
 * report: a hypothesis) or `sealing` (a secret that does not open). An active key has none.
 */
export const STATUS_SETTERS = ['operator', 'provider', 'client', 'sealing'] as const;
export type StatusBy = (typeof STATUS_SETTERS)[number];

/**
 * Why a status was set, as a short code: a report's outcome (`invalid_key`, `out_of_credits`,
 * `rate_limited`), maintenance's `low_balance` or `provider_rejected`, `operator`, or an
 * UndecryptableReason (lib/domain/errors.ts).
 */
export type StatusReason = string;

/** A status with who set it, why, when (ISO 8601) and, for a temporary one, until when (ms since the epoch). */
export interface StatusStamp {
  status: KeyStatus;
  by?: StatusBy;
  reason?: StatusReason;
  at?: string;
  until?: number;
}

/**
 * How a lease went. `unknown`: the caller cannot tell (a timeout or a broken connection after
 * the request went out): the provider has probably billed the use, so it stays counted, and
 * the slot is freed.
 */
export const OUTCOMES = ['success', 'failure', 'invalid_key', 'out_of_credits', 'rate_limited', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Who maintenance asks about a pool's keys: Stability's balance endpoint, or nobody. */
export const PROVIDERS = ['stability', 'none'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const DEFAULT_POOL = 'stability';
export const DEFAULT_MAX_USES = 3;
export const DEFAULT_LEASE_TTL_SECONDS = 300;
export const DEFAULT_COOLDOWN_SECONDS = 60;
export const DEFAULT_MIN_CREDITS = 3;
/** The longest a client's report may rest a key (a report is a hypothesis): 5 minutes. */
export const DEFAULT_MAX_CLIENT_COOLDOWN_SECONDS = 300;
/** Negative reports and lease-less counts one caller may make per pool and minute before they stop taking effect. */
export const DEFAULT_MAX_CLIENT_REPORTS_PER_MINUTE = 30;
/** One shard: one strict least-recently-used order (lib/domain/shards.ts). */
export const DEFAULT_SHARDS = 1;
/** Keys one proxied request may try (the first and one failover). */
export const DEFAULT_PROXY_ATTEMPTS = 2;
/** How long a proxied provider call may take, headers and body, before its outcome is `unknown`. */
export const DEFAULT_PROXY_TIMEOUT_SECONDS = 120;

/** What the operator sets on a pool. */
export interface PoolSettings {
  /** the cap: a key is leasable while its count is <= maxUses; a lease may ask for less */
  maxUses: number;
  /** the longest lease a caller may ask for, and the default */
  leaseTtlSeconds: number;
  /** how long a rate_limited key rests when the caller gives no Retry-After */
  cooldownSeconds: number;
  provider: Provider;
  /** below this balance maintenance exhausts a key; at or above it revives one */
  minCredits: number;
  /**
   * index partitions the pool's usage order is spread over (1..64; lib/domain/shards.ts): 1 is
   * one strict LRU order; more lifts a pool's ceiling by about 500 leases/s per shard on DynamoDB
   */
  shards: number;
  /**
   * the longest rest a client's report gives a key (1..3600 s): a rate_limited report's
   * Retry-After is capped at it, and an invalid_key or out_of_credits report rests the key this
   * long, unless maintenance confirms or clears it first
   */
  maxClientCooldownSeconds: number;
  /**
   * negative reports (invalid_key, out_of_credits, rate_limited) and lease-less counts one
   * caller may make per minute in the pool (1..10000); past it they change nothing (a report's
   * use is still counted or given back) and a lease-less count is refused
   */
  maxClientReportsPerMinute: number;
  /**
   * proxy mode: keys one proxied request may try (1..5), the first included; another key is
   * tried only for an outcome the outcome table fails over on, and only before the first byte
   * went back to the caller
   */
  proxyAttempts: number;
  /**
   * proxy mode: how long one provider call may take, headers and body together (1..600 s);
   * past it the call's outcome is `unknown` (its use stays counted)
   */
  proxyTimeoutSeconds: number;
}

/** A new pool's settings, and what a PUT leaves absent on create. */
export const POOL_DEFAULTS: Readonly<PoolSettings> = {
  maxUses: DEFAULT_MAX_USES,
  leaseTtlSeconds: DEFAULT_LEASE_TTL_SECONDS,
  cooldownSeconds: DEFAULT_COOLDOWN_SECONDS,
  provider: 'stability',
  minCredits: DEFAULT_MIN_CREDITS,
  shards: DEFAULT_SHARDS,
  maxClientCooldownSeconds: DEFAULT_MAX_CLIENT_COOLDOWN_SECONDS,
  maxClientReportsPerMinute: DEFAULT_MAX_CLIENT_REPORTS_PER_MINUTE,
  proxyAttempts: DEFAULT_PROXY_ATTEMPTS,
  proxyTimeoutSeconds: DEFAULT_PROXY_TIMEOUT_SECONDS,
};

/** A pool as the API shows it (PoolView). */
export interface PoolPolicy extends PoolSettings {
  pool: string;
  createdAt: string;
  updatedAt: string;
  /**
   * While a change of `shards` is being applied (keypool pool reshard, or maintenance): the
   * widest layout a key may still sit in, so leases look in both layouts until every key has
   * moved. Absent when every key is home.
   */
  previousShards?: number;
  /** when `shards` last changed (ISO 8601), while a reshard is pending */
  shardsChangedAt?: string;
}

/** A key as stored, without its secret: what every path but a lease and maintenance reads. */
export interface KeyRecord {
  keyId: string;
  pool: string;
  label?: string;
  /** the secret masked at import (at most its first 3 and last 4 characters) */
  maskedKey: string;
  usageCount: number;
  status: KeyStatus;
  /** who set the status (absent while active; a `disabled` from before this was recorded is an operator's) */
  statusBy?: StatusBy;
  statusReason?: StatusReason;
  /** when the status was set (ISO 8601) */
  statusAt?: string;
  createdAt: string;
  lastUsedAt: string | null;
  /** the end of a temporary status (cooling, or a caller's suspect/exhausted), ms since the epoch */
  cooldownUntil?: number;
  /** while sealing has marked the key undecryptable: the status it had, which a revive restores */
  prior?: StatusStamp;
  credits?: number;
  creditsCheckedAt?: string;
}

/**
 * The mark of a lease slot whose use keypool took for a proxied call (Leasing.takeUse): the use
 * is counted in the lease write and needs no completion; only a refund for an outcome that
 * gives the use back replaces the mark with that outcome, once. The slot is held (isSlotFree)
 * until it is given back or its expiry (the call's bound) passes, so the refund finds it.
 */
export const PROXIED = 'proxied';

/** A lease slot on a key: open while it has no outcome and its expiry has not passed. */
export interface LeaseSlot {
  /** the nonce of the lease holding the slot */
  nonce: string;
  /** when the lease expires, ms since the Unix epoch */
  expiresAtMs: number;
  /** the reported outcome, once completed; PROXIED for a proxied use not given back */
  outcome?: Outcome | typeof PROXIED;
}

/**
 * A key as the store keeps it: the record, the secret as stored, and the lease slots. The
 * secret is a ciphertext (`sealed`, opened with the SecretSealer only where a key is handed
 * out) or, for an item written before sealing, the plain secret (`sealed: false`: never
 * leased until `keypool reseal` seals it).
 */
export interface StoredKey extends KeyRecord {
  secret: string;
  sealed: boolean;
  slots: Record<string, LeaseSlot>;
  /**
   * The shard of its pool's usage order the key belongs in (lib/domain/shards.ts), kept while
   * it is out of the index too; absent: shard 0. A new key takes shardOf(keyId, pool's shards);
   * only a reshard moves it.
   */
  shard?: number;
}

/** What list, import and status changes show of a key: the secret only masked. */
export interface KeyView {
  keyId: string;
  pool: string;
  label?: string;
  maskedKey: string;
  usageCount: number;
  status: KeyStatus;
  createdAt: string;
  lastUsedAt: string | null;
  /** the provider balance at the last maintenance check; null until checked */
  credits: number | null;
  creditsCheckedAt: string | null;
  /** who set the status, why and when; null while the key is active */
  statusBy: StatusBy | null;
  statusReason: StatusReason | null;
  statusAt: string | null;
  /** until when a temporary status lasts (ISO 8601); null when it has no end or is over */
  cooldownUntil: string | null;
}

/**
 * What a sealed secret is bound to. Opening with any other context fails, so a ciphertext
 * copied onto another item (another key id or another pool) never opens there.
 */
export interface SealContext {
  pool: string;
  keyId: string;
}

export interface NewKey {
  apiKey: string;
  label?: string;
}

export interface LeaseRequest {
  /** at most the pool's cap (default: the cap) */
  maxUses?: number;
  /** at most the pool's leaseTtlSeconds (default: that) */
  ttlSeconds?: number;
}

export interface LeaseGrant {
  leaseId: string;
  keyId: string;
  apiKey: string;
  pool: string;
  /** The key's count before this use. */
  usageCount: number;
  expiresAt: string;
}

export interface CompletionReport {
  outcome?: Outcome;
  /**
   * rate_limited only: the provider's Retry-After; the key rests this long (from a client, at
   * most the pool's maxClientCooldownSeconds)
   */
  retryAfterSeconds?: number;
}

export interface CompletionResult {
  keyId: string;
  usageCount: number;
  status: KeyStatus;
  /** `over_budget`: the caller is past its report budget; the report changed no status (the use was still counted or given back) */
  reportIgnored?: 'over_budget';
}

export interface ImportResult {
  imported: number;
  /** keys already present and left as they are (retired ones aside) */
  duplicates: number;
  /** keys an operator retired: nothing stored for them, unless the import revives them */
  retired: number;
  /** retired keys the import brought back (`revive`): sealed anew, active, their counts kept */
  revived: number;
  keys: KeyView[];
}

/** What an import may do besides adding new keys. */
export interface ImportOptions {
  /** bring retired keys back (sealed anew, active, their counts kept) instead of reporting them retired */
  revive?: boolean;
}

/**
 * How many keys of a pool a lease could not use, by why: what a `no_usable_key` refusal tells
 * (lib/domain/dry-pool.ts). Retired keys are not counted: they are gone for good.
 */
export interface UnusableCounts {
  /** effectively active, but past the cap the lease asked for */
  overCap: number;
  cooling: number;
  suspect: number;
  exhausted: number;
  disabled: number;
  undecryptable: number;
  /** in an account whose credits ran out (0 until keys belong to accounts) */
  accountExhausted: number;
}

export interface ListQuery {
  status?: KeyStatus;
  limit?: number;
  cursor?: string;
}

export interface KeyPage {
  keys: KeyView[];
  cursor: string | null;
}

/** An operator's change to one key (PATCH): its status, its count, or both. */
export interface KeyChange {
  status?: Extract<KeyStatus, 'active' | 'disabled'>;
  usageCount?: number;
}
