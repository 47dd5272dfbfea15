/**
 * The proxy's Lambda edge (lib/http/lambda-stream.ts), invoked here as Lambda invokes it but with
 * the local stand-in for `awslambda` and a fake response stream: the REST API event becomes the
 * call the use case gets, the answer goes out as the HTTP metadata prelude and the body with
 * backpressure, refusals before the first byte are keypool's JSON errors, and a caller who went
 * away makes later writes no-ops rather than errors.
 */
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { NoUsableKey, SealingUnavailable, StoreThrottled } from '../../lib/domain/errors.js';
import { ProviderFailed, ProviderTimeout } from '../../lib/domain/proxy-errors.js';
import {
  lambdaRuntime,
  LambdaResponseSink,
  LOCAL_RUNTIME,
  streamingProxyHandler,
} from '../../lib/http/lambda-stream.js';
import { AWS_PROXY_MAX_BODY_BYTES } from '../../lib/http/proxy-route.js';
import { STACK_METRIC } from '../../lib/observability/metric-names.js';
import { emfRecord, type StackMetricsSink } from '../../lib/observability/metrics.js';
import type { ResponseSink } from '../../lib/ports/proxy.js';
import type { ProxyCall, ProxyHandle } from '../../lib/ports/proxy-call.js';

/** A response stream that keeps what it is given, slowly when asked (a small buffer, a delay per chunk). */
class FakeResponseStream extends Writable {
  readonly chunks: Buffer[] = [];
  maxBuffered = 0;
  constructor(options: { highWaterMark?: number; delayMs?: number } = {}) {
    super({
      highWaterMark: options.highWaterMark ?? 16 * 1024,
      write: (chunk: Buffer, _encoding, done) => {
        this.chunks.push(Buffer.from(chunk));
        setTimeout(done, options.delayMs ?? 0);
      },
    });
  }
  override write(chunk: unknown, ...rest: never[]): boolean {
    const accepted = super.write(chunk, ...rest);
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    return accepted;
  }
  /** The prelude's metadata and the body, as Lambda's HTTP integration response stream frames them. */
  answer(): { metadata: { statusCode: number; headers: Record<string, string> }; body: Buffer } {
    const all = Buffer.concat(this.chunks);
    const end = all.indexOf(Buffer.alloc(8));
    return { metadata: JSON.parse(all.subarray(0, end).toString('utf8')) as never, body: all.subarray(end + 8) };
  }
}

/** The invocation's time left, as Lambda's context tells it (a proxy function's 900 s). */
const LEFT_MS = 900_000;
const CONTEXT = { awsRequestId: 'req-1', functionName: 'proxy', getRemainingTimeInMillis: () => LEFT_MS } as Context;

/** A REST API proxy event for `/pools/{pool}/proxy/{path+}`, its path the one its path parameters matched. */
function event(overrides: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  const { pool = 'stability', path = 'v2beta/stable-image/generate/core' } = overrides.pathParameters ?? {};
  return {
    resource: '/pools/{pool}/proxy/{path+}',
    path: `/pools/${pool}/proxy/${path}`,
    httpMethod: 'POST',
    headers: { 'Content-Type': 'multipart/form-data; boundary=b', 'Idempotency-Key': 'job-7' },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { pool, path },
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      identity: { userArn: 'arn:aws:sts::123456789012:assumed-role/app/worker', caller: 'AROAEXAMPLE:worker' },
    } as APIGatewayProxyEvent['requestContext'],
    ...overrides,
  };
}

/** Runs the handler over one event with a proxy doing `handle`, into a fresh fake stream. */
async function invoke(
  handle: (call: ProxyCall, sink: ResponseSink) => Promise<void>,
  input: APIGatewayProxyEvent = event(),
  stream = new FakeResponseStream(),
  stackMetrics: StackMetricsSink = { publishStack: () => undefined },
): Promise<{ stream: FakeResponseStream; calls: ProxyCall[] }> {
  const calls: ProxyCall[] = [];
  const proxy: ProxyHandle = (call, sink) => {
    calls.push(call);
    return handle(call, sink);
  };
  await streamingProxyHandler(() => proxy, LOCAL_RUNTIME, stackMetrics)(input, stream, CONTEXT);
  // Every chunk written has reached the fake caller (or the stream failed).
  await finished(stream).catch(() => undefined);
  return { stream, calls };
}

/** A use case that answers `status` with no body. */
const answerEmpty =
  (status: number) =>
  (_call: ProxyCall, sink: ResponseSink): Promise<void> => {
    sink.start(status, {});
    sink.end();
    return Promise.resolve();
  };

