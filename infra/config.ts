/**
 * Per-stage deployment settings, typed. The stage comes from CDK context (`-c stage=prod`);
 * a few settings an operator changes without editing code come from context too and are
 * validated here, at the edge, with the same zod/mini the API uses.
 */
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import * as z from 'zod/mini';
import { POOL_NAME_PATTERN, TableName } from '../lib/domain/primitives.js';
import { DEFAULT_POOL } from '../lib/domain/types.js';
import { KMS_KEY_ARN } from '../lib/domain/sealing-names.js';

export const STAGES = ['dev', 'prod'] as const;
export type Stage = (typeof STAGES)[number];

/**
 * A pool the stage serves: it gets a keypool-client-<pool> policy (infra/constructs/http-api.ts clientPolicyName) and its alarms.
 * (The pool's policy — cap, lease TTL, provider, minCredits — is data, set with PUT /pools/{pool}.)
 */
export interface StagePool {
  /** the pool's name (the `{pool}` of the routes, the metric dimension `pool`) */
  pool: string;
  /** alarm when the pool's UsableKeys falls below this */
  minUsableKeys: number;
  /**
   * alarm when the pool's UsableCredits (the credits of its accounts in service) falls below
   * this; absent or 0: no alarm on credits (a pool whose provider is `none` has none)
   */
  minUsableCredits?: number;
}

export interface StageConfig {
  stage: Stage;
  /** RETAIN keeps the table and its key when the stack goes; DESTROY is for throwaway stages. */
  removal: 'retain' | 'destroy';
  deletionProtection: boolean;
  logRetention: RetentionDays;
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Throttling of the HTTP API's stage and of the proxy's REST API stage (each, every route): steady requests/s and burst. */
  throttle: { rateLimit: number; burstLimit: number };
  /** How often the maintenance function runs. */
  maintenanceEveryMinutes: number;
  /** What maintenance reads from its environment; each pool's cap and minCredits are the pool's own. */
  maintenance: { balanceRate: number; stabilityApiBaseUrl: string };
  /** The pools applications are granted (one client policy each) and the alarms watch. */
  pools: StagePool[];
  /** E-mail address subscribed to the alarm topic, if any. */
  alarmEmail: string | undefined;
  /** Where the one-off migration may read from; nothing is granted for what is unset. */
  migration: {
    sourceBucket: string | undefined;
    /** the customer managed KMS key the source bucket's objects are encrypted under (SSE-KMS), if any */
    sourceBucketKeyArn: string | undefined;
    legacyTable: string | undefined;
    /** the customer managed KMS key the legacy table is encrypted under, if any */
    legacyTableKeyArn: string | undefined;
  };
  /** The KMS key that wraps the sealed secrets, and the keys being rotated away from. */
  secrets: SecretsKeyConfig;
}

/**
 * Which secrets keys the stage has. Every key is one generation: a new generation is a new
 * KMS key (a new key ARN). The current one seals and opens; previous ones only open, for the
 * functions that open secrets, until `keypool reseal` has moved every secret to the current one.
 */
export interface SecretsKeyConfig {
  /** the generation new secrets are sealed under (the stateful stack's current key; the alias points at it) */
  keyGeneration: number;
  /**
   * earlier generations the stateful stack keeps during a rotation (decrypt only). A generation
   * dropped from the stack is left to its removal policy: retained in prod, deleted in dev.
   */
  previousKeyGenerations: readonly number[];
  /** keys outside the stack (by ARN) whose secrets may still be opened: decrypt only */
  previousKeyArns: readonly string[];
}

const BASE = {
  logLevel: 'INFO',
  // docs/scaling.md: an unsharded pool sustains ~474 leases/s on the table, each lease followed by
  // its completion, so ~950 requests/s; the gateway lets that through (2 s of it in a burst) and
  // the table, not the stage, is a pool's limit. Sharded pools raise it with -c throttleRate.
  throttle: { rateLimit: 1000, burstLimit: 2000 },
  maintenanceEveryMinutes: 15,
  maintenance: { balanceRate: 5, stabilityApiBaseUrl: 'https://api.stability.ai' },
  // The domain's default pool (what the CLI, the client and the migration use when none is named).
  pools: [{ pool: DEFAULT_POOL, minUsableKeys: 3, minUsableCredits: 30 }],
  alarmEmail: undefined,
  migration: {
    sourceBucket: undefined,
    sourceBucketKeyArn: undefined,
    legacyTable: undefined,
    legacyTableKeyArn: undefined,
  },
  secrets: { keyGeneration: 1, previousKeyGenerations: [], previousKeyArns: [] },
} as const satisfies Partial<StageConfig>;

