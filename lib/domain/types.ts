/** The domain's vocabulary: keys, their statuses, leases and completion outcomes. */

export const KEY_STATUSES = ['active', 'cooling', 'exhausted', 'disabled'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

export const OUTCOMES = ['success', 'failure', 'invalid_key', 'out_of_credits', 'rate_limited'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const DEFAULT_POOL = 'stability';
export const DEFAULT_MAX_USES = 3;
export const DEFAULT_LEASE_TTL_SECONDS = 300;
export const DEFAULT_COOLDOWN_SECONDS = 60;

/** A key as stored, secret included. Never leaves the process except through a lease. */
export interface KeyRecord {
  keyId: string;
  pool: string;
  apiKey: string;
  label?: string;
  usageCount: number;
  status: KeyStatus;
  createdAt: string;
  lastUsedAt: string | null;
  cooldownUntil?: number;
  credits?: number;
  creditsCheckedAt?: string;
}

/** What list, import and status changes show of a key: the secret only masked. */
export interface KeyView {
  keyId: string;
  pool: string;
  label?: string;
  maskedKey: string;
  usageCount: number;
  status: KeyStatus;
  createdAt: string;
  lastUsedAt: string | null;
  /** the provider balance at the last maintenance check; null until checked */
  credits: number | null;
  creditsCheckedAt: string | null;
}

export interface NewKey {
  apiKey: string;
  pool?: string;
  label?: string;
}

export interface LeaseRequest {
  pool?: string;
  maxUses?: number;
  ttlSeconds?: number;
}

export interface LeaseGrant {
  leaseId: string;
  keyId: string;
  apiKey: string;
  pool: string;
  /** The key's count before this use. */
  usageCount: number;
  expiresAt: string;
}

export interface CompletionResult {
  keyId: string;
  usageCount: number;
  status: KeyStatus;
}

export interface ImportResult {
  imported: number;
  duplicates: number;
  keys: KeyView[];
}

export interface ListQuery {
  pool?: string;
  status?: KeyStatus;
  limit?: number;
  cursor?: string;
}

export interface KeyPage {
  keys: KeyView[];
  cursor: string | null;
}
