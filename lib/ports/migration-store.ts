/**
 * The port the migration writes through. The DynamoDB implementation
 * (lib/adapters/dynamo-migration-store.ts) makes every rule a ConditionExpression: a new key
 * never overwrites one that appeared meanwhile, a count is only ever raised, only from the
 * value the migration last saw, and only on a key of the pool the migration writes to.
 */
import type { KeyStatus, StatusBy, StoredKey } from '../domain/types.js';

/** What the migration needs to know of a key already in keypool. */
export interface ExistingKey {
  pool: string;
  usageCount: number;
  status: KeyStatus;
  /** who set the status (none: active, or set before setters were kept) */
  statusBy?: StatusBy;
}

export interface KeyChange {
  /** the count the migration saw; the write is refused if it is no longer this */
  from: number;
  /** the new count, >= from (equal: no raise) */
  to: number;
  /** also take the key out of the pool: disabled as an operator disables (no setter), no index entry */
  disable: boolean;
}

export type KeyWrite =
  /** a new key, written only if its id does not exist */
  | { kind: 'create'; key: StoredKey }
  /** a raise and/or disable, written only if the key exists in `pool` with `from` as its count */
  | { kind: 'change'; keyId: string; pool: string; change: KeyChange };

/** Refused writes carry the key as it is now (undefined: it does not exist). */
export type WriteResult = { applied: true } | { applied: false; current: ExistingKey | undefined };

export interface MigrationStore {
  /** The keys of `keyIds` that exist, read consistently (at most 100 ids per call). */
  existing(keyIds: string[]): Promise<Map<string, ExistingKey>>;
  /**
   * Applies conditional writes to distinct keys (at most 100 per call); each is applied or
   * refused on its own condition, and a refused one changes nothing.
   */
  write(writes: KeyWrite[]): Promise<WriteResult[]>;
}
