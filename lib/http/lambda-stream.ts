/**
 * Proxy mode's Lambda edge: a streaming handler (`awslambda.streamifyResponse`) that reads the
 * REST API's proxy event into the request the shared proxy edge takes (lib/http/proxy-edge.ts,
 * as the local server does), with a ResponseSink over Lambda's response stream (status and
 * headers in the HTTP metadata prelude, then the body with backpressure).
 * The `awslambda` global exists only in Lambda's Node.js runtime; elsewhere (tests, Node 20)
 * a local stand-in writes the same wire format: the metadata as JSON, eight NUL bytes, the body.
 */
import type { Writable } from 'node:stream';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { AWS_PROXY_MAX_BODY_BYTES } from './proxy-route.js';
import { type ProxyEdgeRequest, serveProxy } from './proxy-edge.js';
import { notText } from './query-text.js';
import { assertRoutedPath } from './routed-path.js';
import { logger } from '../observability/logger.js';
import { STACK_METRIC } from '../observability/metric-names.js';
import { metrics, type StackMetricsSink } from '../observability/metrics.js';
import type { ResponseSink } from '../ports/proxy.js';
import type { ProxyHandle } from '../ports/proxy-call.js';
import { writeWithBackpressure } from '../shared/backpressure.js';
import { redact } from '../shared/redact.js';

/** The HTTP metadata prelude of a streamed answer. */
export interface StreamMetadata {
  statusCode: number;
  headers: Record<string, string>;
}

type StreamingHandler = (event: APIGatewayProxyEvent, stream: Writable, context: Context) => Promise<void>;

/** The part of Lambda's `awslambda` global a streaming handler uses. */
export interface LambdaStreamingRuntime {
  streamifyResponse(handler: StreamingHandler): StreamingHandler;
  HttpResponseStream: { from(stream: Writable, metadata: StreamMetadata): Writable };
}

/** Between the metadata and the body in Lambda's HTTP integration response stream. */
export const PRELUDE_DELIMITER = new Uint8Array(8);

/** Outside Lambda: the handler as it is, and the prelude written the way the runtime writes it. */
export const LOCAL_RUNTIME: LambdaStreamingRuntime = {
  streamifyResponse: (handler) => handler,
  HttpResponseStream: {
    from(stream, metadata) {
      stream.write(JSON.stringify(metadata));
      stream.write(PRELUDE_DELIMITER);
      return stream;
    },
  },
};

/**
 * Lambda's runtime when it is there, else the local stand-in. Its streamifyResponse is what
 * tells: @aws/lambda-invoke-store (under Powertools) makes `globalThis.awslambda` an empty
 * object wherever it loads. (@types/aws-lambda declares the global as always present.)
 */
export function lambdaRuntime(): LambdaStreamingRuntime {
  const found = (globalThis as unknown as { awslambda?: Partial<LambdaStreamingRuntime> }).awslambda;
  return typeof found?.streamifyResponse === 'function' ? (found as LambdaStreamingRuntime) : LOCAL_RUNTIME;
}

/**
 * Half of a character: JSON text (the event) can hold a lone UTF-16 surrogate, UTF-8 and so
 * percent-encoding cannot (encodeURIComponent throws on one).
 */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * RFC 3986 percent-encoding, as SigV4 and the provider read a query, of the text the event
 * carries at `where`; text with a lone surrogate is refused (400), naming where it was.
 */
