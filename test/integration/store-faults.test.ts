/**
 * What a lease does when DynamoDB conflicts or throttles (the fault proxy plays DynamoDB's part;
 * DynamoDB Local does neither): a conflict is retried, never read as "this key is gone", so a
 * pool with a usable key is never answered 409 no_usable_key for it; throttling that outlasts the
 * retries is StoreThrottled (503 store_throttled at the edge), not an internal error.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DynamoKeyStore } from '../../lib/adapters/dynamo-key-store.js';
import { DynamoAccountStore } from '../../lib/adapters/dynamo-account-store.js';
import { DynamoLeaseStore } from '../../lib/adapters/dynamo-lease-store.js';
import { DynamoProxyIdempotency } from '../../lib/adapters/dynamo-proxy-idempotency.js';
import type { ProviderAnswer, ResponseSink } from '../../lib/ports/proxy.js';
import { Proxy } from '../../lib/use-cases/proxy.js';
import { MemoryAnswerStore } from '../support/memory-proxy-stores.js';
import { proxyCall, setup } from '../support/memory-world.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { Broker } from '../../lib/use-cases/broker.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { testSealer } from '../support/sealing.js';
import { seedKeys } from '../support/seed.js';

let table: TestTable;
let proxy: FaultProxy;
/** a broker whose every DynamoDB request goes through the proxy */
let broker: Broker;
/** a broker that keeps accounts, its every request through the proxy */
let accountsBroker: Broker;
/** the lease path's store, its every request through the proxy */
let leaseStore: DynamoLeaseStore;
/** proxied requests' records, their every request through the proxy */
let proxyRecords: DynamoProxyIdempotency;

/** A pool of `count` fresh keys, written straight to DynamoDB Local (no faults). */
async function poolOf(count: number): Promise<{ pool: string; keyIds: string[] }> {
  const pool = uniqueName('faults');
  const keyIds = await seedKeys({
    client: table.store.client,
    tableName: table.tableName,
    pool,
    count,
    sealer: testSealer(),
  });
  return { pool, keyIds };
}

/** The key's stored count, read straight from DynamoDB Local. */
async function countOf(keyId: string): Promise<number | undefined> {
  return (await table.store.get(keyId))?.usageCount;
}

const STORE_THROTTLED = { name: 'StoreThrottled', code: 'store_throttled' };

beforeAll(async () => {
  table = await createTestTable('store-faults');
  proxy = await startFaultProxy({ target: table.endpoint, seed: 20 });
  const client = documentClient({ endpoint: proxy.endpoint, region: undefined });
  broker = new Broker({
    store: new DynamoKeyStore({ client, tableName: table.tableName }),
    poolStore: new DynamoPoolStore({ client, tableName: table.tableName }),
    sealer: testSealer(),
  });
  leaseStore = new DynamoLeaseStore({ client, tableName: table.tableName });
  accountsBroker = new Broker({
    store: new DynamoKeyStore({ client, tableName: table.tableName }),
    poolStore: new DynamoPoolStore({ client, tableName: table.tableName }),
    sealer: testSealer(),
    accounts: new DynamoAccountStore({ client, tableName: table.tableName }),
  });
  proxyRecords = new DynamoProxyIdempotency({ client, tableName: table.tableName });
});

afterEach(() => {
  proxy.setRates({});
});

afterAll(async () => {
  await proxy.close();
});

describe('a lease that meets a conflict', () => {
  it('with an Idempotency-Key, whose transaction is cancelled for a TransactionConflict, is retried and granted, never refused as a dry pool', async () => {
    // Prepare: one usable key, and its next two lease transactions conflict
    const { pool, keyIds } = await poolOf(1);
    proxy.inject('transactionConflict', { operation: 'TransactWriteItems', times: 2 });
    // Act
    const grant = await broker.lease(pool, {}, 'conflicted-retry-1');
    // Assess
    expect(grant.keyId).toBe(keyIds[0]);
    expect(await countOf(keyIds[0] as string)).toBe(1);
  });

  it('without one, whose write meets TransactionConflictException, is retried and granted', async () => {
    // Prepare
    const { pool, keyIds } = await poolOf(1);
    proxy.inject('transactionConflict', { operation: 'UpdateItem', times: 2 });
    // Act
    const grant = await broker.lease(pool);
    // Assess
    expect(grant.keyId).toBe(keyIds[0]);
    expect(await countOf(keyIds[0] as string)).toBe(1);
  });

  it('that outlast the bounded retries answers StoreThrottled, never NoUsableKey, and counts nothing', async () => {
    // Prepare: every write conflicts
    const { pool, keyIds } = await poolOf(2);
    proxy.setRates({ transactionConflict: 1 });
    // Act
    const answers = await Promise.allSettled([broker.lease(pool, {}, 'conflicted-always-1'), broker.lease(pool)]);
    // Assess
    for (const answer of answers) {
      expect(answer.status).toBe('rejected');
      expect(answer.status === 'rejected' ? answer.reason : undefined).toMatchObject(STORE_THROTTLED);
    }
    for (const keyId of keyIds) expect(await countOf(keyId)).toBe(0);
  });
});

