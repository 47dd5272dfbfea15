/** The domain's vocabulary: pools and their policy, keys and their statuses, leases and completion outcomes. */

/**
 * A key's status. `suspect`: a caller reported it invalid; out of the pool until maintenance
 * asks the provider, which either confirms (disabled) or clears it. Only an operator's
 * `disabled` is for good. `undecryptable`: its sealed ciphertext itself does not open
 * (malformed, copied from another item, or failing authentication under a held wrapping key;
 * a key the process does not hold is a wrong setting, never this); never leased, until
 * `keypool reseal` can open it again or it is imported anew.
 */
export const KEY_STATUSES = ['active', 'cooling', 'exhausted', 'disabled', 'suspect', 'undecryptable'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

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
/** One shard: one strict least-recently-used order (lib/domain/shards.ts). */
export const DEFAULT_SHARDS = 1;

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
}

/** A new pool's settings, and what a PUT leaves absent on create. */
export const POOL_DEFAULTS: Readonly<PoolSettings> = {
  maxUses: DEFAULT_MAX_USES,
  leaseTtlSeconds: DEFAULT_LEASE_TTL_SECONDS,
  cooldownSeconds: DEFAULT_COOLDOWN_SECONDS,
  provider: 'stability',
  minCredits: DEFAULT_MIN_CREDITS,
  shards: DEFAULT_SHARDS,
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
  createdAt: string;
  lastUsedAt: string | null;
  cooldownUntil?: number;
  credits?: number;
  creditsCheckedAt?: string;
}

/** A lease slot on a key: open while it has no outcome and its expiry has not passed. */
export interface LeaseSlot {
  /** the nonce of the lease holding the slot */
  nonce: string;
  /** when the lease expires, ms since the Unix epoch */
  expiresAtMs: number;
  /** the reported outcome, once completed */
  outcome?: Outcome;
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
  /** rate_limited only: the provider's Retry-After; the key rests at least this long */
  retryAfterSeconds?: number;
}

export interface CompletionResult {
  keyId: string;
  usageCount: number;
  status: KeyStatus;
}

export interface ImportResult {
  imported: number;
  duplicates: number;
  keys: KeyView[];
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
