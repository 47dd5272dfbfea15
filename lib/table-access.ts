/**
 * What each of keypool's functions may do to the table, item by item: the one definition the
 * CDK app grants from (infra/table-grants.ts turns each grant into one IAM statement) and the
 * tests check every DynamoDB request of every function against
 * (test/integration/table-access.test.ts).
 *
 * A grant names actions, the kinds of item they reach (by the prefix of the partition key:
 * IAM's `dynamodb:LeadingKeys`) and, where it narrows anything, the attributes a request may
 * name (IAM's `dynamodb:Attributes`: written, read, or only tested in a condition; IAM cannot
 * tell these apart). `narrow` adds that a read must name its attributes (a projection: no whole
 * item, so no secret) and a write may return only what it wrote. What IAM enforces and what it
 * cannot: docs/security.md#what-each-role-can-do.
 *
 * Changing it:
 *  - a new attribute of a key: into the group that says who writes it (KEY_ATTRIBUTES): every
 *    grant that names the group allows it, and every narrow read sees it (a status field goes
 *    into `status`, and the lease, counting, keys, maintenance and migration roles may write it);
 *  - a new kind of item: its prefix in ITEM_PREFIX, its attributes beside the others, and a
 *    grant in each role that reads or writes it;
 *  - a request no grant allows fails the test that runs the role's use cases, naming the action,
 *    the items and the attributes it is missing.
 */
import { POOL_DEFAULTS } from './domain/types.js';
import {
  ACCOUNT_PREFIX,
  ACCOUNT_RECORD_ATTRIBUTES,
  BUDGET_COUNT_ATTRIBUTE,
  BUDGET_PREFIX,
  IDEMPOTENCY_PREFIX,
  KEY_PREFIX,
  JOB_PIN_PREFIX,
  MAINTENANCE_RUN_PREFIX,
  POOL_RECORD_PREFIX,
  PROXY_REQUEST_PREFIX,
  TABLE,
  TTL_ATTRIBUTE,
} from './table.js';

/** The kinds of item in the table, by the prefix of their partition key (lib/table.ts). */
export const ITEM_PREFIX = {
  key: KEY_PREFIX,
  pool: POOL_RECORD_PREFIX,
  idempotency: IDEMPOTENCY_PREFIX,
  /** a caller's report budget in one pool for one minute: a counter (DynamoReportBudget) */
  budget: BUDGET_PREFIX,
  run: MAINTENANCE_RUN_PREFIX,
  /** an account of a pool: its balance and status (lib/domain/accounts.ts) */
  account: ACCOUNT_PREFIX,
  /** a proxied request under an Idempotency-Key (DynamoProxyIdempotency) */
  proxyRequest: PROXY_REQUEST_PREFIX,
  /** an async job's pin to the key that started it (DynamoJobPins) */
  jobPin: JOB_PIN_PREFIX,
} as const;
export type ItemKind = keyof typeof ITEM_PREFIX;

/**
 * The keys of the table and of its indexes. IAM needs them in every attribute list ("you must
 * specify the names of all of the primary key and index key attributes", DynamoDB Developer
 * Guide, "Using IAM policy conditions for fine-grained access control"), so every role that
 * names attributes may also name these.
 */
export const TABLE_KEY_ATTRIBUTES = [
  TABLE.partitionKey,
  TABLE.poolIndex.partitionKey,
  TABLE.usageIndex.partitionKey,
  TABLE.usageIndex.sortKey,
  TABLE.accountIndex.partitionKey,
] as const;

/** A key item's attributes (besides TABLE_KEY_ATTRIBUTES), grouped by who writes them. */
export const KEY_ATTRIBUTES = {
  /** written once, when the key is imported or migrated */
  identity: ['label', 'maskedKey', 'createdAt'],
  /** its count, its last use and its lease slots: leases, completions, counts, a reset */
  usage: ['usageCount', 'lastUsedAt', 'L'],
  /**
   * its status and what goes with it (lib/adapters/key-item.ts STATUS_ATTRIBUTES): who set it,
   * why, when, until when, and the status an undecryptable mark keeps; everyone who may change
   * a status
   */
  status: ['status', 'statusBy', 'statusReason', 'statusAt', 'cooldownUntil', 'prior'],
  /** its home shard: whoever puts a key back into its pool, and a reshard */
  home: [TABLE.usageIndex.home],
  /** the provider's balance: maintenance */
  balance: ['credits', 'creditsCheckedAt'],
  /** the sealed secret: written by import and migration, tested by the lease and maintenance */
  sealed: ['sealedKey'],
  /** the account it belongs to: import, an operator's PATCH, maintenance's discovery */
  account: ['account'],
  /** what the old system's rows said of it (lib/adapters/key-item.ts MIGRATION_ATTRIBUTES): the migration */
  migration: ['migratedCount', 'migratedDisabled'],
} as const;

