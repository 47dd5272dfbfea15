/**
 * Every Lambda entry point in functions/, what it may do to the table, and what it may do
 * with the sealed secrets (only the lease and maintenance open them; import and migration
 * only seal; every other path never reads the ciphertext). The table grants are the role's
 * entry in lib/table-access.ts (which items, which attributes), read off the code each
 * function runs (the use cases in lib/use-cases/ and the adapter methods they call in
 * lib/adapters/): adding a DynamoDB call or an attribute to a path means adding it there, on
 * purpose, and test/integration/table-access.test.ts fails until it is. Every use case that
 * names a pool reads the pool's record first (PoolDirectory.require: GetItem, cached ~10 s in
 * a warm process).
 */
import type { FunctionName } from '../lib/http/routes.js';
import { type RoleTableAccess, TABLE_ACCESS } from '../lib/table-access.js';
import type { SecretsAccess } from './secrets-key.js';

export type EntryName = FunctionName | 'maintain' | 'migrate' | 'proxy';

/** The table's grants of each entry point (test/unit/table-access.test.ts: one role per entry point, no other). */
const ACCESS: Record<EntryName, RoleTableAccess> = TABLE_ACCESS;

export interface EntryPoint {
  file: string;
  description: string;
  /** what it may do to the table's items and which indexes it queries; none: it never touches the table */
  table: RoleTableAccess;
  timeoutSeconds: number;
  memorySize: number;
  /** at most this many instances at once; absent: the account's unreserved pool */
  reservedConcurrency?: number;
  /** publishes Powertools metrics (namespace keypool) */
  metrics: boolean;
  /** what it does with sealed secrets on the secrets key: open them, seal new ones, or neither */
  secrets: SecretsAccess;
}

