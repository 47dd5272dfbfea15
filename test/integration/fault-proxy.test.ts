/**
 * The fault proxy itself, against DynamoDB Local: each fault kind reaches the SDK as the error
 * DynamoDB would answer, the SDK retries what it retries for DynamoDB (throttling as
 * throttling, 500s and resets as transient) and not conflicts, and "applied" or "not applied"
 * is what the kind says.
 */
import {
  DynamoDBClient,
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../lib/adapters/dynamo-client.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FaultKind, type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';

let table: TestTable;
let proxy: FaultProxy;

/** The SDK's own retry strategy, with the class it gave each error it was asked to retry. */
interface RetryStrategyV2 {
  acquireInitialRetryToken(scope: string): Promise<unknown>;
  refreshRetryTokenForRetry(token: unknown, info: { errorType: string }): Promise<unknown>;
  recordSuccess(token: unknown): void;
}

/** A document client through the proxy that notes how the SDK classified each error it retried. */
async function clientThrough(
  endpoint: string,
  maxAttempts: number,
): Promise<{ client: DynamoDBDocumentClient; retried: string[] }> {
  const options = { endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, maxAttempts };
  const standard = (await new DynamoDBClient(options).config.retryStrategy()) as unknown as RetryStrategyV2;
  const retried: string[] = [];
  const recording: RetryStrategyV2 = {
    acquireInitialRetryToken: (scope) => standard.acquireInitialRetryToken(scope),
    refreshRetryTokenForRetry: (token, info) => {
      retried.push(info.errorType);
      return standard.refreshRetryTokenForRetry(token, info);
    },
    recordSuccess: (token) => standard.recordSuccess(token),
  };
  const client = new DynamoDBClient({ ...options, retryStrategy: recording as never });
  return { client: DynamoDBDocumentClient.from(client), retried };
}

const item = (id: string): Record<string, unknown> => ({ keyId: id, n: 1 });
const get = (id: string) => new GetCommand({ TableName: table.tableName, Key: { keyId: id }, ConsistentRead: true });
const put = (id: string) => new PutCommand({ TableName: table.tableName, Item: item(id) });
/** An item as DynamoDB Local holds it, read past the proxy. */
const stored = async (id: string): Promise<Record<string, unknown> | undefined> => {
  const direct = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: table.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }),
  );
  try {
    return (await direct.send(get(id))).Item;
  } finally {
    direct.destroy();
  }
};

