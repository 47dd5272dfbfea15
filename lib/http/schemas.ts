/**
 * The API's schemas, one beside each route. Requests are validated with them at the edge;
 * the OpenAPI document is generated from the same objects (lib/http/openapi.ts).
 * zod/mini keeps the Lambda bundles small; strict objects reject unknown fields, and no
 * schema coerces ("3" is not 3).
 */
import * as z from 'zod/mini';
import { API_KEY_PATTERN } from '../domain/secret-rule.js';
import { KEY_STATUSES, OUTCOMES } from '../domain/types.js';

export const MAX_IMPORT_BATCH = 500;

export const PoolName = z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a pool is 1-64 letters, digits, "_", "." or "-"'));
export const ApiKeySecret = z
  .string()
  .check(z.regex(API_KEY_PATTERN, 'an API key is 8-512 printable ASCII characters without spaces'));
export const Label = z.string().check(z.maxLength(128), z.regex(/^[^\p{Cc}\p{Cf}]*$/u, 'a label has no control or format characters'));
export const KeyStatusSchema = z.enum(KEY_STATUSES);

export const ImportBody = z.strictObject({
  keys: z
    .array(z.strictObject({ apiKey: ApiKeySecret, pool: z.optional(PoolName), label: z.optional(Label) }))
    .check(z.minLength(1), z.maxLength(MAX_IMPORT_BATCH)),
});

export const ListQuery = z.strictObject({
  pool: z.optional(PoolName),
  status: z.optional(KeyStatusSchema),
  // Query values are strings by nature; only the exact digits of 1..1000 become a number.
  limit: z.optional(
    z.pipe(
      z.string().check(z.regex(/^(1000|[1-9][0-9]{0,2})$/, 'limit is a whole number from 1 to 1000')),
      z.transform((digits: string) => Number(digits)),
    ),
  ),
  cursor: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
});

export const KeyIdParams = z.strictObject({ keyId: z.string().check(z.minLength(1), z.maxLength(256)) });
export const LeaseIdParams = z.strictObject({ leaseId: z.string().check(z.minLength(1), z.maxLength(256)) });

export const SetStatusBody = z.strictObject({ status: z.enum(['active', 'disabled']) });

export const LeaseBody = z.strictObject({
  pool: z.optional(PoolName),
  maxUses: z.optional(z.int().check(z.minimum(0), z.maximum(1000))),
  ttlSeconds: z.optional(z.int().check(z.minimum(1), z.maximum(3600))),
});

export const CompleteBody = z.strictObject({ outcome: z.optional(z.enum(OUTCOMES)) });

// Response shapes: documentation only (the OpenAPI document), the code builds them typed.
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
});
export const ImportResponse = z.object({ imported: z.int(), duplicates: z.int(), keys: z.array(KeyViewSchema) });
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
export const CompleteResponse = z.object({ keyId: z.string(), usageCount: z.int(), status: KeyStatusSchema });
export const HealthResponse = z.object({ status: z.literal('ok') });
export const ErrorResponse = z.object({
  error: z.string(),
  message: z.string(),
  details: z.optional(z.array(z.object({ path: z.string(), message: z.string() }))),
});