export const ENTRY_POINTS: Record<EntryName, EntryPoint> = {
  meta: {
    file: 'functions/meta.ts',
    description: 'keypool: GET /health, GET /openapi.json, and the 404/405 answer for every other request',
    table: ACCESS.meta,
    timeoutSeconds: 5,
    memorySize: 256,
    metrics: false,
    secrets: 'none',
  },
  pools: {
    file: 'functions/pools.ts',
    // PoolAdmin over DynamoPoolStore: get is a GetItem, set one UpdateItem (an upsert, no
    // read), list a Query of the pool directory on pool-keys, then BatchGetItem of the records.
    description: "keypool: GET /pools, PUT /pools/{pool}, GET /pools/{pool} (the operator's pool policies)",
    table: ACCESS.pools,
    timeoutSeconds: 10,
    memorySize: 512,
    metrics: false,
    secrets: 'none',
  },
  keys: {
    file: 'functions/keys.ts',
    // import: the pool ensured (UpdateItem), then a conditional PutItem per key;
    // PATCH: the pool record (GetItem), the key's record before a count reset (GetItem), one
    // conditional UpdateItem; DELETE of a key: one conditional UpdateItem (retire); DELETE of a
    // pool: its keys' pages (Query on pool-keys, BatchGetItem), a retire each, the pool record's
    // conditional DeleteItem.
    description:
      'keypool: POST /pools/{pool}/keys (import), PATCH and DELETE /pools/{pool}/keys/{keyId} (status, count reset, retire), DELETE /pools/{pool}',
    table: ACCESS.keys,
    timeoutSeconds: 29,
    memorySize: 512,
    metrics: false,
    // import seals each new key; PATCH never reads the secret
    secrets: 'encrypt',
  },
  list: {
    file: 'functions/list.ts',
    // the pool record (GetItem), a page of ids from pool-keys (Query), the items (BatchGetItem)
    description: "keypool: GET /pools/{pool}/keys, one page of the pool's keys, secrets masked (read only)",
    table: ACCESS.list,
    timeoutSeconds: 29,
    memorySize: 512,
    metrics: false,
    // masked keys only: the ciphertext attribute is never read
    secrets: 'none',
  },
  lease: {
    file: 'functions/lease.ts',
    // the pool record (GetItem, cached); candidates: Query on usage-count; the lease itself:
    // conditional UpdateItem; with an Idempotency-Key, TransactWriteItems of that update and a
    // conditional Put of the record (IAM authorizes each item's UpdateItem / PutItem), then
    // GetItem of the record or the key on a replay; a refusal, at most once a minute per pool:
    // the pool's key states (Query on pool-keys, BatchGetItem projected)
    description: "keypool: POST /pools/{pool}/leases (least recently used key under the pool's cap)",
    table: ACCESS.lease,
    timeoutSeconds: 10,
    memorySize: 512,
    metrics: true,
    // opens the secret of the key it hands out (a warm container answers repeats from memory)
    secrets: 'decrypt',
  },
  counting: {
    file: 'functions/counting.ts',
    // the pool record (GetItem, cached); complete: one conditional UpdateItem; usage: a
    // TransactWriteItems of one conditional update (IAM authorizes its UpdateItem; its token
    // makes a retry count once), then GetItem of the count, projected
    description: 'keypool: POST /pools/{pool}/leases/{leaseId}/complete and POST /pools/{pool}/keys/{keyId}/usage',
    table: ACCESS.counting,
    timeoutSeconds: 10,
    memorySize: 512,
    metrics: true,
    secrets: 'none',
  },
  maintain: {
    file: 'functions/maintain.ts',
    // the pool directory and each pool's keys: Query on pool-keys, then BatchGetItem of the
    // items (secrets included, to ask the provider for each balance); conditional UpdateItem
    // per change. No Scan: it reads the pools, not the table. A pool whose shard count changed
    // (lib/use-cases/reshard.ts): GetItem of its record, a conditional UpdateItem per key moved
    // (GetItem of a key whose placement changed meanwhile) and one of the record at the end.
    description:
      'keypool: scheduled maintenance (provider balances, suspect keys, key statuses, shard moves, pool metrics)',
    table: ACCESS.maintain,
    timeoutSeconds: 900,
    memorySize: 512,
    // One run at a time: two would double the balance requests the provider sees.
    reservedConcurrency: 1,
    metrics: true,
    // opens each key's secret to ask the provider for its balance
    secrets: 'decrypt',
  },
  proxy: {
    file: 'functions/proxy.ts',
    // the lease's requests (pool record, candidates on usage-count, the conditional UpdateItem
    // that takes the use) and, for a use the provider's answer gives back, one conditional
    // UpdateItem; the proxy's idempotency records and job pins. Served by the proxy REST API
    // (infra/constructs/proxy-api.ts), not the HTTP API: it streams its answer.
    description:
      "keypool: POST and GET /pools/{pool}/proxy/{path+} (proxy mode: calls the pool's provider with a key of the pool, streams its answer)",
    table: ACCESS.proxy,
    // Lambda's maximum, and API Gateway's for a streamed integration: a provider call may take
    // a pool's proxyTimeoutSeconds (at most 600 s), and the lease before it and the answer's
    // last bytes (kept for an Idempotency-Key replay) after it take the rest.
    timeoutSeconds: 900,
    // Lambda's network bandwidth grows with memory; the request body (up to 4 MiB, base64 in
    // the event) is held once for a failover.
    memorySize: 1024,
    metrics: true,
    // opens the secret of the key it calls the provider with
    secrets: 'decrypt',
  },
  migrate: {
    file: 'functions/migrate.ts',
    // the target pool ensured (DynamoPoolStore.ensure: one UpdateItem);
    // lib/adapters/dynamo-migration-store.ts: BatchGetItem to read what exists, then
    // TransactWriteItems of conditional Put/Update (IAM authorizes each item's PutItem/UpdateItem).
    // The legacy source (S3 object or table Scan) is granted apart, only when configured.
    description: 'keypool: one-off migration from the legacy store (invoked by hand)',
    table: ACCESS.migrate,
    timeoutSeconds: 900,
    memorySize: 1024,
    metrics: false,
    // seals each migrated key; never opens one
    secrets: 'encrypt',
  },
};

export const ENTRY_NAMES = Object.keys(ENTRY_POINTS) as EntryName[];
