/**
 * keypool's DynamoDB client (lib/adapters/dynamo-wire.ts) against DynamoDB Local, directly and
 * through the fault proxy (test/support/fault-proxy.ts): it tries again what the SDK tries again
 * (throttles, 500s, a connection reset) up to its attempts and says StoreThrottled for a throttle
 * that outlasts them, never tries a conflict again, and gives a cancelled transaction's reasons;
 * and what it writes, the SDK's document client reads as written, and the other way round.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/dynamo-client.js';
import {
  type DynamoCalls,
  DynamoServiceError,
  DynamoWire,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '../../lib/adapters/dynamo-wire.js';
import { StoreThrottled } from '../../lib/domain/errors.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { sdkCalls } from '../support/sdk-calls.js';

let table: TestTable;
let proxy: FaultProxy;
/** the SDK's document client, straight to DynamoDB Local: the reference reader and writer */
let sdk: DynamoCalls;
/** keypool's client, straight to DynamoDB Local */
let direct: DynamoWire;
const opened: DynamoCalls[] = [];

/** keypool's client through the fault proxy, with `maxAttempts` attempts per request. */
function throughProxy(maxAttempts: number): DynamoWire {
  const client = new DynamoWire({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts,
  });
  opened.push(client);
  return client;
}

/** What `promise` rejected with, or its value: each test asserts which it must be. */
const caught = (promise: Promise<unknown>): Promise<unknown> => promise.catch((error: unknown) => error);

/** How many requests reached the proxy, and how many of them it forwarded, while `act` ran. */
async function counted<T>(act: () => Promise<T>): Promise<{ result: T; requests: number; forwarded: number }> {
  const before = proxy.counts();
  const result = await act();
  const after = proxy.counts();
  return { result, requests: after.requests - before.requests, forwarded: after.forwarded - before.forwarded };
}

const put = (keyId: string) => new PutCommand({ TableName: table.tableName, Item: { keyId, n: 1 } });
/** An item as DynamoDB Local holds it, read by the SDK past the proxy. */
const stored = async (keyId: string): Promise<Record<string, unknown> | undefined> =>
  (await sdk.send(new GetCommand({ TableName: table.tableName, Key: { keyId }, ConsistentRead: true }))).Item;

beforeAll(async () => {
  table = await createTestTable('wire-faults');
  proxy = await startFaultProxy({ target: table.endpoint, seed: 5 });
  sdk = sdkCalls(
    DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: table.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }),
      { marshallOptions: { removeUndefinedValues: true } },
    ),
  );
  direct = new DynamoWire({ endpoint: table.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  opened.push(sdk, direct);
});

afterAll(async () => {
  for (const client of opened.splice(0)) client.destroy();
  await proxy.close();
});

