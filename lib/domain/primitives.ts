/**
 * The validation rules for values every edge accepts (HTTP bodies, CLI flags, migration rows,
 * the migrate event): written once here, so an API key the API refuses is refused everywhere.
 * zod/mini keeps the Lambda bundles small; no schema coerces ("3" is not 3). Each schema is
 * built on first use (`z.lazy`, which validates, infers and documents as the schema it wraps), so
 * a function that imports this module pays at start only for the schemas it runs.
 */
import * as z from 'zod/mini';
import { ACCOUNT_PATTERN } from './accounts.js';
import { POOL_NAME_PATTERN, POOL_NAME_RULE } from './pool-name.js';
import { API_KEY_PATTERN } from './secret-rule.js';
import { MAX_SHARDS } from './shards.js';
import { KEY_STATUSES, OUTCOMES, PROVIDERS, RATE_LIMIT_SCOPES, STATUS_SETTERS } from './types.js';

export const MAX_IMPORT_BATCH = 500;

/**
 * The most keys one import with verify takes through the API. Each key may wait for the
 * provider's account endpoint up to its timeout (10 s), 16 keys at a time, and the keys function
 * answers within API Gateway's 29 s: two rounds of 16 (20 s) leave room for the sealing and the
 * writes, a third would not (test/unit/import-limits.test.ts checks this against those figures).
 */
export const MAX_VERIFY_BATCH = 32;

export { POOL_NAME_PATTERN };
export const PoolName = z.lazy(() => z.string().check(z.regex(POOL_NAME_PATTERN, `a pool is ${POOL_NAME_RULE}`)));
export const ApiKeySecret = z.lazy(() =>
  z.string().check(z.regex(API_KEY_PATTERN, 'an API key is 8-512 printable ASCII characters without spaces')),
);
const LABEL_RULE = 'a label is visible text: no control, format, separator or invisible characters';
/**
 * A label is visible text, so it cannot change how a listing reads or pass for another: no
 * control (Cc) or format (Cf, e.g. U+202E) character, no line or paragraph separator (Zl, Zp:
 * U+2028 breaks a line), no lone surrogate (Cs), and nothing that renders as nothing — Unicode's
 * default-ignorable code points (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, U+034F, ...)
 * and U+2800 BRAILLE PATTERN BLANK — except the variation selectors, which only pick the glyph of
 * the character before them (the emoji form of ❤). Spaces (Zs, U+3000 too) show as space.
 */
export const Label = z.lazy(() =>
  z
    .string()
    .check(
      z.maxLength(128),
      z.regex(
        /^(?:(?![\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u2800])(?:[\uFE00-\uFE0F\u{E0100}-\u{E01EF}]|\P{Default_Ignorable_Code_Point}))*$/u,
        LABEL_RULE,
      ),
    ),
);
export const KeyStatusSchema = z.lazy(() => z.enum(KEY_STATUSES));
/** An account's name (lib/domain/accounts.ts). */
export const AccountName = z.lazy(() =>
  z
    .string()
    .check(
      z.regex(
        ACCOUNT_PATTERN,
        'an account is 1-128 letters, digits, ".", "_", ":", "@" or "-", starting with a letter or digit',
      ),
    ),
);
export const OutcomeSchema = z.lazy(() => z.enum(OUTCOMES));
export const StatusBySchema = z.lazy(() => z.enum(STATUS_SETTERS));

/** A DynamoDB table name (a legacy source for the migration). */
export const TableName = z.lazy(() =>
  z
    .string()
    .check(z.regex(/^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name is 3-255 letters, digits, "_", "." or "-"')),
);

/** A pool's cap (and a lease's lower one): a key is usable while its count is <= this. */
export const MaxUses = z.lazy(() => z.int().check(z.minimum(0), z.maximum(1000)));
/** A pool's lease TTL (and a lease's shorter one), in seconds. */
export const LeaseTtlSeconds = z.lazy(() => z.int().check(z.minimum(1), z.maximum(3600)));
export const CooldownSeconds = z.lazy(() => z.int().check(z.minimum(1), z.maximum(86_400)));
export const ProviderSchema = z.lazy(() => z.enum(PROVIDERS));
/** What a 429 cools: the key, or every key of its account. */
export const RateLimitScopeSchema = z.lazy(() => z.enum(RATE_LIMIT_SCOPES));
/** Credits are fractional in the provider's pricing. */
export const MinCredits = z.lazy(() => z.number().check(z.minimum(0), z.maximum(1_000_000)));
/** How many index partitions a pool's usage order is spread over (lib/domain/shards.ts). */
export const Shards = z.lazy(() => z.int().check(z.minimum(1), z.maximum(MAX_SHARDS)));
/** The longest rest a client's report gives a key, in seconds. */
export const MaxClientCooldownSeconds = z.lazy(() => z.int().check(z.minimum(1), z.maximum(3600)));
/** Negative reports and lease-less counts per caller, pool and minute. */
export const MaxClientReportsPerMinute = z.lazy(() => z.int().check(z.minimum(1), z.maximum(10_000)));
/** Keys one proxied request may try, the first included. */
export const ProxyAttempts = z.lazy(() => z.int().check(z.minimum(1), z.maximum(5)));
/** How long one proxied provider call may take, in seconds. */
export const ProxyTimeoutSeconds = z.lazy(() => z.int().check(z.minimum(1), z.maximum(600)));
/** An operator's reset of a key's count. */
export const UsageCount = z.lazy(() => z.int().check(z.minimum(0), z.maximum(1_000_000_000)));
/** A provider's Retry-After, passed on with a rate_limited report. */
export const RetryAfterSeconds = z.lazy(() => z.int().check(z.minimum(1), z.maximum(3600)));

/** What PUT /pools/{pool} (and `keypool pool set`) may change; absent fields keep their value. */
export const PoolSettingsSchema = z.lazy(() =>
  z.strictObject({
    maxUses: z.optional(MaxUses),
    leaseTtlSeconds: z.optional(LeaseTtlSeconds),
    cooldownSeconds: z.optional(CooldownSeconds),
    provider: z.optional(ProviderSchema),
    minCredits: z.optional(MinCredits),
    shards: z.optional(Shards),
    maxClientCooldownSeconds: z.optional(MaxClientCooldownSeconds),
    maxClientReportsPerMinute: z.optional(MaxClientReportsPerMinute),
    proxyAttempts: z.optional(ProxyAttempts),
    proxyTimeoutSeconds: z.optional(ProxyTimeoutSeconds),
    rateLimitScope: z.optional(RateLimitScopeSchema),
  }),
);