export const STAGE_CONFIG: Record<Stage, StageConfig> = {
  dev: {
    ...BASE,
    stage: 'dev',
    removal: 'destroy',
    deletionProtection: false,
    logRetention: RetentionDays.ONE_WEEK,
    logLevel: 'DEBUG',
    throttle: { rateLimit: 10, burstLimit: 20 },
    pools: [{ pool: DEFAULT_POOL, minUsableKeys: 1 }],
  },
  prod: {
    ...BASE,
    stage: 'prod',
    removal: 'retain',
    deletionProtection: true,
    logRetention: RetentionDays.THREE_MONTHS,
  },
};

export class StageConfigError extends Error {
  override readonly name = 'StageConfigError';
}

const positive = (max: number) =>
  z.pipe(z.string().check(z.regex(/^\d+$/, 'a whole number')), z.transform(Number)).check(z.minimum(1), z.maximum(max));
const name = (pattern: RegExp, what: string) => z.string().check(z.regex(pattern, what));
/** The highest secrets key generation, current or previous (`-c secretsKeyGeneration`, `-c previousSecretsKeyGenerations`). */
const MAX_KEY_GENERATION = 1000;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const POOL_LIST = /^[^,:]{1,64}:\d+(:\d+)?(,[^,:]{1,64}:\d+(:\d+)?)*$/;

/**
 * What must differ between two configured pools: IAM policy names ignore case, and the
 * alarms' construct ids and the outputs' logical ids keep only letters and digits. Two pools
 * equal under this would collide in one of them.
 */
const poolSlot = (pool: string): string => pool.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Context keys an operator may pass with `-c key=value`; each is validated, none is required. */
const ContextOverrides = z.object({
  stage: z.optional(z.enum(STAGES)),
  alarmEmail: z.optional(z.email()),
  /**
   * `pool:min[:credits],...`, e.g. `stability:5:100,sdxl:2`: the stage's pools, their minimum
   * usable keys and, when given, their minimum usable credits
   */
  pools: z.optional(name(POOL_LIST, 'pool:min[:credits][,pool:min[:credits]...]')),
  /** the same as `pools` (its name before pools were granted per pool); kept so existing deploy commands work */
  poolAlarms: z.optional(name(POOL_LIST, 'pool:min[,pool:min...]')),
  maintenanceEveryMinutes: z.optional(positive(1440)),
  throttleRate: z.optional(positive(10_000)),
  throttleBurst: z.optional(positive(5_000)),
  migrationBucket: z.optional(name(BUCKET, 'an S3 bucket name')),
  /** the KMS key ARN the migration bucket's objects are encrypted under (SSE-KMS with a customer managed key) */
  migrationBucketKeyArn: z.optional(
    name(KMS_KEY_ARN, 'a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; not an alias)'),
  ),
  legacyTable: z.optional(TableName),
  /** the KMS key ARN the legacy table is encrypted under (a customer managed key) */
  legacyTableKeyArn: z.optional(
    name(KMS_KEY_ARN, 'a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; not an alias)'),
  ),
  /** `arn,arn`: the secrets keys being rotated away from (KMS key ARNs), decrypt only, until `keypool reseal` is done */
  previousSecretsKeyArns: z.optional(z.string().check(z.minLength(1))),
  /** the secrets key generation that seals (default 1); a new number is a new key */
  secretsKeyGeneration: z.optional(positive(MAX_KEY_GENERATION)),
  /** `1` or `1,2`: earlier generations kept in the stack while `keypool reseal` moves their secrets (decrypt only) */
  previousSecretsKeyGenerations: z.optional(name(/^\d{1,4}(,\d{1,4})*$/, 'generation numbers, e.g. 1 or 1,2')),
});

type Context = Record<string, unknown>;

/**
 * The settings for the stage named in context (default dev), with the context overrides
 * applied. Throws StageConfigError naming the offending key when a value is malformed.
 */
