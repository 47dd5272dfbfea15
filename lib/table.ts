/**
 * The one definition of keypool's DynamoDB table. The CDK stack, the local stack, the
 * tests and the benchmarks all build the table from this module, so its keys and its index
 * are written once. The item's other attributes are the domain's names (lib/domain/types.ts);
 * the storage-only abbreviations (the lease slots `L`, `upk`, `usk`) are spelled only here and
 * in the DynamoDB adapters (lib/adapters/).
 *
 * One item per key:
 *   keyId (partition key)   stable id derived from the secret's SHA-256 fingerprint
 *   pool, apiKey, maskedKey, label, usageCount, status, createdAt, lastUsedAt, cooldownUntil,
 *   credits, creditsCheckedAt (a key whose account is not known yet: its own balance), account
 *   apk    the key's account partition `<pool>#<account>` (accountPartition), present only once
 *          its account is known: the account-keys index is sparse, and it changes only when
 *          an account is set, so a lease never writes it
 *   L      map of lease slots (see lib/domain/lease-id.ts and docs/leasing.md)
 *   upk    the key's usage partition (usagePartition: the pool for shard 0, `<pool>#<shard>`
 *          for the others), present only while the key is leasable (active or cooling): the
 *          usage-count index is sparse, so disabled and exhausted keys cost no reads
 *   ush    the key's home: the usage partition it belongs in under its pool's shard count,
 *          kept while the key is out of the index too; absent means shard 0 (the pool), so
 *          items of unsharded pools (and every item from before sharding) have none. Every
 *          write that puts a key back into the index copies it (`upk = if_not_exists(ush,
 *          pool)`), and only a reshard changes it (lib/use-cases/reshard.ts)
 *   usk    usage sort key, a number: usageCount * USAGE_TIER + LRU stamp (ms since
 *          STAMP_EPOCH_MS). Ordered by count first, then least recently used.
 *
 * One item per pool: keyId `pool#<name>`, name, the policy (maxUses, leaseTtlSeconds,
 * cooldownSeconds, provider, minCredits, shards; previousShards and shardsChangedAt while a
 * reshard is pending), createdAt, updatedAt, and pool = POOL_DIRECTORY.
 *
 * One item per lease granted under an Idempotency-Key while it may be replayed: keyId
 * `idem#<digest>`, leasedKeyId, leasePool, leaseCount, leaseId, requestHash, callerDigest,
 * expiresAtMs, and the TTL attribute `ttl` (never the secret; in no index).
 *
 * One item per caller, pool and minute that made a negative report or a lease-less count:
 * keyId `budget#<pool>#<caller digest>#<minute>`, `reports` (how many), `ttl` (in no index;
 * lib/domain/report-budget.ts).
 *
 * One item per account of a pool (lib/domain/accounts.ts): keyId `acct#<pool>#<account>`,
 * pool = accountDirectory(pool) (`#accounts#<pool>`: under the pool-keys index, so a pool's
 * accounts list in order, and never among the pool's keys), account, accountPool, credits,
 * creditsCheckedAt, status, statusBy, statusReason, statusAt, cooldownUntil (never a secret).
 *
 * One item per maintenance run, kept 30 days: keyId `run#<startedAt>#<random>`, pool =
 * MAINTENANCE_RUNS, startedAt, finishedAt, scope (the pool it was limited to), checked, changed,
 * errors, firstErrors, and the TTL attribute `ttl` (never a secret).
 *
 * One item per proxied request under an Idempotency-Key while it may be replayed: keyId
 * `pxy#<digest>`, proxyPool, requestHash, callerDigest, state (in_progress from its begin on;
 * done only when a takeover found the answer of a first request that died), leaseUntilMs,
 * answerRef (where the 2xx answer is or will be kept: drawn at the begin, so a success writes
 * the item once), expiresAtMs, and `ttl` (24 h; never the key, never the body; in no index).
 *
 * One item per async job a proxied call started: keyId `job#<pool>#<digest of the job id>`,
 * pinnedKeyId, expiresAtMs, `ttl` (24 h; in no index).
 *
 * None of these records carries `pool`, `upk` or `usk`: they sit in no index, so no reader of
 * keys (a lease, a page of a pool, maintenance, a dry-pool count) can meet one, and every read
 * of a key item also checks the `k_` prefix.
 *
 * Three indexes:
 *   usage-count  (upk, usk), INCLUDE usageCount, cooldownUntil: the lease query
 *   pool-keys    (pool, keyId), KEYS_ONLY: a pool's keys in id order, and under
 *                POOL_DIRECTORY every pool, under MAINTENANCE_RUNS every run in time
 *                order. A lease changes neither key nor projection, so
 *                it never writes this index; listing reads the page, not the table.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export const DEFAULT_TABLE_NAME = 'keypool';

export const TABLE = {
  partitionKey: 'keyId',
  usageIndex: {
    name: 'usage-count',
    partitionKey: 'upk',
    sortKey: 'usk',
    /** The key's home partition (not an index key: what the partition key is set to when the key re-enters the index). */
    home: 'ush',
    /** Attributes the lease query reads besides the keys; they change only with the sort key or the status. */
    projected: ['usageCount', 'cooldownUntil'],
  },
  poolIndex: {
    name: 'pool-keys',
    partitionKey: 'pool',
    sortKey: 'keyId',
  },
  accountIndex: {
    name: 'account-keys',
    partitionKey: 'apk',
    sortKey: 'keyId',
  },
} as const;