/**
 * Everything a key item holds but its secret (sealed or, from before sealing, plain): what a
 * narrow read may ask for.
 */
export const KEY_RECORD_ATTRIBUTES = [
  ...KEY_ATTRIBUTES.identity,
  ...KEY_ATTRIBUTES.usage,
  ...KEY_ATTRIBUTES.status,
  ...KEY_ATTRIBUTES.home,
  ...KEY_ATTRIBUTES.balance,
  ...KEY_ATTRIBUTES.account,
] as const;

/**
 * A pool record's attributes (besides TABLE_KEY_ATTRIBUTES): its name, every setting of its
 * policy (a new setting in POOL_DEFAULTS is granted with it), its reshard.
 */
export const POOL_ATTRIBUTES = [
  'name',
  'createdAt',
  'updatedAt',
  ...Object.keys(POOL_DEFAULTS),
  'previousShards',
  'shardsChangedAt',
] as const;

/** An idempotency record's attributes (besides TABLE_KEY_ATTRIBUTES): the lease it stands for. */
export const IDEMPOTENCY_ATTRIBUTES = [
  'leasedKeyId',
  'leasePool',
  'leaseCount',
  'leaseId',
  'requestHash',
  'callerDigest',
  'expiresAtMs',
  TTL_ATTRIBUTE,
] as const;

/** A proxied request's idempotency record's attributes (besides TABLE_KEY_ATTRIBUTES): never the key, never the body. */
export const PROXY_REQUEST_ATTRIBUTES = [
  'proxyPool',
  'requestHash',
  'callerDigest',
  'state',
  'leaseUntilMs',
  'answerRef',
  'expiresAtMs',
  TTL_ATTRIBUTE,
] as const;

/** A job pin's attributes (besides TABLE_KEY_ATTRIBUTES): the key that started the job, its expiry. */
export const JOB_PIN_ATTRIBUTES = ['pinnedKeyId', 'expiresAtMs', TTL_ATTRIBUTE] as const;

/** A maintenance run record's attributes (besides TABLE_KEY_ATTRIBUTES): what the run did, and its expiry. */
export const MAINTENANCE_RUN_ATTRIBUTES = [
  'startedAt',
  'finishedAt',
  'scope',
  'checked',
  'changed',
  'errors',
  'firstErrors',
  TTL_ATTRIBUTE,
] as const;

/** A report budget's attributes (besides TABLE_KEY_ATTRIBUTES): the count of reports, its expiry. */
export const BUDGET_ATTRIBUTES = [BUDGET_COUNT_ATTRIBUTE, TTL_ATTRIBUTE] as const;

/** The item actions a grant may name (Query runs on an index: RoleTableAccess.queries). */
export type ItemAction = 'GetItem' | 'BatchGetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';
export const READ_ACTIONS: readonly ItemAction[] = ['GetItem', 'BatchGetItem'];

/** The table's indexes by name. */
export type IndexName = typeof TABLE.usageIndex.name | typeof TABLE.poolIndex.name | typeof TABLE.accountIndex.name;

export interface ItemGrant {
  actions: readonly ItemAction[];
  /** the kinds of item the actions reach */
  items: readonly ItemKind[];
  /** the attributes a request may name, besides TABLE_KEY_ATTRIBUTES; absent: any (whole items) */
  attributes?: readonly string[];
  /**
   * reads must project (name their attributes: never the whole item, so never a secret), and
   * writes may return only the attributes they wrote (never the item as it was or is)
   */
  narrow?: true;
}

export interface RoleTableAccess {
  items: readonly ItemGrant[];
  /** the indexes the role queries, each granted Query on that index alone */
  queries: readonly IndexName[];
}

/** The roles of keypool's functions (infra/entry-points.ts: one per file in functions/). */
export type TableRole = 'meta' | 'pools' | 'keys' | 'list' | 'lease' | 'counting' | 'maintain' | 'migrate' | 'proxy';

