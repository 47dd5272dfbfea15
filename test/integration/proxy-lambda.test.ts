/**
 * The proxy Lambda (functions/proxy.ts) end to end, invoked as API Gateway's streaming
 * integration invokes it (a REST API proxy event, a response stream) with the local stand-in for
 * `awslambda`: its wiring over DynamoDB Local, a fake provider, and a fake S3 for the answers
 * bucket. A generation streams back in the HTTP integration prelude and its use is counted; an
 * Idempotency-Key's answer is kept in the bucket and replayed from it without a second provider
 * call; a dry pool is 409 and counted under the pool for its alarm.
 */
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANSWERS_BUCKET_ENV } from '../../lib/domain/proxy-names.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { type FakeS3, startFakeS3 } from '../support/fake-s3.js';
import { promptForm } from '../support/proxy-api.js';
import { captureOutput } from '../support/server.js';

const GENERATE = 'v2beta/stable-image/generate/core';

let table: TestTable;
let provider: FakeProvider;
let s3: FakeS3;
let handler: (event: APIGatewayProxyEvent, stream: Writable, context: Context) => Promise<void>;

/** What a streamed invocation wrote: the prelude's metadata and the body. */
interface Streamed {
  statusCode: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Invokes the handler with `event` into a stream that keeps what it is given. */
async function invoke(event: APIGatewayProxyEvent): Promise<Streamed> {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  await handler(event, stream, {
    awsRequestId: 'req',
    functionName: 'keypool-proxy',
    getRemainingTimeInMillis: () => 900_000,
  } as Context);
  await finished(stream).catch(() => undefined);
  const all = Buffer.concat(chunks);
  const end = all.indexOf(Buffer.alloc(8));
  const metadata = JSON.parse(all.subarray(0, end).toString('utf8')) as Omit<Streamed, 'body'>;
  return { ...metadata, body: all.subarray(end + 8) };
}

/** A REST API proxy event: a multipart generation to `pool`, or a GET of `path`. */
async function proxyEvent(pool: string, headers: Record<string, string> = {}): Promise<APIGatewayProxyEvent> {
  const form = new Request('http://form.local', { method: 'POST', body: promptForm() });
  const body = Buffer.from(await form.arrayBuffer());
  return {
    resource: '/pools/{pool}/proxy/{path+}',
    path: `/pools/${pool}/proxy/${GENERATE}`,
    httpMethod: 'POST',
    headers: { 'Content-Type': form.headers.get('content-type') ?? '', ...headers },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { pool, path: GENERATE },
    stageVariables: null,
    body: body.toString('base64'),
    isBase64Encoded: true,
    requestContext: { identity: { userArn: 'arn:aws:sts::123456789012:assumed-role/app/worker' } },
  } as unknown as APIGatewayProxyEvent;
}

/** A pool of one key the fake provider knows; its key id and secret. */
async function poolOfOne(prefix: string): Promise<{ pool: string; keyId: string; apiKey: string }> {
  const pool = uniqueName(prefix);
  const apiKey = fakeKey();
  const { keys } = await table.broker().importKeys(pool, [{ apiKey }]);
  provider.setKey(apiKey, { credits: 100 });
  return { pool, keyId: keys[0]?.keyId ?? '', apiKey };
}

beforeAll(async () => {
  table = await createTestTable('proxy-lambda');
  provider = await startFakeProvider();
  s3 = await startFakeS3();
  Object.assign(process.env, {
    KEYPOOL_TABLE: table.tableName,
    KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint,
    STABILITY_API_BASE_URL: provider.url,
    [ANSWERS_BUCKET_ENV]: 'keypool-answers-test',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDTEST',
    AWS_SECRET_ACCESS_KEY: 'test-secret',
  });
  // The entry point reads its environment when first invoked, as in a Lambda container.
  ({ handler } = await import('../../functions/proxy.js'));
});

afterAll(async () => {
  await provider.close();
  await s3.close();
});

describe('the proxy Lambda, end to end', () => {
  it("streams the provider's image back through the HTTP integration prelude and counts the use", async () => {
    // Prepare
    const { pool, keyId, apiKey } = await poolOfOne('lambda');
    // Act
    const answer = await invoke(await proxyEvent(pool));
    // Assess
    expect(answer.statusCode).toBe(200);
    expect(answer.headers).toMatchObject({
      'content-type': 'image/png',
      'x-keypool-outcome': 'success',
      'x-keypool-key-id': keyId,
    });
    expect(answer.body.length).toBeGreaterThan(0);
    expect(provider.callsWith(apiKey, `/${GENERATE}`)).toBe(1);
    expect((await table.store.get(keyId))?.usageCount).toBe(1);
  });

  it('keeps an Idempotency-Key answer in the answers bucket and replays it from there, the provider called once', async () => {
    // Prepare
    const { pool, keyId, apiKey } = await poolOfOne('kept');
    const before = s3.objects.size;
    // Act
    const first = await invoke(await proxyEvent(pool, { 'Idempotency-Key': 'job-1' }));
    const again = await invoke(await proxyEvent(pool, { 'Idempotency-Key': 'job-1' }));
    // Assess
    expect([first.statusCode, again.statusCode]).toEqual([200, 200]);
    expect(again.body.equals(first.body)).toBe(true);
    expect(provider.callsWith(apiKey, `/${GENERATE}`)).toBe(1);
    expect((await table.store.get(keyId))?.usageCount).toBe(1);
    expect(s3.objects.size).toBe(before + 1);
    expect([...s3.objects.keys()].every((key) => key.includes('answers/'))).toBe(true);
  });

  it('refuses a forwarded header no HTTP request can carry (400 invalid_request): no use taken, the provider never called', async () => {
    // Prepare: API Gateway hands header values over as text, which may hold characters past
    // Latin-1 (a UTF-8 client id); node:http refuses to send such a header.
    const { pool, keyId, apiKey } = await poolOfOne('header');
    // Act
    const answer = await invoke(await proxyEvent(pool, { 'Stability-Client-Id': 'studio \u2603' }));
    // Assess
    expect(answer.statusCode).toBe(400);
    expect(JSON.parse(answer.body.toString('utf8'))).toMatchObject({
      error: 'invalid_request',
      details: [{ path: 'headers.stability-client-id' }],
    });
    expect(provider.callsWith(apiKey, `/${GENERATE}`)).toBe(0);
    expect((await table.store.get(keyId))?.usageCount).toBe(0);
  });

  it('answers a dry pool 409 no_usable_key and counts it under the pool, for its alarm', async () => {
    // Prepare
    const { pool, keyId } = await poolOfOne('dry');
    await table.broker().updateKey(pool, keyId, { status: 'disabled' });
    const output = captureOutput();
    // Act
    let answer: Streamed;
    try {
      answer = await invoke(await proxyEvent(pool));
    } finally {
      output.stop();
    }
    // Assess
    expect(answer.statusCode).toBe(409);
    expect(JSON.parse(answer.body.toString('utf8'))).toMatchObject({ error: 'no_usable_key' });
    const emf = output
      .lines()
      .split('\n')
      .filter((line) => line.includes('"NoUsableKey"'));
    expect(emf.map((line) => (JSON.parse(line) as { pool: string; NoUsableKey: number }).pool)).toEqual([pool]);
  });
});