/** A key's partition key is this prefix and 24 hex digits of its fingerprint (lib/domain/keys.ts keyIdFor). */
export const KEY_PREFIX = 'k_';
/** A pool record's partition key is this prefix and the pool's name (names never hold "#"). */
export const POOL_RECORD_PREFIX = 'pool#';
/** The pool-keys partition under which every pool record sits (no pool is named so). */
export const POOL_DIRECTORY = '#pools';
/** A maintenance run record's partition key is this prefix, its start (ISO 8601) and a random suffix. */
export const MAINTENANCE_RUN_PREFIX = 'run#';
/** The pool-keys partition under which every maintenance run record sits, in start order (no pool is named so). */
export const MAINTENANCE_RUNS = '#runs';
/** An account record's partition key is this prefix, the pool and the account: `acct#<pool>#<account>`. */
export const ACCOUNT_PREFIX = 'acct#';
/** The pool-keys partition of a pool's account records: `#accounts#<pool>` (no pool is named so). */
export function accountDirectory(pool: string): string {
  return `#accounts#${pool}`;
}
/** An account record's partition key. */
export function accountRecordId(pool: string, account: string): string {
  return `${ACCOUNT_PREFIX}${pool}#${account}`;
}
/** What an account record holds besides the table's keys (never a secret). */
export const ACCOUNT_RECORD_ATTRIBUTES = [
  'account',
  'accountPool',
  'credits',
  'creditsCheckedAt',
  'status',
  'statusBy',
  'statusReason',
  'statusAt',
  'cooldownUntil',
] as const;
/** The account-keys index partition of a pool's account (pool names never hold "#"). */
export function accountPartition(pool: string, account: string): string {
  return `${pool}#${account}`;
}
/** An idempotency record's partition key is this prefix and a digest (keys are `k_…`, pools `pool#…`). */
export const IDEMPOTENCY_PREFIX = 'idem#';
/** A proxied request's idempotency record: this prefix and idempotencyId(pool, Idempotency-Key) (lib/domain/idempotency.ts). */
export const PROXY_REQUEST_PREFIX = 'pxy#';
/** An async job's pin to its key: this prefix, the pool and a digest of the job id: `job#<pool>#<digest>`. */
export const JOB_PIN_PREFIX = 'job#';
/** The table's TTL attribute (epoch seconds): DynamoDB deletes expired idempotency records, report budgets and run records by it. */
export const TTL_ATTRIBUTE = 'ttl';
/** A report budget's partition key is this prefix, the pool, a caller digest and a window: `budget#<pool>#<caller>#<window>`. */
export const BUDGET_PREFIX = 'budget#';
/** A report budget's counter: the reports spent in its window. */
export const BUDGET_COUNT_ATTRIBUTE = 'reports';