describe('a throttled lease', () => {
  it('whose transaction is cancelled for throttling is retried, and answers StoreThrottled (not NoUsableKey) when that lasts', async () => {
    // Prepare
    const { pool, keyIds } = await poolOf(1);
    // Act: once, then on every try
    proxy.inject('transactionThrottled', { operation: 'TransactWriteItems' });
    const grant = await broker.lease(pool, {}, 'throttled-once-1');
    proxy.setRates({ transactionThrottled: 1 });
    const refused = broker.lease(pool, {}, 'throttled-always-1');
    // Assess
    expect(grant.keyId).toBe(keyIds[0]);
    await expect(refused).rejects.toMatchObject(STORE_THROTTLED);
    expect(await countOf(keyIds[0] as string)).toBe(1);
  });

  it.each([
    ['provisionedThroughputExceeded', 'Query'],
    ['throttling', 'UpdateItem'],
  ] as const)(
    'answers StoreThrottled when %s on its %s outlasts the SDK retries, and counts nothing',
    async (kind, operation) => {
      // Prepare: one more throttle than the client's three attempts
      const { pool, keyIds } = await poolOf(1);
      proxy.inject(kind, { operation, times: 3 });
      // Act
      const refused = broker.lease(pool);
      // Assess
      await expect(refused).rejects.toMatchObject(STORE_THROTTLED);
      expect(await countOf(keyIds[0] as string)).toBe(0);
    },
  );
});

describe('a lease-less count whose answer is lost', () => {
  it('is counted once, though the SDK sends the write again', async () => {
    // Prepare: the count's write (its first request) applies, and its answer never comes back
    const { pool, keyIds } = await poolOf(1);
    const keyId = keyIds[0] as string;
    const lostBefore = proxy.counts().faults.lostAnswer;
    proxy.inject('lostAnswer');
    // Act
    const counted = await leaseStore.increment(pool, keyId, Date.now());
    // Assess
    expect(proxy.counts().faults.lostAnswer).toBe(lostBefore + 1);
    expect(await countOf(keyId)).toBe(1);
    expect(counted).toEqual({ keyId, usageCount: 1 });
  });
});

describe('a proxied request under an Idempotency-Key whose record write loses its answer', () => {
  it('runs: the record the SDK’s retry finds is its own, not another request in progress', async () => {
    // Prepare: keys and leases in memory, the request's record in DynamoDB Local through the
    // proxy, a provider that answers 200; the record's first write applies and its answer is lost
    const w = await setup(1);
    const calls: string[] = [];
    const proxied = new Proxy({
      leasing: w.leasing,
      pools: w.pools,
      provider: {
        call: (request): Promise<ProviderAnswer> => {
          calls.push(request.url);
          return Promise.resolve({
            status: 200,
            headers: { 'content-type': 'image/png' },
            body: (async function* () {
              yield await Promise.resolve(Buffer.from('image'));
            })(),
            abort: () => undefined,
          });
        },
      },
      providerBaseUrl: () => 'https://provider.test',
      idempotency: proxyRecords,
      answers: new MemoryAnswerStore(),
      clock: w.clock.now,
    });
    const sink: ResponseSink & { status?: number } = {
      closed: false,
      start(status) {
        sink.status = status;
      },
      write: () => Promise.resolve(),
      end: () => undefined,
      fail: () => undefined,
    };
    const lostBefore = proxy.counts().faults.lostAnswer;
    proxy.inject('lostAnswer', { operation: 'PutItem' });
    // Act
    await proxied.handle(proxyCall({ idempotencyKey: uniqueName('lost-begin') }), sink);
    // Assess
    expect(proxy.counts().faults.lostAnswer).toBe(lostBefore + 1);
    expect(sink.status).toBe(200);
    expect(calls).toHaveLength(1);
  });
});

describe('an answer about an account whose write loses its answer', () => {
  /** Two keys of one account in a new pool; the lease-side use taken on one of them, and the other. */
  async function accountOfTwo(): Promise<{ pool: string; keyIds: string[] }> {
    const pool = uniqueName('faults');
    const { keys } = await table.broker().importKeys(pool, [
      { apiKey: fakeKey('a-'), account: 'org-a' },
      { apiKey: fakeKey('b-'), account: 'org-a' },
    ]);
    return { pool, keyIds: keys.map((key) => key.keyId) };
  }

  /** What the sibling must show once the provider's 402 about the account was taken in. */
  const STOPPED = { status: 'exhausted', statusBy: 'provider', statusReason: 'account_out_of_credits' };

  it('still stops the account’s other keys before the completion returns', async () => {
    // Prepare: the provider's 402 on the first key is completed, and the completion's write
    // applies while its answer is lost
    const { pool, keyIds } = await accountOfTwo();
    const grant = await accountsBroker.lease(pool);
    const sibling = keyIds.find((id) => id !== grant.keyId) as string;
    const lostBefore = proxy.counts().faults.lostAnswer;
    proxy.inject('lostAnswer', { operation: 'UpdateItem' });
    // Act
    const result = await accountsBroker.complete(
      pool,
      grant.leaseId,
      { outcome: 'out_of_credits' },
      { by: 'provider' },
    );
    // Assess
    expect(proxy.counts().faults.lostAnswer).toBe(lostBefore + 1);
    expect(result).toMatchObject({ keyId: grant.keyId, status: 'exhausted', usageCount: 0 });
    expect(await table.store.get(sibling)).toMatchObject(STOPPED);
  });

  it('still stops the account’s other keys before a proxied use’s settling returns', async () => {
    // Prepare: a proxied use met the provider's 402, and its refund applies while its answer is lost
    const { pool, keyIds } = await accountOfTwo();
    const use = await accountsBroker.leasing.takeUse(pool);
    const sibling = keyIds.find((id) => id !== use.keyId) as string;
    const lostBefore = proxy.counts().faults.lostAnswer;
    proxy.inject('lostAnswer', { operation: 'UpdateItem' });
    // Act
    await accountsBroker.leasing.settleUse(use, { outcome: 'out_of_credits', givesBack: true, failover: true });
    // Assess
    expect(proxy.counts().faults.lostAnswer).toBe(lostBefore + 1);
    expect(await table.store.get(use.keyId)).toMatchObject({ status: 'exhausted', usageCount: 0 });
    expect(await table.store.get(sibling)).toMatchObject(STOPPED);
  });
});
