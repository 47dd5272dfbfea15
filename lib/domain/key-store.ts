/**
 * The ports the use cases depend on. The DynamoDB adapters (lib/adapters/dynamo-key-store.ts,
 * lib/adapters/dynamo-pool-store.ts) implement every method as one request (or one paged
 * read) whose ConditionExpression carries the invariant; the use cases only decide what to
 * try next.
 */
import type { KeyRecord, KeyStatus, Outcome, PoolPolicy, PoolSettings } from './types.js';

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

/** A key found by the usage-count index; the index may lag the item by a moment. */
export interface Candidate {
  keyId: string;
  usageCount: number;
}

export interface CandidatePage {
  /** leasable-looking keys, fewest uses then least recently used first */
  candidates: Candidate[];
  /** the earliest end of a cooldown among the cooling keys the query saw, if any */
  coolingUntilMs?: number;
  /**
   * The shard's range may hold more keys past this page (the query stopped at its limit).
   * Cooling keys are skipped after the limit counted them, so a page with fewer candidates than
   * the limit is not the shard's end; only a page without `more` is.
   */
  more?: boolean;
}

export interface LeaseAttempt {
  keyId: string;
  pool: string;
  /** the shard whose index partition the key was found in: the write is refused if it has moved */
  shard: number;
  /** the count the caller believes the key has; the write is refused if it has changed */
  seenCount: number;
  maxUses: number;
  slot: number;
  nonce: string;
  expiresAtMs: number;
  nowMs: number;
  /**
   * With an Idempotency-Key: the lease and its record are written together or not at all,
   * and the record only where none is, or an expired one (lib/domain/idempotency.ts).
   */
  idempotency?: IdempotentLease;
}

/** What is kept of a lease granted under an Idempotency-Key: never the secret. */
export interface IdempotentLease {
  /** a digest of the pool and the caller's key */
  id: string;
  /** a digest of what the request asked for: the same key with another request is refused */
  requestHash: string;
  leaseId: string;
  keyId: string;
  pool: string;
  usageCount: number;
  expiresAtMs: number;
}

export type LeaseAttemptResult =
  | { granted: true; key: StoredKey }
  /** the condition failed; `current` is the item as it was (undefined: no such key) */
  | { granted: false; current: StoredKey | undefined }
  /** a live lease already holds this Idempotency-Key (a concurrent retry won): nothing was written */
  | { granted: false; idempotencyTaken: true };

export interface CompletionAttempt {
  keyId: string;
  /** the pool the caller names: a lease of another pool's key is not found */
  pool: string;
  slot: number;
  nonce: string;
  outcome: Outcome;
  nowMs: number;
  /**
   * What the completion does to the status (outcomeStatusChange): `apply` makes the change
   * (a cooling change sets cooldownUntil, and only if that lengthens the cooldown);
   * `keep-cooldown` makes it but leaves a longer cooldown already there; `none` records the
   * outcome and the refund only (the key's status forbids the change).
   */
  statusChange: 'apply' | 'keep-cooldown' | 'none';
  /** for a cooling change: until when the key rests */
  cooldownUntilMs: number;
}

/** A completion's answer: the key's count and status after it. */
export type CompletedKey = Pick<KeyRecord, 'keyId' | 'usageCount' | 'status' | 'cooldownUntil'>;

export type CompletionAttemptResult =
  | { applied: true; key: CompletedKey }
  /** refused; `current` is the key as it is, without its secret (undefined: no such key) */
  | { applied: false; current: (KeyRecord & Pick<StoredKey, 'slots'>) | undefined };

/** Marks a key whose secret cannot be opened; with `lease`, also ends that lease and refunds its use. */
export interface UndecryptableMark {
  keyId: string;
  pool: string;
  /** the ciphertext that failed to open: the mark applies only while the item still holds it */
  sealed: string;
  lease?: { slot: number; nonce: string };
}

/** `keypool reseal`'s write: the secret as found is replaced by one sealed under the current key. */
export interface SecretReplacement {
  keyId: string;
  pool: string;
  /** the stored form as read: the write applies only while the item still holds exactly this */
  from: { secret: string; sealed: boolean };
  sealed: string;
  /** an undecryptable key that opened again: back into the pool */
  revive: boolean;
  /**
   * For a secret still in plain text: the key's status as read. When that status keeps a key in
   * the usage index, the write puts the key back there (a lease that met it set it aside), and
   * it applies only while the status is still this one.
   */
  seenStatus?: KeyStatus;
  /** for a secret still in plain text: its mask, written where the item has none (items from before keys kept one) */
  maskedKey?: string;
}

/** An operator's write to one key: a status and/or a count, the count only from the one seen. */
export interface KeyUpdate {
  keyId: string;
  pool: string;
  status?: Extract<KeyStatus, 'active' | 'disabled'>;
  count?: { seen: number; to: number };
}

