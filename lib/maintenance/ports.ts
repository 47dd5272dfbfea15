/**
 * The ports pool maintenance depends on: the provider's balance endpoint and the store's
 * maintenance writes. Adapters: lib/adapters/stability-client.ts and
 * lib/adapters/dynamo-balance-store.ts.
 */
import type { KeyRecord, KeyStatus } from '../domain/types.js';

/** What the provider said about a key's balance, already classified; never carries a body. */
export type BalanceAnswer =
  | { kind: 'balance'; credits: number }
  /** 401 or 403: the provider does not accept the key */
  | { kind: 'invalid_key' }
  /** 429: the provider wants a pause (Stability: 60 s after 150 requests in 10 s) */
  | { kind: 'rate_limited' }
  /** 5xx, timeout, network error or an unreadable answer: `reason` is short and secret-free */
  | { kind: 'error'; reason: string };

export interface BalanceProvider {
  /** Asks the provider for the key's balance; never throws for a provider or network failure. */
  balance(apiKey: string): Promise<BalanceAnswer>;
}

/** What maintenance does to a key's status along with recording what it learned. */
export type BalanceChange = 'none' | 'exhaust' | 'reactivate' | 'disable';

export interface BalanceWrite {
  keyId: string;
  /** the status the decision was made from: a status change applies only while it still holds */
  seenStatus: KeyStatus;
  change: BalanceChange;
  /** the balance read; undefined when there is none to record (a 401, a suspect key cleared in a pool no provider checks) */
  credits?: number;
  checkedAt: string;
}

export type BalanceWriteResult =
  | { applied: true; key: KeyRecord }
  /** the status changed since it was seen (or the key is gone): `current` is the key as it is */
  | { applied: false; current: KeyRecord | undefined };

export interface BalanceStore {
  /** One conditional write: records the balance and makes the status change only from `seenStatus`. */
  write(update: BalanceWrite): Promise<BalanceWriteResult>;
}
