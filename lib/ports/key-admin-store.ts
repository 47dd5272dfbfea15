/** The operator's port over one pool's keys (KeyAdmin: change a status or a count, list); never a secret. */
import type { KeyRecord, KeyStatus, StatusBy } from '../domain/types.js';
import type { KeyPageRead } from './key-pages.js';

/** An operator's write to one key: a status and/or a count, the count only from the one seen. */
export interface KeyUpdate {
  keyId: string;
  pool: string;
  status?: Extract<KeyStatus, 'active' | 'disabled'>;
  /** when the status is set (ISO 8601; default: now) */
  at?: string;
  count?: { seen: number; to: number };
  /** the status change applies only while the key has this status, set by this setter (a bulk enable) */
  from?: { status: KeyStatus; by: StatusBy };
}

export type KeyUpdateResult =
  | { applied: true; key: KeyRecord }
  /** refused; `current` is the key as it is (undefined: none in this pool) */
  | { applied: false; current: KeyRecord | undefined };

/** An operator's retirement of one key: its secret destroyed, its record kept. */
export interface Retirement {
  keyId: string;
  pool: string;
  /** when (ISO 8601) */
  at: string;
  /** why, as the record keeps it: `retired` (the key alone) or `pool_deleted` (with its pool) */
  reason: 'retired' | 'pool_deleted';
}

export type RetireResult =
  | { retired: true; key: KeyRecord }
  /** refused: the key is retired already, still in plain text, or there is none in this pool (undefined) */
  | { retired: false; current: KeyRecord | undefined };

export interface KeyAdminStore {
  /** A key of the pool without its secret; undefined if the pool has no such key. */
  record(pool: string, keyId: string): Promise<KeyRecord | undefined>;
  /** An operator's change, as one conditional write. */
  update(update: KeyUpdate): Promise<KeyUpdateResult>;
  /**
   * Retires the key, as one conditional write: status `retired` (by the operator, the reason,
   * when), out of the usage index, its ciphertext removed; its record, counts and lease slots
   * kept (an open lease still completes). Refused for a key already retired, and for one still
   * stored in plain text (from before sealing: `keypool reseal` seals it first).
   */
  retire(retirement: Retirement): Promise<RetireResult>;
  /** One page of the pool's keys in key-id order, without secrets: reads cost the page, not the table. */
  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>>;
}