const { identity, usage, status, home, balance, sealed, account, migration } = KEY_ATTRIBUTES;

/** Reads of account records (never a secret in them). */
const READS_ACCOUNTS: ItemGrant = {
  actions: ['GetItem', 'BatchGetItem'],
  items: ['account'],
  attributes: ACCOUNT_RECORD_ATTRIBUTES,
  narrow: true,
};
/** Writes of account records: their status and balance. */
const WRITES_ACCOUNTS: ItemGrant = {
  actions: ['UpdateItem'],
  items: ['account'],
  attributes: ACCOUNT_RECORD_ATTRIBUTES,
  narrow: true,
};

/** Every function that names a pool reads its record (PoolDirectory.require: one GetItem, cached). */
const READS_POOL_RECORDS: ItemGrant = { actions: ['GetItem'], items: ['pool'] };
/** Import and migration create a pool with its defaults (DynamoPoolStore.ensure: one UpdateItem). */
const ENSURES_POOLS: ItemGrant = { actions: ['UpdateItem'], items: ['pool'], attributes: POOL_ATTRIBUTES };
/** A new key's item (lib/adapters/key-item.ts toKeyItem), sealed: never a plain `apiKey`. */
const NEW_KEY_ITEMS = {
  actions: ['PutItem'],
  items: ['key'],
  attributes: [...identity, ...usage, ...status, ...home, ...sealed, ...account],
} as const satisfies ItemGrant;

/**
 * What proxy mode's own records need, for the role of the function that proxies (beside the
 * lease path's grants): its idempotency records put, renewed, finished and dropped (whole items:
 * they hold no secret), and job pins put and read. No query: neither kind is in an index.
 */
export const PROXY_STORE_GRANTS: readonly ItemGrant[] = [
  { actions: ['PutItem', 'UpdateItem', 'DeleteItem'], items: ['proxyRequest'], attributes: PROXY_REQUEST_ATTRIBUTES },
  { actions: ['PutItem', 'GetItem'], items: ['jobPin'], attributes: JOB_PIN_ATTRIBUTES },
];

