/**
 * A lease over HTTP while DynamoDB throttles or conflicts (the fault proxy in front of DynamoDB
 * Local plays DynamoDB's part): throttling past the SDK's retries is `503 store_throttled` with a
 * Retry-After, never a bare 500; a conflict is retried, never answered `409 no_usable_key`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { METRIC } from '../../lib/observability/metric-names.js';
import { captureEmf, expectError, poolApi } from '../support/pool-api.js';
import { startTestServer } from '../support/server.js';

let table: TestTable;
let proxy: FaultProxy;
let server: LocalServer;
let api: ReturnType<typeof poolApi>;

beforeAll(async () => {
  table = await createTestTable('http-faults');
  proxy = await startFaultProxy({ target: table.endpoint, seed: 20 });
  server = await startTestServer(table.tableName, proxy.endpoint);
  api = poolApi(server.url);
});

afterEach(() => {
  proxy.setRates({});
});

afterAll(async () => {
  await server.close();
  await proxy.close();
});

describe('a lease while DynamoDB', () => {
  it('throttles past the SDK retries answers 503 store_throttled with Retry-After, counts nothing, and publishes StoreThrottled (not NoUsableKey)', async () => {
    // Prepare
    const pool = uniqueName('throttled');
    const { keys } = await api.importKeys(pool, 2);
    proxy.setRates({ provisionedThroughputExceeded: 1 });
    // Act
    const { result: answer, records } = await captureEmf(() => api.lease(pool));
    proxy.setRates({});
    // Assess
    const body = expectError(answer, 503, 'store_throttled');
    expect(body.retryAfterSeconds).toBeGreaterThan(0);
    expect(answer.headers.get('retry-after')).toBe(String(body.retryAfterSeconds));
    expect((await api.listAll(pool)).map((k) => k.usageCount)).toEqual(keys.map(() => 0));
    expect(records.filter((r) => r.pool === pool)).toEqual([expect.objectContaining({ [METRIC.storeThrottled]: 1 })]);
    expect(records.some((r) => METRIC.noUsableKey in r)).toBe(false);
  });

  it('conflicts with an Idempotency-Key lease answers 200 with the key, not 409 no_usable_key', async () => {
    // Prepare: one key, and its lease transaction conflicts once
    const pool = uniqueName('conflicted');
    const { keys } = await api.importKeys(pool, 1);
    proxy.inject('transactionConflict', { operation: 'TransactWriteItems' });
    // Act
    const answer = await api.call('POST', `/pools/${pool}/leases`, {}, { 'idempotency-key': 'conflicted-http-1' });
    // Assess
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ keyId: keys[0]?.keyId, usageCount: 0 });
  });
});