export function resolveStageConfig(context: Context): StageConfig {
  const known = Object.fromEntries(
    Object.keys(ContextOverrides.def.shape)
      .filter((key) => context[key] !== undefined && context[key] !== '')
      .map((key) => [key, String(context[key])]),
  );
  const parsed = ContextOverrides.safeParse(known);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `-c ${issue.path.join('.')}: ${issue.message}`);
    throw new StageConfigError(`invalid context: ${issues.join('; ')}`);
  }
  const given = parsed.data;
  const base = STAGE_CONFIG[given.stage ?? 'dev'];
  if (given.pools !== undefined && given.poolAlarms !== undefined) {
    throw new StageConfigError('invalid context: give -c pools or -c poolAlarms (the same setting), not both');
  }
  const poolList = given.pools ?? given.poolAlarms;
  const key = given.pools === undefined ? 'poolAlarms' : 'pools';
  const pools = poolList === undefined ? undefined : parsePools(poolList, key);
  const sourceBucket = given.migrationBucket ?? base.migration.sourceBucket;
  if (given.migrationBucketKeyArn !== undefined && sourceBucket === undefined) {
    throw new StageConfigError(
      'invalid context: -c migrationBucketKeyArn is the key of the migration bucket: give -c migrationBucket too',
    );
  }
  const legacyTable = given.legacyTable ?? base.migration.legacyTable;
  if (given.legacyTableKeyArn !== undefined && legacyTable === undefined) {
    throw new StageConfigError(
      'invalid context: -c legacyTableKeyArn is the key of the legacy table: give -c legacyTable too',
    );
  }
  return {
    ...base,
    alarmEmail: given.alarmEmail ?? base.alarmEmail,
    pools: pools ?? base.pools,
    maintenanceEveryMinutes: given.maintenanceEveryMinutes ?? base.maintenanceEveryMinutes,
    throttle: {
      rateLimit: given.throttleRate ?? base.throttle.rateLimit,
      burstLimit: given.throttleBurst ?? base.throttle.burstLimit,
    },
    migration: {
      sourceBucket,
      sourceBucketKeyArn: given.migrationBucketKeyArn ?? base.migration.sourceBucketKeyArn,
      legacyTable,
      legacyTableKeyArn: given.legacyTableKeyArn ?? base.migration.legacyTableKeyArn,
    },
    secrets: parseSecrets(given, base.secrets),
  };
}

function parseSecrets(
  given: {
    secretsKeyGeneration?: number | undefined;
    previousSecretsKeyGenerations?: string | undefined;
    previousSecretsKeyArns?: string | undefined;
  },
  base: SecretsKeyConfig,
): SecretsKeyConfig {
  const keyGeneration = given.secretsKeyGeneration ?? base.keyGeneration;
  const previousKeyGenerations =
    given.previousSecretsKeyGenerations === undefined
      ? base.previousKeyGenerations
      : given.previousSecretsKeyGenerations.split(',').map(Number);
  const seen = new Set([keyGeneration]);
  for (const generation of previousKeyGenerations) {
    if (generation < 1 || generation > MAX_KEY_GENERATION)
      throw new StageConfigError(
        `invalid context: -c previousSecretsKeyGenerations: ${generation} is not a generation (1 to ${MAX_KEY_GENERATION})`,
      );
    if (seen.has(generation)) {
      throw new StageConfigError(
        `invalid context: -c previousSecretsKeyGenerations: ${generation} is ${generation === keyGeneration ? 'the current generation (-c secretsKeyGeneration)' : 'listed twice'}`,
      );
    }
    seen.add(generation);
  }
  const previousKeyArns =
    given.previousSecretsKeyArns === undefined
      ? base.previousKeyArns
      : parseKeyArns(given.previousSecretsKeyArns, 'previousSecretsKeyArns');
  return { keyGeneration, previousKeyGenerations, previousKeyArns };
}

/**
 * `arn,arn` as KMS key ARNs, each checked with the rule the functions apply when they read
 * them (an alias or a bare key id would deploy and then fail every cold start); no repeats.
 */
function parseKeyArns(list: string, key: string): string[] {
  const arns = list.split(',').map((arn) => arn.trim());
  const seen = new Set<string>();
  for (const arn of arns) {
    if (!KMS_KEY_ARN.test(arn)) {
      throw new StageConfigError(
        `invalid context: -c ${key}: "${arn.slice(0, 120)}" is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; not an alias)`,
      );
    }
    if (seen.has(arn)) throw new StageConfigError(`invalid context: -c ${key}: "${arn}" is listed twice`);
    seen.add(arn);
  }
  return arns;
}

/** `pool:min,...` as StagePools; refuses a name the API would refuse and two pools that would collide. */
function parsePools(list: string, key: string): StagePool[] {
  const seen = new Map<string, string>();
  return list.split(',').map((entry) => {
    const [pool = '', min = '', credits] = entry.split(':');
    if (!POOL_NAME_PATTERN.test(pool)) throw new StageConfigError(`invalid context: -c ${key}: bad pool "${pool}"`);
    const other = seen.get(poolSlot(pool));
    if (other !== undefined) {
      throw new StageConfigError(
        `invalid context: -c ${key}: pools "${other}" and "${pool}" differ only in case or in "_", "." and "-" (IAM policy names and alarm ids would collide)`,
      );
    }
    seen.set(poolSlot(pool), pool);
    return {
      pool,
      minUsableKeys: Number(min),
      ...(credits === undefined ? {} : { minUsableCredits: Number(credits) }),
    };
  });
}