/**
 * The usage-count index partition of a pool's shard: the bare pool name for shard 0 (so a pool
 * with one shard keeps the items it always had), `<pool>#<shard>` for the others. Pool names
 * never hold "#", so no two pools' partitions can meet.
 */
export function usagePartition(pool: string, shard: number): string {
  return shard === 0 ? pool : `${pool}#${shard}`;
}

/** The shard a usage partition value names in `pool`; undefined when it is not one of the pool's. */
export function partitionShard(pool: string, value: unknown): number | undefined {
  if (value === pool) return 0;
  if (typeof value !== 'string' || !value.startsWith(`${pool}#`)) return undefined;
  const digits = value.slice(pool.length + 1);
  return /^[1-9][0-9]{0,3}$/.test(digits) ? Number(digits) : undefined;
}

/** One usage-count tier in the sort key; the LRU stamp below it stays under this for ~31 years. */
export const USAGE_TIER = 1_000_000_000_000;
/** LRU stamps count milliseconds from 2024-01-01T00:00:00Z. */
export const STAMP_EPOCH_MS = Date.UTC(2024, 0, 1);
/**
 * The highest tier the sort key spells out. A lease reads only tiers up to a cap (at most
 * 1000), so counts above the highest cap + 1 need no order among themselves, and keeping the
 * sort key below 2^53 keeps it an exact JavaScript number (1001 tiers of 10^12 do; a count of
 * 9,008 would not). A count past this tier (lease-less increments, a reset, a migrated count)
 * sorts in this tier.
 */
export const MAX_SORTED_COUNT = 1001;

/** The tier a count sorts in. */
function tier(usageCount: number): number {
  return Math.min(Math.max(0, usageCount), MAX_SORTED_COUNT);
}

/**
 * The LRU stamp of a moment: ms since STAMP_EPOCH_MS, kept inside one tier. A moment before
 * the epoch reads as the epoch; one past the tier's ~31 years (a migrated row its old system
 * dated in 2200, a wrong clock) reads as the tier's last millisecond: the key sorts last among
 * its count's keys, never in a higher count's tier, where a lease under its cap would not look.
 */
function stamp(atMs: number): number {
  return Math.min(Math.max(0, atMs - STAMP_EPOCH_MS), USAGE_TIER - 1);
}

/** The usage sort key for a count and a moment: count first, then least recently used. */
export function usageSortKey(usageCount: number, atMs: number): number {
  return tier(usageCount) * USAGE_TIER + stamp(atMs);
}

/** How far the sort key moves when a count goes from `from` to `to` (whole tiers; the LRU stamp stays). */
export function usageSortKeyShift(from: number, to: number): number {
  return (tier(to) - tier(from)) * USAGE_TIER;
}

/** The exclusive upper bound of the sort key for keys whose count is <= maxUses. */
export function usageSortKeyBound(maxUses: number): number {
  return (maxUses + 1) * USAGE_TIER;
}

/** CreateTable input for the local stack and the tests (the CDK stack maps TABLE itself). */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const { partitionKey, usageIndex, poolIndex, accountIndex } = TABLE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' },
      { AttributeName: usageIndex.partitionKey, AttributeType: 'S' },
      { AttributeName: usageIndex.sortKey, AttributeType: 'N' },
      { AttributeName: poolIndex.partitionKey, AttributeType: 'S' },
      { AttributeName: accountIndex.partitionKey, AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: usageIndex.name,
        KeySchema: [
          { AttributeName: usageIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: usageIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...usageIndex.projected] },
      },
      {
        IndexName: poolIndex.name,
        KeySchema: [
          { AttributeName: poolIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: poolIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
      {
        IndexName: accountIndex.name,
        KeySchema: [
          { AttributeName: accountIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: accountIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}
