/**
 * keypool's DynamoDB client (lib/adapters/dynamo-wire.ts) against the SDK's document client, on
 * the wire: each command sent through both to one scripted DynamoDB on loopback arrives as the
 * same request (method, path, target, content type, JSON body), signed for DynamoDB so that a
 * SigV4 verifier written from the documentation (test/support/s3-sigv4.ts) accepts it; the same
 * answer decodes to the same output; and DynamoDB's errors reach the caller by the same name,
 * with the same items, after the same number of attempts.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoCalls,
  type DynamoCommand,
  type DynamoOperation,
  DynamoServiceError,
  DynamoWire,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '../../lib/adapters/dynamo-wire.js';
import { StoreThrottled } from '../../lib/domain/errors.js';
import { storeFailure } from '../../lib/shared/store-failure.js';
// An item as DynamoDB's JSON spells it, by the SDK's marshall (not keypool's).
import { sdkWireItem as wire } from '../support/dynamo-json.js';
import { sdkCalls } from '../support/sdk-calls.js';
import { type S3Credentials, verifySigV4 } from '../support/s3-sigv4.js';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
const NAMESPACE = 'com.amazonaws.dynamodb.v20120810';

/** A request as the scripted DynamoDB received it. */
interface Seen {
  method: string | undefined;
  path: string | undefined;
  target: string | undefined;
  contentType: string | undefined;
  body: unknown;
  /** the session token sent, if any */
  token: string | undefined;
  /** the SigV4 verifier's verdict for service dynamodb in REGION, with the credentials `accepted` */
  signed: boolean;
}

interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

const seen: Seen[] = [];
/** answers for the next requests, in order; then each operation's canned answer */
const script: Answer[] = [];
let canned: Partial<Record<DynamoOperation, unknown>> = {};
/** the credentials a request must be signed with */
let accepted: S3Credentials = CREDENTIALS;
let server: Server;
let endpoint: string;

function answer(request: IncomingMessage, received: Buffer): Answer {
  const target = String(request.headers['x-amz-target']);
  const verdict = verifySigV4(request, received, { credentials: accepted, region: REGION, service: 'dynamodb' });
  let body: unknown;
  try {
    body = JSON.parse(received.toString('utf8'));
  } catch {
    body = received.toString('utf8');
  }
  seen.push({
    method: request.method,
    path: request.url,
    target,
    contentType: request.headers['content-type'],
    body,
    token: request.headers['x-amz-security-token'] as string | undefined,
    signed: verdict.ok,
  });
  // As DynamoDB refuses a request whose signature does not verify.
  if (!verdict.ok) return dynamoError(400, 'InvalidSignatureException', { message: verdict.message });
  const next = script.shift();
  if (next) return next;
  const operation = target.replace('DynamoDB_20120810.', '') as DynamoOperation;
  return { status: 200, body: JSON.stringify(canned[operation] ?? {}) };
}

/** An error as DynamoDB's JSON 1.0 protocol answers it. */
function dynamoError(status: number, type: string, fields: Record<string, unknown> = {}): Answer {
  return {
    status,
    body: JSON.stringify({ __type: `${NAMESPACE}#${type}`, message: `${type} (scripted)`, ...fields }),
    headers: { 'x-amzn-errortype': type },
  };
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const { status, body, headers } = answer(request, Buffer.concat(chunks));
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...headers }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen.length = 0;
  script.length = 0;
  canned = {};
  accepted = CREDENTIALS;
});

/** The SDK's document client (undefined values removed, as keypool's adapters relied on) and keypool's, alike configured. */
function clientPair(maxAttempts = 3, credentials: S3Credentials = CREDENTIALS): [DynamoCalls, DynamoCalls] {
  // The SDK's standard retries without their backoff's wait (up to seconds for a throttle): the
  // same attempts, classified the same.
  const retryStrategy = new ConfiguredRetryStrategy(maxAttempts, () => 0);
  const sdk = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint, region: REGION, credentials, retryStrategy }),
    {
      marshallOptions: { removeUndefinedValues: true },
    },
  );
  return [sdkCalls(sdk), new DynamoWire({ endpoint, region: REGION, credentials, maxAttempts })];
}

