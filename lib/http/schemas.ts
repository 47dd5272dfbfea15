/**
 * The API's request schemas, one beside each route. Requests are validated with them at the
 * edge; the OpenAPI document is generated from the same objects (lib/http/openapi.ts).
 * zod/mini keeps the Lambda bundles small; strict objects reject unknown fields, and no
 * schema coerces ("3" is not 3).
 *
 * Each schema is built on first use (`z.lazy`): every function imports the one route table, so
 * a schema built at import would cost every function's cold start the schemas of every route;
 * this way the lease builds only the lease route's. A lazy schema validates, infers and
 * documents exactly as the schema it wraps.
 */
import * as z from 'zod/mini';
import {
  AccountName,
  ApiKeySecret,
  KeyStatusSchema,
  Label,
  LeaseTtlSeconds,
  MAX_IMPORT_BATCH,
  MaxUses,
  OutcomeSchema,
  PoolName,
  PoolSettingsSchema,
  RetryAfterSeconds,
  UsageCount,
} from '../domain/primitives.js';

const Id = z.lazy(() => z.string().check(z.minLength(1), z.maxLength(256)));

export const PoolParams = z.lazy(() => z.strictObject({ pool: PoolName }));
export const PoolKeyParams = z.lazy(() => z.strictObject({ pool: PoolName, keyId: Id }));
export const PoolLeaseParams = z.lazy(() => z.strictObject({ pool: PoolName, leaseId: Id }));

export const PoolBody = PoolSettingsSchema;

/** A yes/no query flag: exactly `true` or `false` (absent: false). */
const QueryFlag = z.lazy(() =>
  z.pipe(
    z.string().check(z.regex(/^(true|false)$/, 'true or false')),
    z.transform((word: string) => word === 'true'),
  ),
);

/** `revive=true`: a retired key the import names comes back (sealed anew, active, its count kept). */
export const ImportQuery = z.lazy(() =>
  z.strictObject({ revive: z.optional(QueryFlag), verify: z.optional(QueryFlag) }),
);

/** `retireKeys=true`: a pool that still holds keys is deleted with them, each retired first. */
export const DeletePoolQuery = z.lazy(() => z.strictObject({ retireKeys: z.optional(QueryFlag) }));

export const ImportedKey = z.lazy(() =>
  z.strictObject({ apiKey: ApiKeySecret, label: z.optional(Label), account: z.optional(AccountName) }),
);

export const ImportBody = z.lazy(() =>
  z.strictObject({
    keys: z.array(ImportedKey).check(z.minLength(1), z.maxLength(MAX_IMPORT_BATCH)),
  }),
);

/**
 * A page's query fields (`limit`, `cursor`), shared by the key list and the account list. Query
 * values are strings by nature; only the exact digits of 1..1000 become a number. The pipe ends
 * in the number it means, which is what the OpenAPI document declares (an integer parameter is
 * sent as its digits anyway).
 */
function pageFields() {
  return {
    limit: z.optional(
      z.pipe(
        z.pipe(
          z.string().check(z.regex(/^(1000|[1-9][0-9]{0,2})$/, 'limit is a whole number from 1 to 1000')),
          z.transform((digits: string) => Number(digits)),
        ),
        z.int().check(z.minimum(1), z.maximum(1000)),
      ),
    ),
    cursor: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
  };
}

export const ListQuery = z.lazy(() => z.strictObject({ status: z.optional(KeyStatusSchema), ...pageFields() }));

export const UpdateKeyBody = z.lazy(() =>
  z.strictObject({
    status: z.optional(z.enum(['active', 'disabled'])),
    usageCount: z.optional(UsageCount),
    /** the account the key belongs to (replaces one learned by maintenance) */
    account: z.optional(AccountName),
  }),
);

export const AccountsQuery = z.lazy(() => z.strictObject(pageFields()));

export const LeaseBody = z.lazy(() =>
  z.strictObject({ maxUses: z.optional(MaxUses), ttlSeconds: z.optional(LeaseTtlSeconds) }),
);

export const CompleteBody = z.lazy(() =>
  z.strictObject({
    outcome: z.optional(OutcomeSchema),
    retryAfterSeconds: z.optional(RetryAfterSeconds),
  }),
);

/**
 * `Idempotency-Key`: the same key while its lease lives answers the same lease, one use counted
 * (lib/domain/idempotency.ts). Printable ASCII, as HTTP header values are.
 */
export const LeaseHeaders = z.lazy(() =>
  z.object({
    'idempotency-key': z.optional(
      z
        .string()
        .check(
          z.regex(/^[\x21-\x7e]{1,255}$/, 'an Idempotency-Key is 1-255 printable ASCII characters without spaces'),
        ),
    ),
  }),
);