export type KeyUpdateResult =
  | { applied: true; key: KeyRecord }
  /** refused; `current` is the key as it is (undefined: none in this pool) */
  | { applied: false; current: KeyRecord | undefined };

export interface KeyPageRead<K> {
  /** the page's keys in key-id order (a key deleted meanwhile is simply missing) */
  keys: K[];
  /** the last key id the page read when more may follow; undefined at the end of the pool */
  lastKeyId: string | undefined;
}

/** Where a key sits in its pool's sharded usage order: what a reshard reads (never the secret). */
export interface KeyPlacement {
  keyId: string;
  pool: string;
  /** the shard it belongs in (its home) */
  shard: number;
  /** the shard whose index partition holds it now; undefined while it is out of the index */
  indexedIn: number | undefined;
}

/** A reshard's write: the key's home (and its index entry, if it has one) moves from `from` to `to`. */
export interface KeyMove {
  keyId: string;
  pool: string;
  /** the placement as read: the write applies only while the key is still exactly there */
  from: Pick<KeyPlacement, 'shard' | 'indexedIn'>;
  to: number;
}

export type KeyMoveResult =
  | { moved: true }
  /** the key moved or left (or entered) the index since it was read: `current` is where it is now (undefined: gone) */
  | { moved: false; current: KeyPlacement | undefined };

export interface KeyStore {
  /** Inserts a new key unless its id exists; returns the stored key (without its secret) either way. */
  insert(key: StoredKey): Promise<{ inserted: boolean; key: KeyRecord }>;
  /** A key with its slots and secret, read consistently. */
  get(keyId: string): Promise<StoredKey | undefined>;
  /** Leasable keys of one shard of the pool with usageCount <= maxUses, fewest uses then least recently used first. */
  candidates(pool: string, shard: number, maxUses: number, limit: number, nowMs: number): Promise<CandidatePage>;
  tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult>;
  /** The lease recorded under an Idempotency-Key digest, live or expired; undefined if none. */
  idempotentLease(id: string): Promise<IdempotentLease | undefined>;
  /**
   * Ends the record of a lease that did not stand (it was undone: its secret could not be
   * opened), so the same Idempotency-Key may lease again; only while the record still names
   * that lease. False when it names another one (or there is none).
   */
  releaseIdempotentLease(id: string, leaseId: string): Promise<boolean>;
  tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult>;
  /** +1 without a lease; undefined if the pool has no such key. */
  increment(pool: string, keyId: string, nowMs: number): Promise<Pick<KeyRecord, 'keyId' | 'usageCount'> | undefined>;
  /** Takes a key whose secret cannot be opened out of the pool (status undecryptable), in one conditional write. */
  markUndecryptable(mark: UndecryptableMark): Promise<boolean>;
  /**
   * Takes a key whose secret is still in plain text out of the usage index, so that leases stop
   * trying it (they never get it) and reach the pool's sealed keys; `keypool reseal` puts it
   * back when it seals it. False when the key is sealed now, gone, or already set aside.
   */
  setAsideUnsealed(key: { keyId: string; pool: string }): Promise<boolean>;
  /** Replaces a key's stored secret, conditioned on what was read; false if it changed meanwhile. */
  replaceSecret(replacement: SecretReplacement): Promise<boolean>;
  /** An operator's change, as one conditional write. */
  update(update: KeyUpdate): Promise<KeyUpdateResult>;
  /** A key of the pool without its secret; undefined if the pool has no such key. */
  record(pool: string, keyId: string): Promise<KeyRecord | undefined>;
  /** One page of the pool's keys in key-id order, without secrets: reads cost the page, not the table. */
  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>>;
  /** One page of the pool's keys with their secrets (maintenance asks the provider about each). */
  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>>;
  /** One page of the pool's keys in key-id order with where each sits in the usage order (a reshard's read). */
  placements(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyPlacement>>;
  /**
   * Moves one key to another shard, in one conditional write that applies only while the key
   * is where `from` says; never touches its count, its sort key or its lease slots.
   */
  rehome(move: KeyMove): Promise<KeyMoveResult>;
}

/** Where pools' policies live. */
export interface PoolStore {
  get(pool: string): Promise<PoolPolicy | undefined>;
  /**
   * Creates the pool with the defaults for what `settings` leaves out, or changes only what
   * `settings` gives on an existing one; one conditional write, no read.
   */
  put(pool: string, settings: Partial<PoolSettings>, nowIso: string): Promise<PoolPolicy>;
  /** Creates the pool with the defaults if it does not exist; an existing one is left as it is. */
  ensure(pool: string, nowIso: string): Promise<PoolPolicy>;
  /** Every pool, by name. */
  list(): Promise<PoolPolicy[]>;
  /**
   * Ends a pending reshard (previousShards removed): one conditional write that applies only
   * while the pool still has exactly these shards and previousShards; false otherwise.
   */
  finishReshard(pool: string, layout: { shards: number; previousShards: number }): Promise<boolean>;
}