describe("keypool's DynamoDB client through the fault proxy", () => {
  it.each([
    ['provisionedThroughputExceeded', 'ProvisionedThroughputExceededException'],
    ['throttling', 'ThrottlingException'],
  ] as const)('tries %s again up to its attempts, then says StoreThrottled with the code', async (kind, code) => {
    // Prepare
    // Two attempts: a throttle's backoff is the SDK's, under 1 s, then under 2 s.
    const client = throughProxy(2);
    const keyId = uniqueName('throttled');
    // Act: a throttle then DynamoDB Local's answer; then two throttles, as many as the attempts
    proxy.inject(kind, { operation: 'PutItem' });
    const answered = await counted(() => client.send(put(keyId)));
    proxy.inject(kind, { operation: 'GetItem', times: 2 });
    const refused = await counted(() =>
      caught(client.send(new GetCommand({ TableName: table.tableName, Key: { keyId } }))),
    );
    // Assess
    expect(answered).toMatchObject({ requests: 2, forwarded: 1 });
    expect(await stored(keyId)).toEqual({ keyId, n: 1 });
    expect(refused).toMatchObject({ requests: 2, forwarded: 0 });
    expect(refused.result).toBeInstanceOf(StoreThrottled);
    expect((refused.result as StoreThrottled).busy).toEqual({ reason: 'throttled', dynamoCode: code });
  });

  it('tries a 500 InternalServerError again; past its attempts, gives it by name, nothing applied', async () => {
    // Prepare
    const client = throughProxy(2);
    const [retried, failed] = [uniqueName('ise'), uniqueName('ise')];
    // Act
    proxy.inject('internalError', { operation: 'PutItem' });
    const once = await counted(() => client.send(put(retried)));
    proxy.inject('internalError', { operation: 'PutItem', times: 2 });
    const twice = await counted(() => caught(client.send(put(failed))));
    // Assess
    expect(once).toMatchObject({ requests: 2, forwarded: 1 });
    expect(await stored(retried)).toEqual({ keyId: retried, n: 1 });
    expect(twice).toMatchObject({ requests: 2, forwarded: 0 });
    expect(twice.result).toBeInstanceOf(DynamoServiceError);
    expect(twice.result).toMatchObject({ name: 'InternalServerError', status: 500 });
    expect(await stored(failed)).toBeUndefined();
  });

  it('gives a transaction cancelled by a conflict as TransactionCanceledException with its reasons, tried once, nothing applied', async () => {
    // Prepare
    const client = throughProxy(3);
    const ids = [uniqueName('tx'), uniqueName('tx'), uniqueName('tx')];
    const transaction = new TransactWriteCommand({
      TransactItems: ids.map((keyId) => ({ Put: { TableName: table.tableName, Item: { keyId, n: 1 } } })),
    });
    // Act
    proxy.inject('transactionConflict', { operation: 'TransactWriteItems' });
    const { result, requests } = await counted(() => caught(client.send(transaction)));
    // Assess
    expect(requests).toBe(1);
    expect(result).toBeInstanceOf(DynamoServiceError);
    const error = result as DynamoServiceError;
    expect(error.name).toBe('TransactionCanceledException');
    const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code);
    expect(codes).toHaveLength(3);
    expect(codes.filter((code) => code === 'TransactionConflict')).toHaveLength(1);
    expect(codes.filter((code) => code === 'None')).toHaveLength(2);
    for (const keyId of ids) expect(await stored(keyId)).toBeUndefined();
  });

  it('gives a throttled transaction as TransactionCanceledException with ThrottlingError, tried once', async () => {
    // Prepare
    const client = throughProxy(3);
    const keyId = uniqueName('txt');
    // Act
    proxy.inject('transactionThrottled');
    const { result, requests } = await counted(() =>
      caught(
        client.send(
          new TransactWriteCommand({ TransactItems: [{ Put: { TableName: table.tableName, Item: { keyId } } }] }),
        ),
      ),
    );
    // Assess: the SDK does not retry it either; the adapters decide what a cancelled transaction means
    expect(requests).toBe(1);
    expect(result).toMatchObject({ name: 'TransactionCanceledException' });
    expect((result as DynamoServiceError).CancellationReasons?.map((reason) => reason.Code)).toEqual([
      'ThrottlingError',
    ]);
    expect(await stored(keyId)).toBeUndefined();
  });

  it('never tries a single write refused with TransactionConflictException again', async () => {
    // Prepare
    const client = throughProxy(3);
    const keyId = uniqueName('conflicted');
    // Act
    proxy.inject('transactionConflict', { operation: 'PutItem' });
    const { result, requests } = await counted(() => caught(client.send(put(keyId))));
    // Assess
    expect(requests).toBe(1);
    expect(result).toBeInstanceOf(DynamoServiceError);
    expect(result).toMatchObject({ name: 'TransactionConflictException', status: 400 });
    expect(await stored(keyId)).toBeUndefined();
  });

  it('tries a connection reset before forwarding again; with one attempt, fails with ECONNRESET and nothing applied', async () => {
    // Prepare
    const [once, twice] = [throughProxy(1), throughProxy(2)];
    const [lost, retried] = [uniqueName('reset'), uniqueName('reset')];
    // Act
    proxy.inject('reset', { operation: 'PutItem' });
    const failed = await counted(() => caught(once.send(put(lost))));
    proxy.inject('reset', { operation: 'PutItem' });
    const answered = await counted(() => twice.send(put(retried)));
    // Assess
    expect(failed).toMatchObject({ requests: 1, forwarded: 0 });
    expect(failed.result).toMatchObject({ code: 'ECONNRESET' });
    expect(await stored(lost)).toBeUndefined();
    expect(answered).toMatchObject({ requests: 2, forwarded: 1 });
    expect(await stored(retried)).toEqual({ keyId: retried, n: 1 });
  });

  it('tries a write whose answer was lost again, as the SDK does, so an unconditional ADD applies twice', async () => {
    // Prepare
    const client = throughProxy(2);
    const keyId = uniqueName('lost');
    const add = new UpdateCommand({
      TableName: table.tableName,
      Key: { keyId },
      UpdateExpression: 'ADD n :one',
      ExpressionAttributeValues: { ':one': 1 },
    });
    // Act
    proxy.inject('lostAnswer', { operation: 'UpdateItem' });
    const { requests, forwarded } = await counted(() => client.send(add));
    // Assess: why every write keypool makes carries a condition
    expect([requests, forwarded]).toEqual([2, 2]);
    expect(await stored(keyId)).toEqual({ keyId, n: 2 });
  });
});

