/**
 * Proxy mode's Lambda edge: a streaming handler (`awslambda.streamifyResponse`) that reads the
 * REST API's proxy event into a proxied call, hands the use case a ResponseSink over Lambda's
 * response stream (status and headers in the HTTP metadata prelude, then the body with
 * backpressure), and answers a refusal made before the first byte as `{ error, message }`.
 * The `awslambda` global exists only in Lambda's Node.js runtime; elsewhere (tests, Node 20)
 * a local stand-in writes the same wire format: the metadata as JSON, eight NUL bytes, the body.
 */
import type { Writable } from 'node:stream';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { AWS_PROXY_MAX_BODY_BYTES } from './proxy-route.js';
import { errorAnswer, PayloadTooLarge } from './errors.js';
import { logger } from '../observability/logger.js';
import { redact } from '../shared/redact.js';
import type { ResponseSink } from '../ports/proxy.js';

/** A proxied request as the use case takes it (lib/use-cases/proxy.ts ProxyCall). */
export interface ProxyCallInput {
  pool: string;
  method: 'GET' | 'POST';
  /** the provider path, without a leading slash */
  path: string;
  /** the query string without `?`, percent-encoded; '' for none */
  query: string;
  /** the caller's headers, names in lower case */
  headers: Record<string, string>;
  body?: Uint8Array;
  idempotencyKey?: string;
  /** the IAM identity API Gateway authorized */
  caller?: string;
}

/** What the handler calls: the proxy use case, or anything that answers a call through a sink. */
export interface ProxyHandling {
  handle(call: ProxyCallInput, sink: ResponseSink): Promise<void>;
}

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

/** RFC 3986 percent-encoding, as SigV4 and the provider read a query. */
const encode = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The call a REST API proxy event asks for. The pool and the provider path are the path
 * parameters IAM authorized (`/pools/{pool}/proxy/{path+}`); the query is re-encoded from the
 * decoded values the event carries; the body arrives base64-encoded (every media type is binary
 * on this API) and is refused over AWS_PROXY_MAX_BODY_BYTES before anything else happens.
 */
export function proxyCallOf(event: APIGatewayProxyEvent): ProxyCallInput {
  const body =
    event.body === null || event.body === ''
      ? undefined
      : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  if (body && body.byteLength > AWS_PROXY_MAX_BODY_BYTES) throw new PayloadTooLarge(AWS_PROXY_MAX_BODY_BYTES);
  const headers = Object.fromEntries(
    // A REST API event's headers are null when the request has none, whatever the type says.
    Object.entries((event.headers as APIGatewayProxyEvent['headers'] | null) ?? {}).flatMap(([name, value]) =>
      value === undefined ? [] : [[name.toLowerCase(), value]],
    ),
  );
  const query = Object.entries(event.multiValueQueryStringParameters ?? {})
    .flatMap(([name, values]) => (values ?? []).map((value) => `${encode(name)}=${encode(value)}`))
    .join('&');
  const caller = event.requestContext.identity.userArn;
  const idempotencyKey = headers['idempotency-key'];
  return {
    pool: event.pathParameters?.pool ?? '',
    method: event.httpMethod === 'GET' ? 'GET' : 'POST',
    path: event.pathParameters?.path ?? '',
    query,
    headers,
    ...(body ? { body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) } : {}),
    ...(idempotencyKey ? { idempotencyKey } : {}),
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

  /** whether start() has run (the metadata prelude is out) */
  get started(): boolean {
    return this.#out !== undefined;
  }

  start(status: number, headers: Record<string, string>): void {
    if (this.#out) throw new Error('the answer has already started');
    this.#out = this.runtime.HttpResponseStream.from(this.raw, { statusCode: status, headers });
  }

  async write(chunk: Uint8Array): Promise<void> {
    const out = this.#out;
    if (!out) throw new Error('write before start');
    if (this.closed) return;
    if (out.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('close', done);
        out.off('error', done);
        resolve();
      };
      out.once('drain', done);
      out.once('close', done);
      out.once('error', done);
    });
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

/** Answers an error: `{ error, message }` when nothing went out yet, else a cut answer. */
async function answerError(error: unknown, sink: LambdaResponseSink): Promise<void> {
  const answer = errorAnswer(error);
  if (!answer.known) {
    const failure = error as Error | undefined;
    logger.error('internal error', {
      errorName: failure?.name ?? 'unknown',
      errorMessage: redact(failure?.message ?? ''),
    });
  }
  if (sink.started) return sink.fail();
  sink.start(answer.status, { 'content-type': 'application/json', ...answer.headers });
  await sink.write(new TextEncoder().encode(JSON.stringify(answer.body)));
  sink.end();
}

/**
 * The proxy function's handler: each invocation reads its event, builds the sink over its
 * response stream and runs the proxy (built on first use by `proxy`); every error before the
 * first byte becomes keypool's JSON error answer.
 */
export function streamingProxyHandler(
  proxy: () => ProxyHandling,
  runtime: LambdaStreamingRuntime = lambdaRuntime(),
): StreamingHandler {
  return runtime.streamifyResponse(async (event, stream, context) => {
    logger.addContext(context);
    const sink = new LambdaResponseSink(stream, runtime);
    try {
      await proxy().handle(proxyCallOf(event), sink);
    } catch (error) {
      await answerError(error, sink);
    }
  });
}
