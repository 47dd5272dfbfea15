/**
 * The API's answers as schemas: documentation only (the OpenAPI document); the code builds
 * the answers typed, so no Lambda loads this module. Objects stay open (a field added later
 * does not break a client that validates against an older document).
 */
import * as z from 'zod/mini';
import { KeyStatusSchema, ProviderSchema, RateLimitScopeSchema, StatusBySchema } from '../domain/primitives.js';
import { ACCOUNT_STATUSES } from '../domain/accounts.js';
import { ERROR_CODES } from './errors.js';

/** A count (of uses, of keys): a whole number from 0. */
const Count = z.int().check(z.minimum(0));
/** A setting that is at least 1 (seconds, shards). */
const Positive = z.int().check(z.minimum(1));

export const KeyViewSchema = z.object({
  keyId: z.string(),
  pool: z.string(),
  label: z.optional(z.string()),
  maskedKey: z.string(),
  usageCount: Count,
  status: KeyStatusSchema,
  createdAt: z.iso.datetime(),
  lastUsedAt: z.nullable(z.iso.datetime()),
  /** the account the key belongs to; null until known (the key is its own account) */
  account: z.nullable(z.string()),
  /** the provider balance at the last check: its account's once the account is known */
  credits: z.nullable(z.number()),
  creditsCheckedAt: z.nullable(z.iso.datetime()),
  /** who set the status, why and when; null while the key is active */
  statusBy: z.nullable(StatusBySchema),
  statusReason: z.nullable(z.string()),
  statusAt: z.nullable(z.iso.datetime()),
  /** until when a temporary status lasts; null when it has no end or is over */
  cooldownUntil: z.nullable(z.iso.datetime()),
});
export const RefusedKeySchema = z.object({
  keyId: z.string(),
  maskedKey: z.string(),
  outcome: z.enum(['rejected', 'unverified']),
  reason: z.string(),
});
export const ImportResponse = z.object({
  imported: Count,
  /** keys already present, left as they are */
  duplicates: Count,
  /** retired keys: nothing stored for them (revive=true brings them back) */
  retired: Count,
  /** retired keys this import brought back: sealed anew, active, their counts kept */
  revived: Count,
  keys: z.array(KeyViewSchema),
  /** verify=true: keys the provider refused, not stored */
  rejected: z.optional(Count),
  /** verify=true: keys the provider did not answer for in its documented shape, not stored */
  unverified: z.optional(Count),
  /** verify=true: each key not stored, masked, and why */
  refused: z.optional(z.array(RefusedKeySchema)),
});
export const PoolDeletionResponse = z.object({ pool: z.string(), deleted: z.literal(true), retiredKeys: Count });
/** The request's time ran out first: the pool stays; the same request again goes on. */
export const PoolDeletionPendingResponse = z.object({
  pool: z.string(),
  deleted: z.literal(false),
  /** keys this request retired */
  retiredKeys: Count,
  /** keys of the pool not retired yet (counted up to 1,000 past where the request stopped) */
  remainingKeys: Count,
});
export const AccountViewSchema = z.object({
  account: z.string(),
  /** keys of the pool in the account (retired ones aside) */
  keys: Count,
  /** of them, leasable now: effectively active, under the pool's cap */
  usableKeys: Count,
  credits: z.nullable(z.number()),
  creditsCheckedAt: z.nullable(z.iso.datetime()),
  status: z.enum(ACCOUNT_STATUSES),
  /** until when a cooling account (or a client's report of it out of credits) rests */
  cooldownUntil: z.optional(z.iso.datetime()),
});
export const AccountPageResponse = z.object({ accounts: z.array(AccountViewSchema), cursor: z.nullable(z.string()) });
export const KeyPageResponse = z.object({ keys: z.array(KeyViewSchema), cursor: z.nullable(z.string()) });
export const UsageResponse = z.object({ keyId: z.string(), usageCount: Count });
export const LeaseResponse = z.object({
  leaseId: z.string(),
  keyId: z.string(),
  apiKey: z.string(),
  pool: z.string(),
  usageCount: Count,
  expiresAt: z.iso.datetime(),
});
export const CompleteResponse = z.object({
  keyId: z.string(),
  usageCount: Count,
  status: KeyStatusSchema,
  /** over_budget: the caller is past its report budget; the report changed no status */
  reportIgnored: z.optional(z.literal('over_budget')),
});
export const HealthResponse = z.object({ status: z.literal('ok') });
/** A dry pool's keys that a lease could not use, by why (lib/domain/dry-pool.ts). */
export const UnusableCountsSchema = z.object({
  overCap: Count,
  cooling: Count,
  suspect: Count,
  exhausted: Count,
  disabled: Count,
  undecryptable: Count,
  accountExhausted: Count,
});
/** Every code an error answer may carry: read from the one table of codes (lib/http/errors.ts). */
export const ErrorCodeSchema = z.enum(ERROR_CODES as [string, ...string[]]);
export const ErrorResponse = z.object({
  error: ErrorCodeSchema,
  message: z.string(),
  retryAfterSeconds: z.optional(Count),
  details: z.optional(z.array(z.object({ path: z.string(), message: z.string() }))),
  /** no_usable_key: the pool's keys a lease could not use, by why (retired keys are not counted) */
  unusable: z.optional(UnusableCountsSchema),
  /** no_usable_key: when the keys were counted (at most a minute before the answer) */
  countedAt: z.optional(z.iso.datetime()),
  /** no_usable_key: the earliest end of a rest the count saw, while it is ahead */
  nextReturnAt: z.optional(z.iso.datetime()),
});
export const PoolViewSchema = z.object({
  pool: z.string(),
  maxUses: Count,
  leaseTtlSeconds: Positive,
  cooldownSeconds: Positive,
  provider: ProviderSchema,
  minCredits: z.number().check(z.minimum(0)),
  shards: Positive,
  maxClientCooldownSeconds: Positive,
  maxClientReportsPerMinute: Positive,
  rateLimitScope: RateLimitScopeSchema,
  /** proxy mode: keys one proxied request may try (1..5) */
  proxyAttempts: Positive,
  /** proxy mode: how long one provider call may take, in seconds (1..600) */
  proxyTimeoutSeconds: Positive,
  /** while a change of shards is being applied: the widest layout a key may still sit in */
  previousShards: z.optional(Positive),
  shardsChangedAt: z.optional(z.iso.datetime()),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export const PoolListResponse = z.object({ pools: z.array(PoolViewSchema) });
/**
 * What API Gateway answers by itself, before or instead of keypool: an IAM refusal (403), its
 * throttling (429), a body over its own limit (413), a function that failed or timed out
 * (500, 503). A message only, no `error` code.
 */
export const GatewayErrorResponse = z.object({ message: z.string() });
