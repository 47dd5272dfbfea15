/**
 * Every Lambda entry point in functions/ and what it may do to the table. The grants are
 * read off the code each function runs (lib/adapters/dynamo-key-store.ts and the use cases
 * it calls): adding a DynamoDB call to a path means adding its action here, on purpose.
 */
import type { FunctionName } from '../lib/http/routes.js';
import type { DynamoAction } from './constructs/keypool-function.js';

export type EntryName = FunctionName | 'maintain' | 'migrate';

export interface EntryPoint {
  file: string;
  description: string;
  /** actions on the table's items; empty: the function never touches the table */
  table: readonly DynamoAction[];
  /** actions on the usage-count index (only where a Query runs) */
  index: readonly DynamoAction[];
  timeoutSeconds: number;
  memorySize: number;
  /** at most this many instances at once; absent: the account's unreserved pool */
  reservedConcurrency?: number;
  /** publishes Powertools metrics (namespace keypool) */
  metrics: boolean;
}

export const ENTRY_POINTS: Record<EntryName, EntryPoint> = {
  meta: {
    file: 'functions/meta.ts',
    description: 'keypool: GET /health, GET /openapi.json, and the 404/405 answer for every other request',
    table: [],
    index: [],
    timeoutSeconds: 5,
    memorySize: 256,
    metrics: false,
  },
  keys: {
    file: 'functions/keys.ts',
    // import: conditional PutItem per key; PATCH: conditional UpdateItem
    description: 'keypool: POST /keys (import) and PATCH /keys/{keyId} (enable/disable)',
    table: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
    index: [],
    timeoutSeconds: 29,
    memorySize: 512,
    metrics: false,
  },
  list: {
    file: 'functions/list.ts',
    description: 'keypool: GET /keys, secrets masked (read only)',
    table: ['dynamodb:Scan'],
    index: [],
    timeoutSeconds: 29,
    memorySize: 512,
    metrics: false,
  },
  lease: {
    file: 'functions/lease.ts',
    // candidates: Query on the usage-count index; the lease itself: conditional UpdateItem
    description: 'keypool: POST /leases (least recently used key under the cap)',
    table: ['dynamodb:UpdateItem'],
    index: ['dynamodb:Query'],
    timeoutSeconds: 10,
    memorySize: 512,
    metrics: true,
  },
  counting: {
    file: 'functions/counting.ts',
    // complete: conditional UpdateItem (GetItem for a late completion); usage: UpdateItem
    description: 'keypool: POST /leases/{leaseId}/complete and POST /keys/{keyId}/usage',
    table: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    index: [],
    timeoutSeconds: 10,
    memorySize: 512,
    metrics: false,
  },
  maintain: {
    file: 'functions/maintain.ts',
    // reads every key (Scan), secret included, to ask the provider for its balance; updates items
    description: 'keypool: scheduled maintenance (provider balances, key statuses, pool metrics)',
    table: ['dynamodb:Scan', 'dynamodb:UpdateItem'],
    index: [],
    timeoutSeconds: 900,
    memorySize: 512,
    // One run at a time: two would double the balance requests the provider sees.
    reservedConcurrency: 1,
    metrics: true,
  },
  migrate: {
    file: 'functions/migrate.ts',
    // lib/adapters/dynamo-migration-store.ts: BatchGetItem to read what exists, then
    // TransactWriteItems of conditional Put/Update (IAM authorizes each item's PutItem/UpdateItem).
    // The legacy source (S3 object or table Scan) is granted apart, only when configured.
    description: 'keypool: one-off migration from the legacy store (invoked by hand)',
    table: ['dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    index: [],
    timeoutSeconds: 900,
    memorySize: 1024,
    metrics: false,
  },
};

export const ENTRY_NAMES = Object.keys(ENTRY_POINTS) as EntryName[];