interface Outcome {
  output?: Record<string, unknown>;
  error?: unknown;
  /** the requests this client's call made */
  requests: Seen[];
}

/** Sends `command` through the SDK's client, then through keypool's: what each answered and sent. */
async function throughBoth<O extends DynamoOperation>(
  command: () => DynamoCommand<O>,
  options: { maxAttempts?: number; credentials?: S3Credentials; answers?: () => Answer[] } = {},
): Promise<{ sdk: Outcome; ours: Outcome }> {
  const clients = clientPair(options.maxAttempts, options.credentials);
  const outcomes: Outcome[] = [];
  for (const client of clients) {
    script.splice(0, script.length, ...(options.answers?.() ?? []));
    const before = seen.length;
    const outcome = await client.send(command()).then(
      (output): Omit<Outcome, 'requests'> => ({ output }),
      (error: unknown) => ({ error }),
    );
    outcomes.push({ ...outcome, requests: seen.slice(before) });
    client.destroy();
  }
  return { sdk: outcomes[0] as Outcome, ours: outcomes[1] as Outcome };
}

/** An output without its metadata (the SDK's carries attempts and delays keypool's does not count). */
function withoutMetadata(output: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!output) return undefined;
  const { $metadata: _metadata, ...rest } = output;
  return rest;
}

const TABLE = 'keypool-test';
/** a second table named like a field of a request, so that a table's name is never read as a field */
const ODD_TABLE = 'Item';
/** An item with a value of every kind, and an undefined field both clients leave out. */
const ITEM = {
  keyId: 'k-1',
  pool: 'images',
  uses: 3,
  ratio: -0.25,
  big: 2n ** 60n,
  active: true,
  lease: null,
  sealed: new Uint8Array([0, 1, 254, 255]),
  labels: { team: 'a', tags: ['x', 'y'], nested: { deep: [1, { n: 2 }] } },
  ss: new Set(['a', 'b']),
  ns: new Set([1, 2.5]),
  bs: new Set([new Uint8Array([9]), new Uint8Array([8, 7])]),
  note: undefined,
};
const KEY = { keyId: 'k-1' };
const CAPACITY = { TableName: TABLE, CapacityUnits: 1.5, Table: { CapacityUnits: 1 } };
/** the size of an item collection (a local secondary index's), named by its partition key */
const COLLECTION = { ItemCollectionKey: wire({ pool: 'images' }), SizeEstimateRangeGB: [0, 1] };

