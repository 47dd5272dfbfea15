/** The API's bodies as this package sends and reads them (the OpenAPI document's schemas of the same names). */

/** How a lease ended: `success` and `unknown` keep the use counted, every other outcome gives it back. */
export type Outcome = 'success' | 'failure' | 'invalid_key' | 'out_of_credits' | 'rate_limited' | 'unknown';

export type KeyStatus = 'active' | 'cooling' | 'suspect' | 'exhausted' | 'disabled' | 'undecryptable' | 'retired';

/** What a lease asks for beyond the pool's policy: a lower cap, a shorter lease. */
export interface LeaseRequest {
  /** a key is leased while its count is <= this (the pool's cap, or lower; above it is InvalidRequest) */
  maxUses?: number;
  /** how long the lease lasts (the pool's lease TTL, or shorter), seconds */
  ttlSeconds?: number;
}

/** A leased key (POST /pools/{pool}/leases). */
export interface LeaseGrant {
  leaseId: string;
  keyId: string;
  /** the secret: send it to the provider, never to a log */
  apiKey: string;
  pool: string;
  /** the key's count before this use */
  usageCount: number;
  /** ISO 8601; past it the use stays counted and completing answers LeaseExpired */
  expiresAt: string;
}

/** How a lease is completed (POST /pools/{pool}/leases/{leaseId}/complete). */
export interface CompletionReport {
  /** default success */
  outcome?: Outcome;
  /** with rate_limited: how long the key rests, 1..3600 s (else the pool's cooldown) */
  retryAfterSeconds?: number;
}

/** The key after a completion, as keypool stored it. */
export interface Completion {
  keyId: string;
  usageCount: number;
  status: KeyStatus;
  /** `over_budget`: the caller is past the pool's report budget; the report changed no status (the use was still counted or given back) */
  reportIgnored?: 'over_budget';
}

/** A use counted without a lease (POST /pools/{pool}/keys/{keyId}/usage). */
export interface CountedUse {
  keyId: string;
  usageCount: number;
}