export const TABLE_ACCESS: Record<TableRole, RoleTableAccess> = {
  // GET /health, GET /openapi.json and the 404/405 answers: no table at all.
  meta: { items: [], queries: [] },
  // The operator's pool policies: pool records only, read and written whole (no secret in them).
  pools: {
    items: [
      { actions: ['GetItem', 'BatchGetItem'], items: ['pool'] },
      { actions: ['UpdateItem'], items: ['pool'], attributes: POOL_ATTRIBUTES },
    ],
    queries: [TABLE.poolIndex.name],
  },
  // Import (a sealed new key, its pool ensured; a retired key revived), PATCH (status, count
  // reset) and the retirements (DELETE of a key or a pool): it never reads a secret back,
  // neither by a read nor by a write's answer.
  keys: {
    items: [
      READS_POOL_RECORDS,
      ENSURES_POOLS,
      NEW_KEY_ITEMS,
      // A key's record (before a count reset), and a pool's pages when it is deleted.
      { actions: ['GetItem', 'BatchGetItem'], items: ['key'], attributes: KEY_RECORD_ATTRIBUTES, narrow: true },
      // Status, count and account changes; a retirement (its ciphertext removed) and a revival
      // (sealed anew, back at its home, its label given again).
      {
        actions: ['UpdateItem'],
        items: ['key'],
        attributes: ['label', ...usage, ...status, ...home, ...sealed, ...account],
        narrow: true,
      },
      // An import into an account: its record created, its state read for the new keys.
      READS_ACCOUNTS,
      WRITES_ACCOUNTS,
      // DELETE /pools/{pool}: the pool's record, once its keys are retired.
      { actions: ['DeleteItem'], items: ['pool'] },
    ],
    queries: [TABLE.poolIndex.name],
  },
  // A page of a pool's keys: read only, never a secret.
  list: {
    items: [
      READS_POOL_RECORDS,
      { actions: ['BatchGetItem'], items: ['key'], attributes: KEY_RECORD_ATTRIBUTES, narrow: true },
      // The balances of the page's accounts; a pool's accounts and each one's keys.
      READS_ACCOUNTS,
    ],
    queries: [TABLE.poolIndex.name, TABLE.accountIndex.name],
  },
  // The lease: reads keys whole (it hands the secret out) and its idempotency records; writes a
  // key's count, slot and status (and tests its ciphertext), and puts only idempotency records.
  lease: {
    items: [
      { actions: ['GetItem'], items: ['pool', 'key', 'idempotency'] },
      { actions: ['UpdateItem'], items: ['key'], attributes: [...usage, ...status, ...sealed] },
      { actions: ['PutItem', 'UpdateItem'], items: ['idempotency'], attributes: IDEMPOTENCY_ATTRIBUTES },
      // A refusal's count of its pool (at most once a minute per pool): the keys' states, never a secret.
      { actions: ['BatchGetItem'], items: ['key'], attributes: KEY_RECORD_ATTRIBUTES, narrow: true },
    ],
    queries: [TABLE.usageIndex.name, TABLE.poolIndex.name],
  },
  // Completions and lease-less counts: a key's count, slot and status, never its secret; and
  // the caller's report budget, one counter per pool, caller and minute.
  counting: {
    items: [
      READS_POOL_RECORDS,
      { actions: ['GetItem'], items: ['key'], attributes: KEY_RECORD_ATTRIBUTES, narrow: true },
      { actions: ['UpdateItem'], items: ['key'], attributes: [...usage, ...status], narrow: true },
      { actions: ['UpdateItem'], items: ['budget'], attributes: BUDGET_ATTRIBUTES, narrow: true },
      // A report about a key's account: put on the account's record (and, above, on its keys).
      WRITES_ACCOUNTS,
    ],
    queries: [TABLE.accountIndex.name],
  },
  // Maintenance reads keys whole (it asks the provider with each secret) and writes statuses,
  // balances and homes, never a count or a slot; a reshard ends on the pool record; each run
  // puts its own record (new items only: it never reads or changes another run's).
  maintain: {
    items: [
      { actions: ['GetItem', 'BatchGetItem'], items: ['pool', 'key'] },
      { actions: ['UpdateItem'], items: ['key'], attributes: [...status, ...home, ...balance, ...sealed, ...account] },
      // Each account's balance and status.
      READS_ACCOUNTS,
      WRITES_ACCOUNTS,
      { actions: ['UpdateItem'], items: ['pool'], attributes: POOL_ATTRIBUTES },
      { actions: ['PutItem'], items: ['run'], attributes: MAINTENANCE_RUN_ATTRIBUTES },
    ],
    queries: [TABLE.poolIndex.name],
  },
  // The one-off migration: sealed new keys, raises and disables of existing ones (whose refusal
  // returns the item, so not narrow), its pool ensured.
  migrate: {
    items: [
      ENSURES_POOLS,
      { ...NEW_KEY_ITEMS, attributes: [...NEW_KEY_ITEMS.attributes, ...migration] },
      {
        actions: ['BatchGetItem'],
        items: ['key'],
        attributes: [...KEY_RECORD_ATTRIBUTES, ...migration],
        narrow: true,
      },
      { actions: ['UpdateItem'], items: ['key'], attributes: [...usage, ...status, ...migration] },
    ],
    queries: [],
  },
  // Proxy mode: the lease path's reads and writes for a use it takes itself (Leasing.takeUse:
  // the key read whole and written in the lease write, its secret opened to call the provider;
  // settleUse's one refund and its account's states; openKey's read for a poll; a refusal's
  // count of its pool), never
  // the leases' idempotency records; and its own records (PROXY_STORE_GRANTS).
  proxy: {
    items: [
      { actions: ['GetItem'], items: ['pool', 'key'] },
      { actions: ['UpdateItem'], items: ['key'], attributes: [...usage, ...status, ...sealed] },
      { actions: ['BatchGetItem'], items: ['key'], attributes: KEY_RECORD_ATTRIBUTES, narrow: true },
      // A provider's 402 (or a 429 where rate limits are the account's) put on the account's
      // other keys and its record, as a completion's report is.
      WRITES_ACCOUNTS,
      ...PROXY_STORE_GRANTS,
    ],
    queries: [TABLE.usageIndex.name, TABLE.poolIndex.name, TABLE.accountIndex.name],
  },
};

/** The item actions a role is granted, each once, sorted. */
export function itemActions(access: RoleTableAccess): ItemAction[] {
  return [...new Set(access.items.flatMap((grant) => grant.actions))].sort();
}