describe('the proxy Lambda handler', () => {
  it('hands the use case the pool and provider path IAM authorized, the query re-encoded, the headers in lower case, the body byte for byte, the caller', async () => {
    // Prepare: every byte value, as a multipart upload carries them.
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const input = event({
      body: bytes.toString('base64'),
      isBase64Encoded: true,
      multiValueQueryStringParameters: { seed: ['1', '2'], 'x y': ['ü&='] },
    });
    // Act
    const { calls } = await invoke(answerEmpty(204), input);
    // Assess
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call).toMatchObject({
      pool: 'stability',
      method: 'POST',
      path: 'v2beta/stable-image/generate/core',
      query: 'seed=1&seed=2&x%20y=%C3%BC%26%3D',
      headers: { 'content-type': 'multipart/form-data; boundary=b', 'idempotency-key': 'job-7' },
      idempotencyKey: 'job-7',
      caller: 'arn:aws:sts::123456789012:assumed-role/app/worker',
    });
    expect(Buffer.from(call?.body ?? new Uint8Array()).equals(bytes)).toBe(true);
    // The invocation's time left, which bounds any failover's next provider call.
    expect(call?.remainingMs?.()).toBe(LEFT_MS);
  });

  it('takes a GET without body, headers or query as a poll', async () => {
    // Act
    const { calls } = await invoke(
      answerEmpty(202),
      event({ httpMethod: 'GET', headers: null as never, pathParameters: { pool: 'p', path: 'v2beta/results/abc' } }),
    );
    // Assess
    expect(calls[0]).toEqual({
      pool: 'p',
      method: 'GET',
      path: 'v2beta/results/abc',
      query: '',
      headers: {},
      caller: 'arn:aws:sts::123456789012:assumed-role/app/worker',
      remainingMs: expect.any(Function) as unknown,
    });
  });

  it('encodes the path parameters API Gateway decoded again, segment by segment, and joins a repeated header', async () => {
    // Act
    const { calls } = await invoke(
      answerEmpty(200),
      event({
        httpMethod: 'GET',
        pathParameters: { pool: 'sdxl.turbo', path: 'v2beta/results/a b' },
        multiValueHeaders: { Accept: ['image/*', 'application/json'] },
      }),
    );
    // Assess: the use case decodes each segment once (lib/domain/proxy-paths.ts).
    expect(calls[0]).toMatchObject({
      pool: 'sdxl.turbo',
      path: 'v2beta/results/a%20b',
      headers: { accept: 'image/*, application/json' },
    });
  });

  it("streams the answer: status and headers in the metadata prelude, then the body's chunks in order", async () => {
    // Act
    const { stream } = await invoke(async (_call, sink) => {
      sink.start(200, { 'content-type': 'image/png', 'x-keypool-outcome': 'success' });
      for (const part of ['first ', 'second ', 'third']) await sink.write(Buffer.from(part));
      sink.end();
    });
    // Assess
    const { metadata, body } = stream.answer();
    expect(metadata).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'image/png', 'x-keypool-outcome': 'success' },
    });
    expect(body.toString('utf8')).toBe('first second third');
    expect(stream.writableEnded).toBe(true);
  });

  it("answers a refusal made before the first byte with keypool's JSON error, its status and Retry-After", async () => {
    // Act
    const { stream } = await invoke(() => Promise.reject(new NoUsableKey('stability', 3, 42)));
    // Assess
    const { metadata, body } = stream.answer();
    expect(metadata.statusCode).toBe(409);
    expect(metadata.headers).toMatchObject({ 'content-type': 'application/json', 'retry-after': '42' });
    expect(JSON.parse(body.toString('utf8'))).toMatchObject({ error: 'no_usable_key', retryAfterSeconds: 42 });
  });

  it(`refuses a body over ${AWS_PROXY_MAX_BODY_BYTES} bytes with 413 before the use case runs`, async () => {
    // Prepare
    const input = event({ body: Buffer.alloc(AWS_PROXY_MAX_BODY_BYTES + 1).toString('base64'), isBase64Encoded: true });
    // Act
    const { stream, calls } = await invoke(() => Promise.reject(new Error('never called')), input);
    // Assess
    expect(calls).toEqual([]);
    const { metadata, body } = stream.answer();
    expect(metadata.statusCode).toBe(413);
    expect(JSON.parse(body.toString('utf8'))).toMatchObject({ error: 'payload_too_large' });
  });

  it.each([
    ['the pool', { pathParameters: { pool: 'stability\ud800', path: 'v2beta/x' } }, 'path.pool'],
    ['the provider path', { pathParameters: { pool: 'stability', path: 'v2beta/\udc00x' } }, 'path.path'],
    ['a query value', { multiValueQueryStringParameters: { seed: ['1', '\ud800'] } }, 'query.seed'],
    ['a query name', { multiValueQueryStringParameters: { ['s\udfff']: ['1'] } }, 'query'],
  ] satisfies [string, Partial<APIGatewayProxyEvent>, string][])(
    'refuses a lone UTF-16 surrogate in %s with 400 invalid_request before the use case runs',
    async (_where, overrides, path) => {
      // Prepare: API Gateway hands the path parameters and the query over decoded, as JSON text.
      const input = event(overrides);
      // Act
      const { stream, calls } = await invoke(() => Promise.reject(new Error('never called')), input);
      // Assess
      expect(calls).toEqual([]);
      const { metadata, body } = stream.answer();
      expect(metadata.statusCode).toBe(400);
      expect(JSON.parse(body.toString('utf8'))).toMatchObject({
        error: 'invalid_request',
        message: expect.stringContaining('lone UTF-16 surrogate') as unknown,
        details: [{ path }],
      });
    },
  );

  it.each([
    ['a raw `..` in path', { path: '/pools/a/proxy/../../stability/proxy/v2beta/stable-image/generate/core' }],
    ['`%2e%2e` in path', { path: '/pools/a/proxy/%2e%2e/%2e%2e/stability/proxy/v2beta/stable-image/generate/core' }],
    ['`%2E%2E` in path', { path: '/pools/a/proxy/%2E%2E/%2E%2E/stability/proxy/v2beta/stable-image/generate/core' }],
    ['mixed `%2e.` in path', { path: '/pools/a/proxy/%2e./.%2E/stability/proxy/v2beta/stable-image/generate/core' }],
    ['a `.` segment in path', { path: '/pools/stability/proxy/./v2beta/stable-image/generate/core' }],
    [
      'a `..` in requestContext.path only',
      {
        requestContext: {
          ...event().requestContext,
          path: '/prod/pools/a/proxy/../../stability/proxy/v2beta/stable-image/generate/core',
        },
      },
    ],
    [
      'a pool segment in path other than the pool matched',
      { path: '/pools/a/proxy/v2beta/stable-image/generate/core' },
    ],
    [
      'a pool segment in requestContext.path other than the pool matched',
      { requestContext: { ...event().requestContext, path: '/prod/pools/a/proxy/v2beta/stable-image/generate/core' } },
    ],
  ] satisfies [string, Partial<APIGatewayProxyEvent>][])(
    'refuses %s with 400 invalid_request naming `path` before the use case runs',
    async (_what, overrides) => {
      // Act: API Gateway matched pool `stability`; IAM authorized the path as sent.
      const { stream, calls } = await invoke(() => Promise.reject(new Error('never called')), event(overrides));
      // Assess
      expect(calls).toEqual([]);
      const { metadata, body } = stream.answer();
      expect(metadata.statusCode).toBe(400);
      expect(JSON.parse(body.toString('utf8'))).toMatchObject({
        error: 'invalid_request',
        details: [{ path: 'path' }],
      });
    },
  );

  it('serves a path whose stage-prefixed requestContext.path names the pool matched', async () => {
    // Prepare
    const input = event({
      requestContext: {
        ...event().requestContext,
        path: '/prod/pools/stability/proxy/v2beta/stable-image/generate/core',
        resourcePath: '/pools/{pool}/proxy/{path+}',
      },
    });
    // Act
    const { calls } = await invoke(answerEmpty(200), input);
    // Assess
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ pool: 'stability', path: 'v2beta/stable-image/generate/core' });
  });

  it('answers an unknown error as 500 "internal error", never with its message', async () => {
    // Act
    const { stream } = await invoke(() => Promise.reject(new Error('sk-test-should-never-show')));
    // Assess
    const { metadata, body } = stream.answer();
    expect(metadata.statusCode).toBe(500);
    expect(body.toString('utf8')).not.toContain('sk-test');
    expect(JSON.parse(body.toString('utf8'))).toEqual({ error: 'internal_error', message: 'internal error' });
  });

  const LAST = { keyId: 'kabc', attempts: 2, outcome: 'failure' as const };
  it.each([
    ['an unknown error', () => new Error('boom'), 500, 1],
    ['the key service failing', () => new SealingUnavailable('open', ['KMSInternalException']), 503, 1],
    ['a busy table', () => new StoreThrottled({ reason: 'throttled', dynamoCode: 'ThrottlingException' }), 503, 1],
    ['the provider out of reach on every key', () => new ProviderFailed(LAST, false), 502, 0],
    ['the provider not answering in time', () => new ProviderTimeout(LAST, 60), 504, 0],
    ['a dry pool', () => new NoUsableKey('stability', 3), 409, 0],
  ])(
    "counts a 5xx as keypool's own (ProxyKeypool5xx, no dimension) only when keypool failed: %s answers %i, counted %i",
    async (_what, error, status, counted) => {
      // Prepare
      const published: Readonly<Record<string, number>>[] = [];
      // Act
      const { stream } = await invoke(() => Promise.reject(error()), event(), new FakeResponseStream(), {
        publishStack: (values) => void published.push(values),
      });
      // Assess
      expect(stream.answer().metadata.statusCode).toBe(status);
      expect(published).toEqual(Array.from({ length: counted }, () => ({ [STACK_METRIC.proxyKeypool5xx]: 1 })));
    },
  );

  it("never counts the provider's own 5xx passed through as keypool's", async () => {
    // Prepare
    const published: Readonly<Record<string, number>>[] = [];
    // Act
    const { stream } = await invoke(answerEmpty(503), event(), new FakeResponseStream(), {
      publishStack: (values) => void published.push(values),
    });
    // Assess
    expect(stream.answer().metadata.statusCode).toBe(503);
    expect(published).toEqual([]);
  });

  it('writes a stack-wide count as an EMF record with an empty dimension set and no pool', () => {
    // Act
    const record: unknown = JSON.parse(
      emfRecord('keypool', undefined, { [STACK_METRIC.proxyKeypool5xx]: 1 }, 1_700_000_000_000),
    );
    // Assess: "A DimensionSet MAY be empty" (the EMF specification): one metric for the whole stack.
    expect(record).toEqual({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          { Namespace: 'keypool', Dimensions: [[]], Metrics: [{ Name: 'ProxyKeypool5xx', Unit: 'Count' }] },
        ],
      },
      ProxyKeypool5xx: 1,
    });
  });

  it("cuts the answer when the provider's body breaks off after the first byte: the stream fails, no JSON follows", async () => {
    // Act
    const { stream } = await invoke(async (_call, sink) => {
      sink.start(200, { 'content-type': 'image/png' });
      await sink.write(Buffer.from('partial'));
      throw new Error('reset');
    });
    // Assess
    expect(stream.destroyed).toBe(true);
    expect(stream.errored?.message).toContain('broke off');
    // What had not reached the caller yet is dropped with the stream: the answer is cut, never completed.
    expect(Buffer.concat(stream.chunks).toString('utf8')).not.toContain('"error"');
  });
});

