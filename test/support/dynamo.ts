/** Test helpers: a fresh table per test file on the shared DynamoDB Local. */
import { randomBytes } from 'node:crypto';
import { type DynamoCalls, ScanCommand } from '../../lib/adapters/dynamo-wire.js';
import { inject } from 'vitest';
import { type CapacityMeter, DynamoKeyStore } from '../../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { DynamoAccountStore } from '../../lib/adapters/dynamo-account-store.js';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { Broker, type BrokerOptions } from '../../lib/use-cases/broker.js';
import type { PoolSettings } from '../../lib/domain/types.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { POOL_RECORD_PREFIX } from '../../lib/table.js';
import { testSealer, withOpenedSecrets } from './sealing.js';

export function dynamoEndpoint(): string {
  return inject('dynamoEndpoint');
}

/** A unique name, so test files sharing one DynamoDB Local never see each other's data. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A fake secret in the fixture format; never a real key. */
export function fakeKey(tag = ''): string {
  return `sk-test-${tag}${randomBytes(16).toString('hex')}`;
}

export interface TestTable {
  endpoint: string;
  tableName: string;
  store: DynamoKeyStore;
  pools: DynamoPoolStore;
  accounts: DynamoAccountStore;
  /** a broker over the table; it seals with the test run's key unless given a sealer */
  broker(
    options?: Omit<BrokerOptions, 'store' | 'poolStore' | 'sealer'> & Partial<Pick<BrokerOptions, 'sealer'>>,
  ): Broker;
}

export async function createTestTable(prefix = 'test', meter?: CapacityMeter): Promise<TestTable> {
  const endpoint = dynamoEndpoint();
  const tableName = uniqueName(prefix);
  await ensureTable(endpoint, tableName);
  const client = documentClient({ endpoint, region: undefined });
  const store = new DynamoKeyStore({ client, tableName, ...(meter ? { meter } : {}) });
  const pools = new DynamoPoolStore({ client, tableName, ...(meter ? { meter } : {}) });
  const accounts = new DynamoAccountStore({ client, tableName, ...(meter ? { meter } : {}) });
  return {
    endpoint,
    tableName,
    store,
    pools,
    accounts,
    broker: (options = {}) => new Broker({ sealer: testSealer(), accounts, ...options, store, poolStore: pools }),
  };
}

/**
 * Every key item of a table (consistent reads, all pages), sorted by key id: for comparing
 * whole tables. Pool records are left out: their timestamps are when a run created them.
 */
export async function scanTable(client: DynamoCalls, tableName: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items
    .filter((item) => !String(item.keyId).startsWith(POOL_RECORD_PREFIX))
    .sort((a, b) => String(a.keyId).localeCompare(String(b.keyId)));
}

/**
 * Every key item of a table, sorted by key id, each sealed secret opened into `apiKey`: for
 * comparing what two runs stored although their ciphertexts differ. Throws on a plain `apiKey`.
 */
export async function scanOpened(client: DynamoCalls, tableName: string): Promise<Record<string, unknown>[]> {
  return withOpenedSecrets(await scanTable(client, tableName));
}

/** Creates `pool` (with `settings`, else the defaults) in `table` and imports `count` fake keys; answers their ids in import order. */
export async function seedPool(
  table: TestTable,
  pool: string,
  count: number,
  settings: Partial<PoolSettings> = {},
): Promise<string[]> {
  const broker = table.broker();
  await broker.setPool(pool, settings);
  const result = await broker.importKeys(
    pool,
    Array.from({ length: count }, (_, i) => ({ apiKey: fakeKey(`${i}-`) })),
  );
  return result.keys.map((k) => k.keyId);
}