/** Every command keypool sends, with what the scripted DynamoDB answers it. */
const COMMANDS: [string, () => DynamoCommand<DynamoOperation>, unknown][] = [
  [
    'GetItem',
    () =>
      new GetCommand({
        TableName: TABLE,
        Key: KEY,
        ConsistentRead: true,
        ProjectionExpression: '#p, uses, sealed',
        ExpressionAttributeNames: { '#p': 'pool' },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    { Item: wire(ITEM), ConsumedCapacity: CAPACITY },
  ],
  [
    'PutItem',
    () =>
      new PutCommand({
        TableName: TABLE,
        Item: ITEM,
        ConditionExpression: 'attribute_not_exists(keyId)',
        ReturnValues: 'ALL_OLD',
        ReturnConsumedCapacity: 'TOTAL',
        ReturnItemCollectionMetrics: 'SIZE',
      }),
    { Attributes: wire(ITEM), ConsumedCapacity: CAPACITY, ItemCollectionMetrics: COLLECTION },
  ],
  [
    'UpdateItem',
    () =>
      new UpdateCommand({
        TableName: TABLE,
        Key: KEY,
        UpdateExpression: 'SET uses = uses + :one, sealed = :sealed, tags = :tags REMOVE note',
        // the cap (uses <= :cap) and the key's status, both decided by the stored item
        ConditionExpression: 'uses <= :cap AND #s = :active',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':one': 1,
          ':cap': 3,
          ':active': 'active',
          ':sealed': new Uint8Array([5, 6]),
          ':tags': new Set(['t']),
          ':unused': undefined,
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    { Attributes: wire(ITEM) },
  ],
  [
    'DeleteItem',
    () =>
      new DeleteCommand({
        TableName: TABLE,
        Key: KEY,
        ConditionExpression: 'pool = :pool',
        ExpressionAttributeValues: { ':pool': 'images' },
        ReturnValues: 'ALL_OLD',
      }),
    { Attributes: wire(ITEM) },
  ],
  [
    'Query',
    () =>
      new QueryCommand({
        TableName: TABLE,
        IndexName: 'pool-keys',
        KeyConditionExpression: 'pool = :pool AND lastUsed < :t',
        FilterExpression: 'uses <= :cap',
        ExpressionAttributeValues: { ':pool': 'images', ':t': 1_700_000_000_000, ':cap': 3 },
        ExclusiveStartKey: { keyId: 'k-0', pool: 'images', lastUsed: 5 },
        Limit: 2,
        ScanIndexForward: false,
        ReturnConsumedCapacity: 'INDEXES',
      }),
    {
      Items: [wire(ITEM), wire({ keyId: 'k-2', pool: 'images' })],
      Count: 2,
      ScannedCount: 3,
      LastEvaluatedKey: wire({ keyId: 'k-2', pool: 'images', lastUsed: 7 }),
      ConsumedCapacity: CAPACITY,
    },
  ],
  [
    'Scan',
    () =>
      new ScanCommand({
        TableName: TABLE,
        Segment: 1,
        TotalSegments: 4,
        FilterExpression: 'begins_with(keyId, :prefix)',
        ExpressionAttributeValues: { ':prefix': 'k-' },
        ExclusiveStartKey: { keyId: 'k-0' },
        ConsistentRead: true,
      }),
    { Items: [wire(ITEM)], Count: 1, ScannedCount: 9, LastEvaluatedKey: wire({ keyId: 'k-1' }) },
  ],
  [
    'BatchGetItem',
    () =>
      new BatchGetCommand({
        RequestItems: {
          [TABLE]: {
            Keys: [KEY, { keyId: 'k-2' }],
            ConsistentRead: true,
            ProjectionExpression: 'keyId, #u',
            ExpressionAttributeNames: { '#u': 'uses' },
          },
          [ODD_TABLE]: { Keys: [{ Key: 'x', n: 1 }] },
        },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    {
      Responses: { [TABLE]: [wire(ITEM)], [ODD_TABLE]: [wire({ Key: 'x', n: 1, b: new Uint8Array([1]) })] },
      UnprocessedKeys: {
        [TABLE]: {
          Keys: [wire({ keyId: 'k-2' })],
          ConsistentRead: true,
          ProjectionExpression: 'keyId, #u',
          ExpressionAttributeNames: { '#u': 'uses' },
        },
      },
      ConsumedCapacity: [CAPACITY],
    },
  ],
  [
    'BatchWriteItem',
    () =>
      new BatchWriteCommand({
        RequestItems: {
          [TABLE]: [{ PutRequest: { Item: ITEM } }, { DeleteRequest: { Key: { keyId: 'k-2' } } }],
          [ODD_TABLE]: [{ PutRequest: { Item: { Key: 'x', Item: { S: 'not an attribute value' } } } }],
        },
        ReturnConsumedCapacity: 'TOTAL',
        ReturnItemCollectionMetrics: 'SIZE',
      }),
    {
      ItemCollectionMetrics: { [TABLE]: [COLLECTION] },
      UnprocessedItems: {
        [TABLE]: [{ DeleteRequest: { Key: wire({ keyId: 'k-2' }) } }],
        [ODD_TABLE]: [{ PutRequest: { Item: wire({ Key: 'x', Item: { S: 'not an attribute value' } }) } }],
      },
      ConsumedCapacity: [CAPACITY],
    },
  ],
  [
    'TransactWriteItems',
    () =>
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: TABLE,
              Item: ITEM,
              ConditionExpression: 'attribute_not_exists(keyId)',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          {
            Update: {
              TableName: TABLE,
              Key: { keyId: 'k-2' },
              UpdateExpression: 'ADD uses :one',
              ConditionExpression: 'uses < :cap',
              ExpressionAttributeValues: { ':one': 1, ':cap': 3 },
            },
          },
          {
            Delete: {
              TableName: TABLE,
              Key: { keyId: 'k-3' },
              ConditionExpression: '#l = :lease',
              ExpressionAttributeNames: { '#l': 'lease' },
              ExpressionAttributeValues: { ':lease': 'l-1' },
            },
          },
          {
            ConditionCheck: {
              TableName: ODD_TABLE,
              Key: { Key: 'x' },
              ConditionExpression: 'attribute_exists(#k)',
              ExpressionAttributeNames: { '#k': 'Key' },
            },
          },
        ],
        ClientRequestToken: 'token-1',
        ReturnConsumedCapacity: 'INDEXES',
        ReturnItemCollectionMetrics: 'SIZE',
      }),
    { ConsumedCapacity: [CAPACITY], ItemCollectionMetrics: { [TABLE]: [COLLECTION] } },
  ],
];

describe('each command, through the SDK and through keypool', () => {
  it.each(COMMANDS)(
    'sends %s as the same signed request and reads its answer the same',
    async (operation, command, out) => {
      // Prepare
      canned = { [operation]: out };
      // Act
      const { sdk, ours } = await throughBoth(command);
      // Assess: one request each, alike on the wire, both signed as DynamoDB checks it
      expect(sdk.error).toBeUndefined();
      expect(ours.error).toBeUndefined();
      expect(ours.requests).toEqual(sdk.requests);
      expect(ours.requests).toHaveLength(1);
      expect(ours.requests[0]).toMatchObject({
        method: 'POST',
        path: '/',
        target: `DynamoDB_20120810.${operation}`,
        contentType: 'application/x-amz-json-1.0',
        signed: true,
      });
      // the same output, bytes as Uint8Array and sets as sets on both sides
      expect(withoutMetadata(ours.output)).toEqual(withoutMetadata(sdk.output));
      expect(ours.output?.$metadata).toEqual({ httpStatusCode: 200 });
    },
  );

  it('leaves out what is undefined, in an item and in the request itself, as the SDK does', async () => {
    // Prepare
    const command = () =>
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: 'pool = :pool',
        ExpressionAttributeValues: { ':pool': 'images', ':gone': undefined },
        ExclusiveStartKey: undefined,
        Limit: undefined,
      });
    // Act
    const { sdk, ours } = await throughBoth(command);
    // Assess
    expect(ours.requests.map((r) => r.body)).toEqual(sdk.requests.map((r) => r.body));
    expect(ours.requests[0]?.body).toEqual({
      TableName: TABLE,
      KeyConditionExpression: 'pool = :pool',
      ExpressionAttributeValues: { ':pool': { S: 'images' } },
    });
  });

  it("sends a role's session token, signed, as the SDK does (a Lambda function's credentials carry one)", async () => {
    // Prepare
    accepted = { ...CREDENTIALS, sessionToken: 'session-token' };
    // Act
    const withToken = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }), {
      credentials: accepted,
    });
    const without = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }));
    // Assess
    expect(withToken.ours.requests).toEqual(withToken.sdk.requests);
    expect(withToken.ours.requests.map((r) => [r.token, r.signed])).toEqual([['session-token', true]]);
    expect(without.ours.requests.map((r) => [r.token, r.signed])).toEqual([[undefined, false]]);
  });

  it('is refused by the signature check when it signs with another secret, by the same error name as the SDK', async () => {
    // Act
    const { sdk, ours } = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }), {
      credentials: { ...CREDENTIALS, secretAccessKey: 'another-secret' },
    });
    // Assess: the verifier can say no, so its yes above means something
    expect(ours.requests.map((r) => r.signed)).toEqual([false]);
    expect(sdk.requests.map((r) => r.signed)).toEqual([false]);
    expect(ours.error).toBeInstanceOf(DynamoServiceError);
    expect((ours.error as Error).name).toBe('InvalidSignatureException');
    expect((sdk.error as Error).name).toBe('InvalidSignatureException');
  });
});