describe("the runtime's streaming API", () => {
  it("is the local stand-in where a library made `awslambda` an object without streamifyResponse, and Lambda's where it has one", () => {
    // Prepare: what @aws/lambda-invoke-store leaves outside Lambda, then what Lambda's runtime provides.
    const global = globalThis as unknown as { awslambda?: unknown };
    const before = global.awslambda;
    const lambdas = { ...LOCAL_RUNTIME };
    try {
      // Act / Assess
      global.awslambda = {};
      expect(lambdaRuntime()).toBe(LOCAL_RUNTIME);
      global.awslambda = lambdas;
      expect(lambdaRuntime()).toBe(lambdas);
    } finally {
      global.awslambda = before;
    }
  });
});

describe("the response sink over Lambda's stream", () => {
  it('waits for the stream to drain: a slow caller never has more than its buffer and a chunk waiting', async () => {
    // Prepare: a 1 KiB buffer, 1 ms per chunk, 64 chunks of 512 bytes.
    const stream = new FakeResponseStream({ highWaterMark: 1024, delayMs: 1 });
    const sink = new LambdaResponseSink(stream, LOCAL_RUNTIME);
    sink.start(200, {});
    // Act
    for (let i = 0; i < 64; i++) await sink.write(Buffer.alloc(512, i));
    sink.end();
    await new Promise((resolve) => stream.once('finish', resolve));
    // Assess
    expect(stream.maxBuffered).toBeLessThanOrEqual(1024 + 512);
    expect(stream.answer().body.length).toBe(64 * 512);
  });

  it('is closed once the caller went away, and drops later writes instead of failing the use case', async () => {
    // Prepare
    const stream = new FakeResponseStream();
    const sink = new LambdaResponseSink(stream, LOCAL_RUNTIME);
    sink.start(200, {});
    await sink.write(Buffer.from('before'));
    // Act: the connection closes under the function.
    stream.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    // Assess
    expect(sink.closed).toBe(true);
    await expect(sink.write(Buffer.from('after'))).resolves.toBeUndefined();
    expect(() => sink.end()).not.toThrow();
    expect(Buffer.concat(stream.chunks).toString('utf8')).not.toContain('after');
  });

  it('starts once: a second start is a bug, not a second prelude', () => {
    // Prepare
    const sink = new LambdaResponseSink(new FakeResponseStream(), LOCAL_RUNTIME);
    sink.start(200, {});
    // Act / Assess
    expect(() => sink.start(500, {})).toThrow(/already started/);
  });
});
