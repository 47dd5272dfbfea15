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
  /** what migrations have already brought into the key (none: no migration has) */
  migrated?: SourceSaid;
}

/**
 * What the old system's rows have said about a key so far: the highest count a row carried, and
 * whether a row disabled it. A row saying no more than this is not news: the count and status
 * the key has now are keypool's (a lease, an operator's reset or enable) and stay.
 */
export interface SourceSaid {
  usageCount: number;
  disabled: boolean;
}

export interface KeyChange {
  /** the count the migration saw; the write is refused if it is no longer this */
  from: number;
  /** the new count, >= from (equal: no raise) */
  to: number;
  /** also take the key out of the pool: disabled as an operator disables (no setter), no index entry */
  disable: boolean;
  /** what the key records of the source as the migration read it; the write is refused if it changed */
  saidBefore: SourceSaid | undefined;
  /** what it records from now on */
  said: SourceSaid;
}

export type KeyWrite =
  /** a new key, written only if its id does not exist, recording what its rows said */
  | { kind: 'create'; key: StoredKey; said: SourceSaid }
  /**
   * a raise and/or disable, or only the record of what the source said, written only if the key
   * exists in `pool` with `from` as its count and `saidBefore` as its record
   */
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
