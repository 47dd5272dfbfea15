/**
 * The API's answers as schemas: documentation only (the OpenAPI document); the code builds
 * the answers typed, so no Lambda loads this module.
 */
import * as z from 'zod/mini';
import { KeyStatusSchema, ProviderSchema, StatusBySchema } from '../domain/primitives.js';

export const KeyViewSchema = z.object({
  keyId: z.string(),
  pool: z.string(),
  label: z.optional(z.string()),
  maskedKey: z.string(),
  usageCount: z.int(),
  status: KeyStatusSchema,
  createdAt: z.iso.datetime(),
  lastUsedAt: z.nullable(z.iso.datetime()),
  credits: z.nullable(z.number()),
  creditsCheckedAt: z.nullable(z.iso.datetime()),
  /** who set the status, why and when; null while the key is active */
  statusBy: z.nullable(StatusBySchema),
  statusReason: z.nullable(z.string()),
  statusAt: z.nullable(z.iso.datetime()),
  /** until when a temporary status lasts; null when it has no end or is over */
  cooldownUntil: z.nullable(z.iso.datetime()),
});
export const ImportResponse = z.object({
  imported: z.int(),
  /** keys already present, left as they are */
  duplicates: z.int(),
  /** retired keys: nothing stored for them (revive=true brings them back) */
  retired: z.int(),
  /** retired keys this import brought back: sealed anew, active, their counts kept */
  revived: z.int(),
  keys: z.array(KeyViewSchema),
});
export const PoolDeletionResponse = z.object({ pool: z.string(), deleted: z.literal(true), retiredKeys: z.int() });
export const KeyPageResponse = z.object({ keys: z.array(KeyViewSchema), cursor: z.nullable(z.string()) });
export const UsageResponse = z.object({ keyId: z.string(), usageCount: z.int() });
export const LeaseResponse = z.object({
  leaseId: z.string(),
  keyId: z.string(),
  apiKey: z.string(),
  pool: z.string(),
  usageCount: z.int(),
  expiresAt: z.iso.datetime(),
});
export const CompleteResponse = z.object({
  keyId: z.string(),
  usageCount: z.int(),
  status: KeyStatusSchema,
  /** over_budget: the caller is past its report budget; the report changed no status */
  reportIgnored: z.optional(z.literal('over_budget')),
});
export const HealthResponse = z.object({ status: z.literal('ok') });
export const ErrorResponse = z.object({
  error: z.string(),
  message: z.string(),
  retryAfterSeconds: z.optional(z.int()),
  details: z.optional(z.array(z.object({ path: z.string(), message: z.string() }))),
  /** no_usable_key: the pool's keys a lease could not use, by why (retired keys are not counted) */
  unusable: z.optional(
    z.object({
      overCap: z.int(),
      cooling: z.int(),
      suspect: z.int(),
      exhausted: z.int(),
      disabled: z.int(),
      undecryptable: z.int(),
      accountExhausted: z.int(),
    }),
  ),
  /** no_usable_key: when the keys were counted (at most a minute before the answer) */
  countedAt: z.optional(z.iso.datetime()),
  /** no_usable_key: the earliest end of a rest the count saw, while it is ahead */
  nextReturnAt: z.optional(z.iso.datetime()),
});
export const PoolViewSchema = z.object({
  pool: z.string(),
  maxUses: z.int(),
  leaseTtlSeconds: z.int(),
  cooldownSeconds: z.int(),
  provider: ProviderSchema,
  minCredits: z.number(),
  shards: z.int(),
  maxClientCooldownSeconds: z.int(),
  maxClientReportsPerMinute: z.int(),
  /** while a change of shards is being applied: the widest layout a key may still sit in */
  previousShards: z.optional(z.int()),
  shardsChangedAt: z.optional(z.iso.datetime()),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export const PoolListResponse = z.object({ pools: z.array(PoolViewSchema) });
