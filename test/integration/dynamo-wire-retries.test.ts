/**
 * keypool's DynamoDB client (lib/adapters/dynamo-wire.ts) sending a request again after its
 * answer was lost, through the fault proxy to DynamoDB Local: a transaction carries one token on
 * every attempt, its caller's or one the client gave it (as the SDK gives one), so DynamoDB
 * answers the second attempt as done instead of running it again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/dynamo-client.js';
import { DynamoWire, GetCommand, TransactWriteCommand } from '../../lib/adapters/dynamo-wire.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';

let table: TestTable;
let proxy: FaultProxy;

beforeAll(async () => {
  table = await createTestTable('wire-retries');
  proxy = await startFaultProxy({ target: table.endpoint, seed: 11 });
});

afterAll(async () => {
  await proxy.close();
});

/** A client through the proxy that tries each request twice at most, without waiting between. */
const client = (): DynamoWire =>
  new DynamoWire({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 2,
  });

/** One conditional put in a transaction: it can be applied once only. */
const create = (id: string, token?: string) =>
  new TransactWriteCommand({
    TransactItems: [
      {
        Put: {
          TableName: table.tableName,
          Item: { keyId: id, n: 1 },
          ConditionExpression: 'attribute_not_exists(keyId)',
        },
      },
    ],
    ...(token ? { ClientRequestToken: token } : {}),
  });

describe("keypool's DynamoDB client after a lost answer", () => {
  it.each([
    ['a token it gave the transaction itself', undefined],
    ["its caller's token", 'caller-token-0001'],
  ])('sends a transaction again with %s: answered as done, applied once', async (_, token) => {
    // Prepare
    const wire = client();
    const id = uniqueName('tx');
    const before = proxy.counts().forwarded;
    // Act: the first attempt is applied and its answer lost; the client sends it again.
    proxy.inject('lostAnswer', { operation: 'TransactWriteItems' });
    const out = await wire.send(create(id, token && `${token}-${id}`));
    // Assess: both attempts reached DynamoDB Local, the second answered 200 (the same token), not refused.
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(proxy.counts().forwarded - before).toBe(2);
    const stored = await wire.send(
      new GetCommand({ TableName: table.tableName, Key: { keyId: id }, ConsistentRead: true }),
    );
    expect(stored.Item).toEqual({ keyId: id, n: 1 });
    wire.destroy();
  });
});