function encode(text: string, where: string): string {
  if (LONE_SURROGATE.test(text)) {
    throw notText(where, 'a lone UTF-16 surrogate is half of a character, not text', 'a lone UTF-16 surrogate');
  }
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A path's segments, each percent-encoded again. */
const encodePath = (path: string, where: string): string =>
  path
    .split('/')
    .map((segment) => encode(segment, where))
    .join('/');

/**
 * The request a REST API proxy event carries, as the shared edge takes it. The pool and the
 * provider path are the path parameters IAM authorized (`/pools/{pool}/proxy/{path+}`), which
 * API Gateway hands over decoded: each segment is encoded again, as the request sent it. The
 * query is re-encoded from the decoded values the event carries; a repeated header is joined
 * with ", "; the body arrives base64-encoded (every media type is binary on this API). Throws
 * InvalidRequest for a pool, path or query holding a lone surrogate, which no URL can carry, and
 * for an event path with a dot segment or another pool than the one matched (routed-path.ts).
 */
export function proxyEdgeRequestOf(event: APIGatewayProxyEvent): ProxyEdgeRequest {
  // `requestContext.resourcePath` is the template; these two carry the path IAM authorized.
  assertRoutedPath([event.path, event.requestContext.path], event.pathParameters?.pool);
  const body =
    event.body === null || event.body === ''
      ? undefined
      : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  // A REST API event's headers are null when the request has none, whatever the type says.
  const multi = (event.multiValueHeaders as APIGatewayProxyEvent['multiValueHeaders'] | null) ?? {};
  const single = (event.headers as APIGatewayProxyEvent['headers'] | null) ?? {};
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(single)) if (value !== undefined) headers[name] = value;
  for (const [name, values] of Object.entries(multi)) if (values?.length) headers[name] = values.join(', ');
  const query = Object.entries(event.multiValueQueryStringParameters ?? {})
    .flatMap(([name, values]) => {
      // The name is checked first, so the place a value's refusal names is text.
      const encodedName = encode(name, 'query');
      const where = `query.${redact(name.slice(0, 64))}`;
      return (values ?? []).map((value) => `${encodedName}=${encode(value, where)}`);
    })
    .join('&');
  const caller = event.requestContext.identity.userArn;
  return {
    method: event.httpMethod,
    rawPath: `/pools/${encode(event.pathParameters?.pool ?? '', 'path.pool')}/proxy/${encodePath(event.pathParameters?.path ?? '', 'path.path')}`,
    rawQuery: query,
    headers,
    ...(body ? { body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) } : {}),
    ...(caller ? { caller: caller.slice(0, 512) } : {}),
  };
}

/**
 * A ResponseSink over Lambda's response stream. Writes wait for `drain` (backpressure); once the
 * stream closes or fails before the end (the caller went away, API Gateway cut an idle stream),
 * the sink is `closed` and later writes are dropped: the use case reads the provider's answer to
 * the end all the same, so its outcome is recorded and an Idempotency-Key keeps it.
 */
export class LambdaResponseSink implements ResponseSink {
  #out: Writable | undefined;
  #gone = false;
  #ended = false;

  constructor(
    private readonly raw: Writable,
    private readonly runtime: LambdaStreamingRuntime = lambdaRuntime(),
  ) {
    const gone = (): void => {
      if (!this.#ended) this.#gone = true;
    };
    raw.once('close', gone);
    raw.on('error', gone);
  }

  get closed(): boolean {
    return this.#gone || this.raw.destroyed;
  }

  start(status: number, headers: Record<string, string>): void {
    if (this.#out) throw new Error('the answer has already started');
    this.#out = this.runtime.HttpResponseStream.from(this.raw, { statusCode: status, headers });
  }

  async write(chunk: Uint8Array): Promise<void> {
    const out = this.#out;
    if (!out) throw new Error('write before start');
    if (!this.closed) await writeWithBackpressure(out, chunk);
  }

  end(): void {
    this.#ended = true;
    if (!this.closed) (this.#out ?? this.raw).end();
  }

  fail(): void {
    this.#ended = true;
    // A destroyed stream ends the invocation's answer early: the caller sees a cut body, never a whole-looking one.
    if (!this.closed) (this.#out ?? this.raw).destroy(new Error("the provider's answer broke off"));
  }
}

/**
 * The proxy function's handler: each invocation reads its event, builds the sink over its
 * response stream and serves it through the shared proxy edge with the use case's handle
 * (built on first use by `handle`). A body over AWS_PROXY_MAX_BODY_BYTES is refused (413) by
 * the edge before the use case runs; every refusal before the first byte is keypool's JSON error.
 * A 5xx that is keypool's own fault counts one ProxyKeypool5xx (the metric its alarm watches:
 * API Gateway's 5xx of the proxy count the provider's passed through as well).
 */
export function streamingProxyHandler(
  handle: () => ProxyHandle,
  runtime: LambdaStreamingRuntime = lambdaRuntime(),
  stackMetrics: StackMetricsSink = metrics,
): StreamingHandler {
  return runtime.streamifyResponse(async (event, stream, context) => {
    logger.addContext(context);
    // Built inside the edge's call, so a wiring that cannot be built is a 500 answered, not a crash.
    await serveProxy(
      (call, sink) => handle()(call, sink),
      // Read inside the edge's call, so an event it refuses is a 400 answered, not a crash.
      () => ({ ...proxyEdgeRequestOf(event), remainingMs: () => context.getRemainingTimeInMillis() }),
      new LambdaResponseSink(stream, runtime),
      {
        maxBodyBytes: AWS_PROXY_MAX_BODY_BYTES,
        onKeypoolFault: () => stackMetrics.publishStack({ [STACK_METRIC.proxyKeypool5xx]: 1 }),
      },
    );
  });
}
