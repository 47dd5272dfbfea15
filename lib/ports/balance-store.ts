/**
 * The port pool maintenance records what it learned through: the store's maintenance writes.
 * Adapter: lib/adapters/dynamo-balance-store.ts.
 */
import type { KeyRecord, KeyStatus, StatusBy } from '../domain/types.js';

/** What maintenance does to a key's status along with recording what it learned. */
export type BalanceChange = 'none' | 'exhaust' | 'exhaust_account' | 'reactivate' | 'disable';

export interface BalanceWrite {
  keyId: string;
  /** the status the decision was made from: a status change applies only while it still holds */
  seenStatus: KeyStatus;
  /** who had set that status (none: active, or set before setters were kept); a change applies only while it is still so */
  seenBy?: StatusBy;
  change: BalanceChange;
  /** the balance read; undefined when there is none to record (a 401, a suspect key cleared in a pool no provider checks) */
  credits?: number;
  /** when the request whose answer this is went out: a status set later is newer, and is not undone */
  checkedAt: string;
}

export type BalanceWriteResult =
  | { applied: true; key: KeyRecord }
  /** the status changed since it was seen (or the key is gone): `current` is the key as it is */
  | { applied: false; current: KeyRecord | undefined };

export interface BalanceStore {
  /**
   * One conditional write: records the balance and makes the status change only from
   * `seenStatus` and `seenBy`, never from an operator's disabled or retired, and never brings
   * back a key whose status was set after `checkedAt`.
   */
  write(update: BalanceWrite): Promise<BalanceWriteResult>;
}
