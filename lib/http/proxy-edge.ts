/**
 * The proxy route's edge, shared by the local server and the proxy Lambda: turns a request
 * (method, raw path, query, headers, body) into one call of proxy mode's use case, and every
 * refusal thrown before the answer started into keypool's JSON error answer
 * (`{ error, message }`, lib/http/errors.ts). An error after the answer started can only cut
 * it: the caller sees a broken answer, never a JSON error glued to a provider's bytes.
 */
import { InvalidRequest } from '../domain/errors.js';
import { POOL_NAME_PATTERN, POOL_NAME_RULE } from '../domain/pool-name.js';
import { unsendableHeader } from '../domain/proxy-headers.js';
import { logger } from '../observability/logger.js';
import type { ProxyHandle } from '../ports/proxy-call.js';
import type { ResponseSink } from '../ports/proxy.js';
import { logErrorAnswer } from './error-log.js';
import { errorAnswer, isKeypoolFault, PayloadTooLarge } from './errors.js';
import { assertQueryText } from './query-text.js';
import { LeaseHeaders } from './schemas.js';
import { MethodNotAllowed } from './unmatched.js';

/** The local limit, for the local server (which may not import the domain): one definition, in lib/domain/proxy-body.ts. */
export { MAX_PROXY_BODY_BYTES } from '../domain/proxy-body.js';

/** `/pools/{pool}/proxy/{path+}`: the pool and the provider path, both as sent (percent-encoded). */
const PROXY_ROUTE = /^\/pools\/([^/]+)\/proxy\/(.*)$/s;

/** The pool and provider path of a request to the proxy route, or undefined for any other path. */
export function proxyRoute(rawPath: string): { pool: string; path: string } | undefined {
  const match = PROXY_ROUTE.exec(rawPath);
  return match ? { pool: match[1] ?? '', path: match[2] ?? '' } : undefined;
}

/** A request to the proxy route, as an edge received it. */
export interface ProxyEdgeRequest {
  method: string;
  /** the path as it arrived, still percent-encoded: /pools/{pool}/proxy/{path} */
  rawPath: string;
  /** the query string without `?`, as sent (percent-encoded); one that does not decode to UTF-8 is refused */
  rawQuery: string;
  /** header names in any case; a repeated header joined with ", " */
  headers: Readonly<Record<string, string | undefined>>;
  body?: Uint8Array;
  /** the IAM identity the edge authorized (undefined locally) */
  caller?: string;
  /** the milliseconds the edge has left (a Lambda's remaining time; undefined locally: no bound) */
  remainingMs?: () => number;
}

/** A sink that remembers whether the answer started (an error after that can only cut it). */
class TrackedSink implements ResponseSink {
  started = false;
  constructor(private readonly sink: ResponseSink) {}
  get closed(): boolean {
    return this.sink.closed;
  }
  start(status: number, headers: Record<string, string>): void {
    this.started = true;
    this.sink.start(status, headers);
  }
  write(chunk: Uint8Array): Promise<void> {
    return this.sink.write(chunk);
  }
  end(): void {
    this.sink.end();
  }
  fail(): void {
    this.sink.fail();
  }
}

/**
 * Checks what the edge can check and builds the use case's call; throws the refusal otherwise.
 * A body over `maxBodyBytes` is refused last, once the request is otherwise well formed.
 */
function proxyCallOf(request: ProxyEdgeRequest, maxBodyBytes = Infinity): Parameters<ProxyHandle>[0] {
  const method = request.method.toUpperCase();
  if (method !== 'GET' && method !== 'POST') throw new MethodNotAllowed(method, ['GET', 'POST']);
  const route = proxyRoute(request.rawPath);
  if (!route) throw new InvalidRequest('the proxy route is /pools/{pool}/proxy/{path}');
  let pool: string;
  try {
    pool = decodeURIComponent(route.pool);
  } catch {
    pool = '';
  }
  if (!POOL_NAME_PATTERN.test(pool)) {
    throw new InvalidRequest(`invalid path: path.pool: ${POOL_NAME_RULE}`, [
      { path: 'path.pool', message: POOL_NAME_RULE },
    ]);
  }
  // Passed on as sent once it is text. On AWS it arrives re-encoded from the text API Gateway
  // decoded (lib/http/lambda-stream.ts); a local request carries it as the caller sent it.
  assertQueryText(request.rawQuery);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  // The same rule as a lease's Idempotency-Key.
  const parsed = LeaseHeaders.safeParse(headers);
  if (!parsed.success) {
    throw new InvalidRequest('an Idempotency-Key is 1-255 printable ASCII characters without spaces', [
      { path: 'headers.idempotency-key', message: '1-255 printable ASCII characters without spaces' },
    ]);
  }
  const idempotencyKey = parsed.data['idempotency-key'];
  const unsendable = unsendableHeader(headers);
  if (unsendable !== undefined) {
    throw new InvalidRequest(`the ${unsendable} header holds a character no HTTP header can carry`, [
      { path: `headers.${unsendable}`, message: 'visible ASCII, spaces, tabs and Latin-1 only' },
    ]);
  }
  if ((request.body?.byteLength ?? 0) > maxBodyBytes) throw new PayloadTooLarge(maxBodyBytes);
  return {
    pool,
    method,
    path: route.path,
    query: request.rawQuery,
    headers,
    ...(request.body && request.body.byteLength > 0 ? { body: request.body } : {}),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    ...(request.caller === undefined ? {} : { caller: request.caller }),
    ...(request.remainingMs === undefined ? {} : { remainingMs: request.remainingMs }),
  };
}

/** Writes keypool's JSON error answer for `error` to a sink that has not started; returns the answer. */
function answerError(sink: ResponseSink, error: unknown): ReturnType<typeof errorAnswer> {
  const answer = errorAnswer(error);
  logErrorAnswer(error, answer);
  const body = new TextEncoder().encode(JSON.stringify(answer.body));
  sink.start(answer.status, {
    'content-type': 'application/json',
    'content-length': String(body.byteLength),
    ...answer.headers,
  });
  void sink.write(body).then(() => sink.end());
  return answer;
}

/**
 * Serves one request to the proxy route through `handle` (the use case's), answering to
 * `sink`; `request` may be a function that reads it from an edge's event, and refuse it by
 * throwing. Never throws: a refusal becomes its JSON answer, anything else a 500 that says
 * nothing more (and a log line without secrets), or a cut answer once the answer started.
 * A body over `options.maxBodyBytes` (an edge's own limit, smaller than the use case's) is
 * refused (413) before `handle` runs; without it the use case's limit is the one. Each error
 * answer that is keypool's own fault (isKeypoolFault), never the provider's, calls
 * `options.onKeypoolFault`.
 */
export async function serveProxy(
  handle: ProxyHandle,
  request: ProxyEdgeRequest | (() => ProxyEdgeRequest),
  sink: ResponseSink,
  options: { maxBodyBytes?: number; onKeypoolFault?: () => void } = {},
): Promise<void> {
  const tracked = new TrackedSink(sink);
  try {
    const read = typeof request === 'function' ? request() : request;
    await handle(proxyCallOf(read, options.maxBodyBytes), tracked);
  } catch (error) {
    if (!tracked.started) {
      if (isKeypoolFault(answerError(tracked, error))) options.onKeypoolFault?.();
    } else {
      logger.error('proxied answer cut', { errorName: (error as Error | undefined)?.name ?? 'unknown' });
      tracked.fail();
    }
  }
}
