/**
 * The API's schemas, one beside each route. Requests are validated with them at the edge;
 * the OpenAPI document is generated from the same objects (lib/http/openapi.ts).
 * zod/mini keeps the Lambda bundles small; strict objects reject unknown fields, and no
 * schema coerces ("3" is not 3).
 */
import * as z from 'zod/mini';
import { ApiKeySecret, KeyStatusSchema, Label, MAX_IMPORT_BATCH, OutcomeSchema, PoolName } from '../domain/primitives.js';

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

export const CompleteBody = z.strictObject({ outcome: z.optional(OutcomeSchema) });
