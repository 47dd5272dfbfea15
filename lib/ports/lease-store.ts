/**
 * The lease path's port (Leasing: lease, complete, count a use). The DynamoDB adapter makes
 * each method one request (the candidate query may page) whose ConditionExpression carries the
 * invariant; the use case only decides what to try next.
 */
import type { ReportChange } from '../domain/rules.js';
import type { KeyRecord, Outcome, StoredKey } from '../domain/types.js';
import type { CountedKey } from '../domain/dry-pool.js';
import type { KeyPageRead } from './key-pages.js';
import type { ReportBudget } from './report-budget.js';
import type { UndecryptableMarker } from './undecryptable.js';

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

/** What a candidate read asks for (LeaseStore.candidates). */
export type CandidateQuery = [
  pool: string,
  shard: number,
  maxUses: number,
  limit: number,
  nowMs: number,
  skip?: ReadonlySet<string>,
];

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
   * A use keypool takes for a proxied call (Leasing.takeUse): the slot is written with the
   * PROXIED mark, so no completion is needed for a success; refundProxied gives it back.
   */
  proxied?: boolean;
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
  /** a digest of the caller (callerDigest): only that caller's retry is answered */
  callerDigest: string;
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
   * The report's status change (reportChange): applied only from the statuses it may replace;
   * absent, the completion records the outcome and its refund only (the key's status forbids
   * the change, or the caller is past its report budget).
   */
  change?: ReportChange;
}

/**
 * Gives back a use a proxied lease write took (LeaseAttempt.proxied): applies only while the
 * key is in `pool` and its slot still holds this nonce and the PROXIED mark, and replaces the
 * mark with `outcome` (one that refunds: refundsUse), so it applies once; a slot leased again
 * meanwhile (only past its expiry: isSlotFree) refuses it and the use stays counted. No expiry
 * condition: a late refund of a slot nobody took since still gives its use back.
 * `change`: the provider's status change (reportChange by `provider`), with the same rules.
 */
export type ProxiedRefund = CompletionAttempt;

/** A completion's answer: the key's count and status after it. */
export type CompletedKey = Pick<KeyRecord, 'keyId' | 'usageCount' | 'status' | 'cooldownUntil'>;

export type CompletionAttemptResult =
  | { applied: true; key: CompletedKey }
  /** refused; `current` is the key as it is, without its secret (undefined: no such key) */
  | { applied: false; current: (KeyRecord & Pick<StoredKey, 'slots'>) | undefined };

export interface LeaseStore extends UndecryptableMarker, ReportBudget {
  /**
   * One page of the pool's keys in key-id order, only what a count of them by status reads
   * (never a secret): what a refusal says about a dry pool, read at most once a minute per pool.
   */
  keyStates(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<CountedKey & { keyId: string }>>;
  /** A key with its slots and secret, read consistently. */
  get(keyId: string): Promise<StoredKey | undefined>;
  /**
   * Leasable keys of one shard of the pool with usageCount <= maxUses, fewest uses then least
   * recently used first. Keys in `skip` (the ones a request has tried) are read past as cooling
   * ones are: never answered, and the read goes on while it has found no other.
   */
  candidates(...query: CandidateQuery): Promise<CandidatePage>;
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
  /** ProxiedRefund's conditional write; refused: `current` is the key as it is (its slots included). */
  refundProxied(refund: ProxiedRefund): Promise<CompletionAttemptResult>;
  /** +1 without a lease; undefined if the pool has no such key. */
  increment(pool: string, keyId: string, nowMs: number): Promise<Pick<KeyRecord, 'keyId' | 'usageCount'> | undefined>;
  /**
   * Takes a key whose secret is still in plain text out of the usage index, so that leases stop
   * trying it (they never get it) and reach the pool's sealed keys; `keypool reseal` puts it
   * back when it seals it. False when the key is sealed now, gone, or already set aside.
   */
  setAsideUnsealed(key: { keyId: string; pool: string }): Promise<boolean>;
}
