/**
 * The port over accounts (lib/domain/accounts.ts): which account a key belongs to, an account's
 * keys, its record, and the writes that put an account's state on its keys. Adapter:
 * lib/adapters/dynamo-account-store.ts.
 */
import type { AccountRecord } from '../domain/accounts.js';
import type { ReportChange } from '../domain/rules.js';
import type { KeyRecord } from '../domain/types.js';

/** What an import and an operator's change need of accounts: records, and a key's account. */
export interface AccountRecords {
  /** An account's record; undefined when none was written. */
  record(pool: string, account: string): Promise<AccountRecord | undefined>;
  /** The records of several accounts of a pool (missing ones left out). */
  records(pool: string, accounts: readonly string[]): Promise<Map<string, AccountRecord>>;
  /** Creates the account's record (active, no balance yet) unless it exists. */
  ensure(pool: string, account: string): Promise<void>;
  /**
   * Sets the key's account: `operator` replaces whatever was known, discovery (`known: false`)
   * writes only where no account is known yet, so an operator's value wins. False when the key
   * is not in the pool (or, for discovery, already has one).
   */
  setAccount(pool: string, keyId: string, account: string, replace: boolean): Promise<boolean>;
}

/** Accounts' states put on their keys, and the records' status writes and pages. */
export interface AccountStore extends AccountRecords {
  /** The account a key of the pool belongs to, read consistently; undefined: unknown, or no such key in the pool. */
  accountOf(pool: string, keyId: string): Promise<string | undefined>;
  /** The ids of an account's keys (the account-keys index: it may lag a new account by a moment). */
  accountKeys(pool: string, account: string): Promise<string[]>;
  /**
   * Puts an account's change on one of its keys: one conditional write, applied only while the
   * key is in the pool and reportApplies allows it (never an operator's disabled, never a more
   * severe or longer rest). True when it applied.
   */
  stopKey(pool: string, keyId: string, change: ReportChange, nowMs: number): Promise<boolean>;
  /**
   * Writes the account's status (and, when given, its balance). `report`: the record is
   * written as its report's change puts the keys (reportApplies, as stopKey: never over a verdict
   * the change may not replace, never a rest shortened), or where none is recorded yet. Active
   * with a balance: not over a status set after `creditsCheckedAt` (a stale read never undoes a
   * newer word). False when refused.
   */
  writeRecord(record: AccountRecord, report?: { change: ReportChange; nowMs: number }): Promise<boolean>;
  /** The records (never secrets) of an account's keys, through the account-keys index. */
  keysOf(pool: string, account: string): Promise<KeyRecord[]>;
  /** One page of the pool's account records in account order. */
  list(pool: string, limit: number, after?: string): Promise<{ accounts: AccountRecord[]; last: string | undefined }>;
}