describe("DynamoDB's errors, through the SDK and through keypool", () => {
  const update = () =>
    new UpdateCommand({
      TableName: TABLE,
      Key: KEY,
      UpdateExpression: 'ADD uses :one',
      ConditionExpression: 'uses < :cap',
      ExpressionAttributeValues: { ':one': 1, ':cap': 3 },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });

  it('gives a refused condition by its name with the old item, plain in keypool (the SDK marshalled, compared unmarshalled)', async () => {
    // Act
    const { sdk, ours } = await throughBoth(update, {
      answers: () => [
        dynamoError(400, 'ConditionalCheckFailedException', {
          message: 'The conditional request failed',
          Item: wire(ITEM),
        }),
      ],
    });
    // Assess
    expect(ours.error).toBeInstanceOf(DynamoServiceError);
    const [ourError, sdkError] = [ours.error as DynamoServiceError, sdk.error as DynamoServiceError];
    expect(ourError.name).toBe('ConditionalCheckFailedException');
    expect(sdkError.name).toBe(ourError.name);
    expect(ourError.$metadata.httpStatusCode).toBe(400);
    expect(sdkError.$metadata.httpStatusCode).toBe(400);
    expect(ourError.Item).toEqual(sdkError.Item);
    expect(ourError.Item?.sealed).toBeInstanceOf(Uint8Array);
    expect(ourError.Item?.uses).toBe(3);
    // a refusal is not tried again
    expect([sdk.requests.length, ours.requests.length]).toEqual([1, 1]);
  });

  it("gives a cancelled transaction's reasons in item order, a refused condition's item among them", async () => {
    // Prepare
    const reasons = [
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed', Item: wire(ITEM) },
      { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' },
    ];
    const command = COMMANDS.find(([operation]) => operation === 'TransactWriteItems')?.[1];
    if (!command) throw new Error('no TransactWriteItems command');
    // Act
    const { sdk, ours } = await throughBoth(command, {
      answers: () => [
        dynamoError(400, 'TransactionCanceledException', {
          message:
            'Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, TransactionConflict]',
          CancellationReasons: reasons,
        }),
      ],
    });
    // Assess
    const [ourError, sdkError] = [ours.error as DynamoServiceError, sdk.error as DynamoServiceError];
    expect(ourError.name).toBe('TransactionCanceledException');
    expect(sdkError.name).toBe(ourError.name);
    expect(ourError.CancellationReasons?.map((r) => r.Code)).toEqual([
      'None',
      'ConditionalCheckFailed',
      'TransactionConflict',
    ]);
    expect(ourError.CancellationReasons).toEqual(sdkError.CancellationReasons);
    expect(ourError.CancellationReasons?.[1]?.Item?.sealed).toBeInstanceOf(Uint8Array);
    expect([sdk.requests.length, ours.requests.length]).toEqual([1, 1]);
  });

  it.each(['ProvisionedThroughputExceededException', 'ThrottlingException'])(
    'tries %s as many times as the SDK, then keypool says StoreThrottled with its code',
    async (code) => {
      // Act
      const { sdk, ours } = await throughBoth(update, {
        // two: a throttle's backoff is the SDK's, under 1 s then 2 s, and keypool's cannot be shortened
        maxAttempts: 2,
        answers: () => [1, 2, 3].map(() => dynamoError(400, code)),
      });
      // Assess
      expect((sdk.error as Error).name).toBe(code);
      expect(ours.error).toBeInstanceOf(StoreThrottled);
      expect((ours.error as StoreThrottled).busy).toEqual({ reason: 'throttled', dynamoCode: code });
      expect(sdk.requests).toHaveLength(2);
      expect(ours.requests).toHaveLength(2);
      // every attempt the same request, signed anew
      expect(new Set(ours.requests.map((r) => JSON.stringify(r.body))).size).toBe(1);
      expect(ours.requests.every((r) => r.signed)).toBe(true);
    },
  );

  it.each([
    ['a throttle', dynamoError(400, 'ProvisionedThroughputExceededException')],
    ['a 500', dynamoError(500, 'InternalServerError')],
  ])('answers the success after %s, as the SDK does', async (_label, fault) => {
    // Act
    const { sdk, ours } = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }), {
      maxAttempts: 2,
      answers: () => [fault, { status: 200, body: JSON.stringify({ Item: wire(ITEM) }) }],
    });
    // Assess
    expect(withoutMetadata(ours.output)).toEqual(withoutMetadata(sdk.output));
    expect(ours.output?.Item).toBeDefined();
    expect([sdk.requests.length, ours.requests.length]).toEqual([2, 2]);
  });

  it('never tries a TransactionConflictException again, as the SDK does not', async () => {
    // Act
    const { sdk, ours } = await throughBoth(() => new PutCommand({ TableName: TABLE, Item: ITEM }), {
      answers: () => [dynamoError(400, 'TransactionConflictException')],
    });
    // Assess
    expect((ours.error as Error).name).toBe('TransactionConflictException');
    expect((sdk.error as Error).name).toBe('TransactionConflictException');
    expect([sdk.requests.length, ours.requests.length]).toEqual([1, 1]);
  });

  it('names a 200 whose body is not JSON Unknown (the SDK throws a SyntaxError), and both read as "not DynamoDB"', async () => {
    // Act
    const { sdk, ours } = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }), {
      answers: () => [{ status: 200, body: '<html>a captive portal</html>', headers: { 'content-type': 'text/html' } }],
    });
    // Assess: documented in dynamo-wire.ts; the edges class both alike (lib/shared/store-failure.ts)
    expect(ours.error).toBeInstanceOf(DynamoServiceError);
    expect((ours.error as DynamoServiceError).name).toBe('Unknown');
    expect((ours.error as DynamoServiceError).$metadata.httpStatusCode).toBe(200);
    expect((sdk.error as Error).name).toBe('SyntaxError');
    expect(storeFailure(ours.error)).toBe('not_dynamodb');
    expect(storeFailure(sdk.error)).toBe('not_dynamodb');
    expect([sdk.requests.length, ours.requests.length]).toEqual([1, 1]);
  });

  it('names a JSON refusal without an error type Unknown, as the SDK does, so the edges read it as "not DynamoDB"', async () => {
    // Prepare: what keypool's own API answers a DynamoDB request sent to its port by mistake
    const refusal = { error: 'unsupported_media_type', message: 'send a body as JSON' };
    // Act
    const { sdk, ours } = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }), {
      answers: () => [{ status: 415, body: JSON.stringify(refusal), headers: { 'content-type': 'application/json' } }],
    });
    // Assess
    expect((sdk.error as Error).name).toBe('Unknown');
    expect((ours.error as Error).name).toBe('Unknown');
    expect(storeFailure(ours.error)).toBe('not_dynamodb');
    expect([sdk.requests.length, ours.requests.length]).toEqual([1, 1]);
  });

  it('tries a 502 page that is not JSON again, as the SDK does, and gives up after the same attempts', async () => {
    // Act
    const { sdk, ours } = await throughBoth(() => new GetCommand({ TableName: TABLE, Key: KEY }), {
      maxAttempts: 2,
      answers: () => [1, 2, 3].map(() => ({ status: 502, body: '<html>bad gateway</html>' })),
    });
    // Assess
    expect((ours.error as DynamoServiceError).$metadata.httpStatusCode).toBe(502);
    expect((sdk.error as DynamoServiceError).$metadata.httpStatusCode).toBe(502);
    expect([sdk.requests.length, ours.requests.length]).toEqual([2, 2]);
  });
});
