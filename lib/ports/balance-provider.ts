/**
 * The port pool maintenance asks the provider's balance endpoint through. Adapter:
 * lib/adapters/stability-client.ts.
 */

/** What the provider said about a key's balance, already classified; never carries a body. */
export type BalanceAnswer =
  | { kind: 'balance'; credits: number }
  /** 401 or 403 in the provider's documented error shape: the provider does not accept the key */
  | { kind: 'invalid_key' }
  /**
   * 401 or 403 outside the documented shape (a firewall's page, a proxy's answer): not the
   * provider's word about the key; nothing changes. `reason` is short and secret-free
   */
  | { kind: 'provider_unavailable'; reason: string }
  /** 429: the provider wants a pause (Stability: 60 s after 150 requests in 10 s) */
  | { kind: 'rate_limited' }
  /** 5xx, timeout, network error or an unreadable answer: `reason` is short and secret-free */
  | { kind: 'error'; reason: string };

export interface BalanceProvider {
  /** Asks the provider for the key's balance; never throws for a provider or network failure. */
  balance(apiKey: string): Promise<BalanceAnswer>;
}

/** What the provider said about the account a key belongs to (Stability: `GET /v1/user/account`). */
export type AccountAnswer =
  /** the key's default organization: the account its credits belong to */
  { kind: 'account'; account: string } | Exclude<BalanceAnswer, { kind: 'balance' }>;

export interface AccountProvider {
  /** Asks the provider which account the key belongs to; never throws for a provider or network failure. */
  account(apiKey: string): Promise<AccountAnswer>;
}
