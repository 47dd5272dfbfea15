/**
 * The port the use cases depend on. The DynamoDB adapter (lib/adapters/dynamo-key-store.ts)
 * implements every method as one request whose ConditionExpression carries the invariant;
 * the broker only decides which key to try next.
 */
import type { KeyRecord, KeyStatus, Outcome } from './types.js';

/** A lease slot on a key: open while it has no outcome and its expiry has not passed. */
export interface LeaseSlot {
  /** the nonce of the lease holding the slot */
  nonce: string;
  /** when the lease expires, ms since the Unix epoch */
  expiresAtMs: number;
  /** the reported outcome, once completed */
  outcome?: Outcome;
}

/** A key as the store keeps it: the record plus its lease slots. */
export interface StoredKey extends KeyRecord {
  slots: Record<string, LeaseSlot>;
}

/** A key found by the usage-count index; the index may lag the item by a moment. */
export interface Candidate {
  keyId: string;
  usageCount: number;
}

export interface LeaseAttempt {
  keyId: string;
  pool: string;
  /** the count the caller believes the key has; the write is refused if it has changed */
  seenCount: number;
  maxUses: number;
  slot: number;
  nonce: string;
  expiresAtMs: number;
  nowMs: number;
}

export type LeaseAttemptResult =
  | { granted: true; key: StoredKey }
  /** the condition failed; `current` is the item as it was (undefined: no such key) */
  | { granted: false; current: StoredKey | undefined };

export interface CompletionAttempt {
  keyId: string;
  slot: number;
  nonce: string;
  outcome: Outcome;
  nowMs: number;
  cooldownUntilMs: number;
  /** false: record the outcome and refund, but leave the status (the key's status forbade the change) */
  applyStatus: boolean;
}

export type CompletionAttemptResult =
  | { applied: true; key: StoredKey }
  | { applied: false; current: StoredKey | undefined };

export interface ScanPage {
  keys: StoredKey[];
  /** opaque position to continue from, undefined at the end */
  next: Record<string, unknown> | undefined;
}

export interface KeyStore {
  /** Inserts a new key unless its id exists; returns the stored key either way. */
  insert(key: StoredKey): Promise<{ inserted: boolean; key: StoredKey }>;
  get(keyId: string): Promise<StoredKey | undefined>;
  /** Leasable keys of the pool with usageCount <= maxUses, fewest uses then least recently used first. */
  candidates(pool: string, maxUses: number, limit: number, nowMs: number): Promise<Candidate[]>;
  tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult>;
  tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult>;
  /** +1 without a lease; undefined if the key does not exist. */
  increment(keyId: string, nowMs: number): Promise<StoredKey | undefined>;
  /** Operator status change; undefined if the key does not exist. */
  setStatus(keyId: string, status: Extract<KeyStatus, 'active' | 'disabled'>): Promise<StoredKey | undefined>;
  /** One page of keys in storage order, optionally filtered. */
  scan(filter: { pool?: string; status?: KeyStatus; nowMs: number }, limit: number, start?: Record<string, unknown>): Promise<ScanPage>;
}