/** The error a promise rejected with (fails the test if it resolved). */
async function rejection(promise: Promise<unknown>): Promise<Error & { $metadata?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** The codes of a transaction's cancellation reasons, in item order. */
function reasonCodes(error: unknown): (string | undefined)[] {
  if (!(error instanceof TransactionCanceledException)) throw new Error('not a cancelled transaction');
  return (error.CancellationReasons ?? []).map((reason) => reason.Code);
}

beforeAll(async () => {
  table = await createTestTable('fault-proxy');
  proxy = await startFaultProxy({ target: table.endpoint, seed: 7 });
});

afterAll(async () => {
  await proxy.close();
});

describe('the fault proxy', () => {
  it.each([
    ['provisionedThroughputExceeded', ProvisionedThroughputExceededException],
    ['throttling', ThrottlingException],
  ] as const)(
    'answers %s as DynamoDB does: status 400, the SDK retries it as throttling and throws its class when retries run out',
    async (kind, ErrorClass) => {
      // Prepare
      const { client, retried } = await clientThrough(proxy.endpoint, 3);
      const before = proxy.counts().faults[kind];
      // Act: two throttles then an answer; then three throttles, one more than the SDK retries
      proxy.inject(kind, { operation: 'GetItem', times: 2 });
      const answered = await client.send(get('none'));
      proxy.inject(kind, { operation: 'GetItem', times: 3 });
      const error = await rejection(client.send(get('none')));
      // Assess
      expect(answered.$metadata.attempts).toBe(3);
      expect(error).toBeInstanceOf(ErrorClass);
      expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 3 });
      // Every throttle was classified as one (the last of the second request is refused: out of attempts).
      expect(retried).toEqual(['THROTTLING', 'THROTTLING', 'THROTTLING', 'THROTTLING', 'THROTTLING']);
      expect(proxy.counts().faults[kind] - before).toBe(5);
      client.destroy();
    },
  );

  it('answers internalError as a 500 InternalServerError, which the SDK retries as transient', async () => {
    // Prepare
    const { client, retried } = await clientThrough(proxy.endpoint, 2);
    // Act
    proxy.inject('internalError', { operation: 'PutItem' });
    await client.send(put('ise-retried'));
    proxy.inject('internalError', { operation: 'PutItem', times: 2 });
    const error = await rejection(client.send(put('ise-failed')));
    // Assess
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.$metadata).toMatchObject({ httpStatusCode: 500, attempts: 2 });
    // one retry for the first request; the second asked twice, and was refused the second time
    expect(retried).toEqual(['TRANSIENT', 'TRANSIENT', 'TRANSIENT']);
    expect(await stored('ise-retried')).toEqual(item('ise-retried'));
    expect(await stored('ise-failed')).toBeUndefined();
    client.destroy();
  });

  it('cancels a transaction with TransactionConflict on one of its items: nothing applied, not retried by the SDK', async () => {
    // Prepare
    const { client, retried } = await clientThrough(proxy.endpoint, 3);
    const ids = [uniqueName('tx'), uniqueName('tx'), uniqueName('tx')];
    // Act
    proxy.inject('transactionConflict', { operation: 'TransactWriteItems' });
    const error = await rejection(
      client.send(
        new TransactWriteCommand({
          TransactItems: ids.map((id) => ({ Put: { TableName: table.tableName, Item: item(id) } })),
        }),
      ),
    );
    // Assess
    expect(error).toBeInstanceOf(TransactionCanceledException);
    const codes = reasonCodes(error);
    expect(codes).toHaveLength(3);
    expect(codes.filter((c) => c === 'TransactionConflict')).toHaveLength(1);
    expect(codes.filter((c) => c === 'None')).toHaveLength(2);
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 1 });
    expect(retried).toEqual(['CLIENT_ERROR']);
    for (const id of ids) expect(await stored(id)).toBeUndefined();
    client.destroy();
  });

  it('cancels a throttled transaction with ThrottlingError: nothing applied', async () => {
    // Prepare
    const { client } = await clientThrough(proxy.endpoint, 3);
    const id = uniqueName('txt');
    // Act
    proxy.inject('transactionThrottled');
    const error = await rejection(
      client.send(
        new TransactWriteCommand({ TransactItems: [{ Put: { TableName: table.tableName, Item: item(id) } }] }),
      ),
    );
    // Assess
    expect(error).toBeInstanceOf(TransactionCanceledException);
    expect(reasonCodes(error)).toEqual(['ThrottlingError']);
    expect(await stored(id)).toBeUndefined();
    client.destroy();
  });

  it('refuses a single write with TransactionConflictException: nothing applied, not retried by the SDK', async () => {
    // Prepare
    const { client, retried } = await clientThrough(proxy.endpoint, 3);
    // Act
    proxy.inject('transactionConflict', { operation: 'PutItem' });
    const error = await rejection(client.send(put('conflicted')));
    // Assess
    expect(error).toBeInstanceOf(TransactionConflictException);
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 1 });
    expect(retried).toEqual(['CLIENT_ERROR']);
    expect(await stored('conflicted')).toBeUndefined();
    client.destroy();
  });

  it('resets the connection before forwarding: nothing applied, the SDK sees ECONNRESET and retries it as transient', async () => {
    // Prepare
    const once = await clientThrough(proxy.endpoint, 1);
    const twice = await clientThrough(proxy.endpoint, 2);
    // Act
    proxy.inject('reset', { operation: 'PutItem' });
    const error = await rejection(once.client.send(put('reset-once')));
    proxy.inject('reset', { operation: 'PutItem' });
    await twice.client.send(put('reset-retried'));
    // Assess
    expect(error).toMatchObject({ code: 'ECONNRESET' });
    expect(await stored('reset-once')).toBeUndefined();
    expect(twice.retried).toEqual(['TRANSIENT']);
    expect(await stored('reset-retried')).toEqual(item('reset-retried'));
    once.client.destroy();
    twice.client.destroy();
  });

  it('loses the answer of a write it forwarded: applied, yet the SDK sees ECONNRESET (and a blind retry applies it twice)', async () => {
    // Prepare
    const once = await clientThrough(proxy.endpoint, 1);
    const twice = await clientThrough(proxy.endpoint, 2);
    const add = (id: string) =>
      new UpdateCommand({
        TableName: table.tableName,
        Key: { keyId: id },
        UpdateExpression: 'ADD n :one',
        ExpressionAttributeValues: { ':one': 1 },
      });
    // Act
    proxy.inject('lostAnswer', { operation: 'UpdateItem' });
    const error = await rejection(once.client.send(add('lost-once')));
    proxy.inject('lostAnswer', { operation: 'UpdateItem' });
    await twice.client.send(add('lost-retried'));
    // Assess: why every write keypool makes is conditional
    expect(error).toMatchObject({ code: 'ECONNRESET' });
    expect(await stored('lost-once')).toEqual({ keyId: 'lost-once', n: 1 });
    expect(await stored('lost-retried')).toEqual({ keyId: 'lost-retried', n: 2 });
    once.client.destroy();
    twice.client.destroy();
  });

  it('delays the requests its latency rate picks, and still forwards each one', async () => {
    // Prepare
    const slow = await startFaultProxy({ target: table.endpoint, latency: { rate: 1, maxMs: 300 } });
    const { client } = await clientThrough(slow.endpoint, 1);
    // Act
    for (let i = 0; i < 5; i++) await client.send(get('none'));
    // Assess
    expect(slow.counts()).toMatchObject({ requests: 5, forwarded: 5, delayed: 5 });
    client.destroy();
    await slow.close();
  });

  it('draws faults at the set rates from its seed: the same seed and requests give the same faults', async () => {
    // Prepare
    const rates: Partial<Record<FaultKind, number>> = { throttling: 0.2, internalError: 0.2, reset: 0.1 };
    const outcomes = async (seed: number): Promise<{ seen: string[]; faults: Record<FaultKind, number> }> => {
      const seeded = await startFaultProxy({ target: table.endpoint, seed, rates });
      const { client } = await clientThrough(seeded.endpoint, 1);
      const seen: string[] = [];
      for (let i = 0; i < 60; i++) {
        seen.push(
          await client.send(get('none')).then(
            () => 'ok',
            (error: unknown) => {
              const { code, name } = error as { code?: string; name?: string };
              return code ?? name ?? 'unknown';
            },
          ),
        );
      }
      client.destroy();
      const { faults } = seeded.counts();
      await seeded.close();
      return { seen, faults };
    };
    // Act
    const first = await outcomes(11);
    const again = await outcomes(11);
    const other = await outcomes(12);
    // Assess
    expect(again).toEqual(first);
    expect(other.seen).not.toEqual(first.seen);
    const faulted = first.seen.filter((s) => s !== 'ok').length;
    expect(faulted).toBe(first.faults.throttling + first.faults.internalError + first.faults.reset);
    expect(first.faults.throttling).toBeGreaterThan(0);
    expect(first.faults.internalError).toBeGreaterThan(0);
    expect(first.faults.reset).toBeGreaterThan(0);
    expect(first.faults.lostAnswer).toBe(0);
    expect(first.seen.filter((s) => s === 'ThrottlingException')).toHaveLength(first.faults.throttling);
  });
});