/** An item with a value of every kind DynamoDB stores, and an undefined field both clients leave out. */
function everyKind(keyId: string, pool: string): Record<string, unknown> {
  return {
    keyId,
    pool,
    s: 'sk-test-ключ 🔑',
    emptyS: '',
    int: 42,
    neg: -17,
    float: 3.14159,
    tiny: 1e-7,
    safe: Number.MAX_SAFE_INTEGER,
    big: 2n ** 100n,
    yes: true,
    no: false,
    nothing: null,
    bytes: new Uint8Array([0, 1, 127, 128, 255]),
    noBytes: new Uint8Array(0),
    map: { a: { b: [1, 'two', { three: true }] }, empty: {} },
    list: ['s', 1, null, new Uint8Array([7]), [2, [3]], new Set(['in a list'])],
    emptyList: [],
    ss: new Set(['a', 'b', 'c']),
    ns: new Set([1, 2.5, -3]),
    // all past 2^53: a bigint within it reads back as a number
    bigNs: new Set([2n ** 70n, -(2n ** 64n)]),
    bs: new Set([new Uint8Array([1, 2]), new Uint8Array([3])]),
    gone: undefined,
  };
}

/** The item as a reader gets it back: without its undefined field. */
function asRead(item: Record<string, unknown>): Record<string, unknown> {
  const { gone: _gone, ...rest } = item;
  return rest;
}

describe("values, between keypool's client and the SDK's, through DynamoDB Local", () => {
  it("reads with the SDK's document client every kind of value keypool's client wrote, and the other way round", async () => {
    // Prepare
    const pool = uniqueName('kinds');
    const [ours, theirs] = [everyKind(uniqueName('ours'), pool), everyKind(uniqueName('sdk'), pool)];
    // Act
    await direct.send(new PutCommand({ TableName: table.tableName, Item: ours }));
    await sdk.send(new PutCommand({ TableName: table.tableName, Item: theirs }));
    const get = (client: DynamoCalls, keyId: unknown) =>
      client.send(new GetCommand({ TableName: table.tableName, Key: { keyId }, ConsistentRead: true }));
    const [oursBySdk, oursByUs, theirsByUs, theirsBySdk] = await Promise.all([
      get(sdk, ours.keyId),
      get(direct, ours.keyId),
      get(direct, theirs.keyId),
      get(sdk, theirs.keyId),
    ]);
    // Assess: each read gives back the item written, whoever wrote and whoever read
    expect(oursBySdk.Item).toStrictEqual(asRead(ours));
    expect(oursByUs.Item).toStrictEqual(asRead(ours));
    expect(theirsByUs.Item).toStrictEqual(asRead(theirs));
    expect(theirsBySdk.Item).toStrictEqual(asRead(theirs));
    expect((theirsByUs.Item?.bytes as Uint8Array).constructor).toBe(Uint8Array);
  });

  it('sets every kind of value by an update expression, and hands back the old item of a refused condition as the SDK does', async () => {
    // Prepare
    const keyId = uniqueName('update');
    const values = everyKind(keyId, uniqueName('kinds'));
    const names = Object.keys(values).filter((name) => name !== 'keyId' && name !== 'gone');
    const update = (client: DynamoCalls, condition: string) =>
      client.send(
        new UpdateCommand({
          TableName: table.tableName,
          Key: { keyId },
          UpdateExpression: `SET ${names.map((name) => `#${name} = :${name}`).join(', ')}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: Object.fromEntries(names.map((name) => [`#${name}`, name])),
          ExpressionAttributeValues: Object.fromEntries(names.map((name) => [`:${name}`, values[name]])),
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    // Act
    const written = await update(direct, 'attribute_not_exists(keyId)');
    const ourRefusal = await caught(update(direct, 'attribute_not_exists(keyId)'));
    const sdkRefusal = await caught(update(sdk, 'attribute_not_exists(keyId)'));
    // Assess
    expect(written.Attributes).toStrictEqual(asRead(values));
    expect((await stored(keyId)) ?? {}).toStrictEqual(asRead(values));
    expect(ourRefusal).toBeInstanceOf(DynamoServiceError);
    expect(ourRefusal).toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect((sdkRefusal as Error).name).toBe('ConditionalCheckFailedException');
    expect((ourRefusal as DynamoServiceError).Item).toStrictEqual(asRead(values));
    expect((ourRefusal as DynamoServiceError).Item).toEqual((sdkRefusal as DynamoServiceError).Item);
  });

  it("pages a query by its LastEvaluatedKey as the SDK's client does, whoever's key starts the next page", async () => {
    // Prepare: five items under one pool (the pool-keys index)
    const pool = uniqueName('pages');
    for (let i = 0; i < 5; i++)
      await direct.send(new PutCommand({ TableName: table.tableName, Item: everyKind(`${pool}-${i}`, pool) }));
    const page = (client: DynamoCalls, start: Record<string, unknown> | undefined) =>
      client.send(
        new QueryCommand({
          TableName: table.tableName,
          IndexName: 'pool-keys',
          KeyConditionExpression: '#pool = :pool',
          ExpressionAttributeNames: { '#pool': 'pool' },
          ExpressionAttributeValues: { ':pool': pool },
          Limit: 2,
          ExclusiveStartKey: start,
        }),
      );
    // Act: each client pages on from the other's last key
    const pages: { ours: unknown[]; sdk: unknown[] }[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const [ours, theirs] = await Promise.all([page(direct, start), page(sdk, start)]);
      expect(ours.LastEvaluatedKey).toStrictEqual(theirs.LastEvaluatedKey);
      pages.push({ ours: ours.Items ?? [], sdk: theirs.Items ?? [] });
      start = pages.length % 2 ? ours.LastEvaluatedKey : theirs.LastEvaluatedKey;
    } while (start);
    // Assess
    expect(pages.map((p) => p.ours.length)).toEqual([2, 2, 1]);
    for (const { ours, sdk: theirs } of pages) expect(ours).toStrictEqual(theirs);
    expect(pages.flatMap((p) => p.ours).map((item) => (item as { keyId: string }).keyId)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `${pool}-${i}`),
    );
  });
});
