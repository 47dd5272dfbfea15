/**
 * The local HTTP server: each request becomes an API Gateway HTTP API (payload v2) event
 * and is answered by the same Lambda handler that serves the route on AWS. The handlers are
 * given to it (bin/local-handlers.ts loads the real ones), so the server knows only the route table.
 * The proxy route (`/pools/{pool}/proxy/{path}`) is the exception: its answer streams, so it is
 * served through the edge the proxy Lambda shares (lib/http/proxy-edge.ts), with any body type.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { errorAnswer, LOCAL_SERVER_STATUS, type LocalServerRefusal, PayloadTooLarge } from '../http/errors.js';
import { MAX_BODY_BYTES } from '../http/http-handler.js';
import { MAX_PROXY_BODY_BYTES, proxyRoute, serveProxy } from '../http/proxy-edge.js';
import { assertQueryText } from '../http/query-text.js';
import type { ProxyHandle } from '../ports/proxy-call.js';
import type { ResponseSink } from '../ports/proxy.js';
import { DEFAULT_ROUTE_FUNCTION, type FunctionName, matchRoute, ROUTES } from '../http/routes.js';
import { writeWithBackpressure } from '../shared/backpressure.js';
import { listenOnLoopback, type Listening } from '../shared/listen.js';
import { foreignRequest } from '../shared/loopback.js';

export type LambdaHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

function lambdaContext(functionName: string): Context {
  const deadline = Date.now() + 29_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as Context;
}

function decodeSegments(path: string): string | undefined {
  try {
    return path
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/');
  } catch {
    return undefined;
  }
}

/**
 * The API Gateway v2 event for a request, as HTTP APIs build it. The body is handed over as text,
 * or base64-encoded where its bytes are not UTF-8 (as API Gateway hands over bytes), so the
 * handler sees what was sent rather than U+FFFD in its place. A query whose percent-escapes do
 * not decode to UTF-8 has no place in an event (URLSearchParams would put U+FFFD there): it is
 * refused, InvalidRequest thrown (lib/http/query-text.ts).
 */
export function toEvent(
  request: IncomingMessage,
  bytes: Buffer,
): { event: APIGatewayProxyEventV2; functionName: FunctionName } {
  const text = bytes.toString('utf8');
  const isText = Buffer.from(text, 'utf8').equals(bytes);
  const body = isText ? text : bytes.toString('base64');
  // Prefixed, not resolved against a base: a path starting with // would otherwise be read as a host (and throw).
  const url = new URL(`http://localhost${request.url ?? '/'}`);
  assertQueryText(url.search.slice(1));
  const method = (request.method ?? 'GET').toUpperCase();
  const decoded = decodeSegments(url.pathname);
  const match = decoded === undefined ? undefined : matchRoute(method, url.pathname);
  const routeKey = match?.found ? match.routeKey : '$default';
  const params = match?.found
    ? Object.fromEntries(Object.entries(match.params).map(([k, v]) => [k, decodeURIComponent(v)]))
    : undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name] ?? ''},${value}` : value;
  const now = new Date();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(params ? { pathParameters: params } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: 'HTTP/1.1',
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body === '' ? {} : { body }),
    isBase64Encoded: !isText,
  };
  const functionName = match?.found ? ROUTES[match.routeKey].function : DEFAULT_ROUTE_FUNCTION;
  return { event, functionName };
}

function send(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  response.end(body);
}

const JSON_TYPE = /^application\/json\s*(;.*)?$/i;

/**
 * Why a request is refused before any handler runs, if it is: the local server has no IAM in
 * front of it, so a web page in a browser on this machine must not reach it, on any route.
 *  - A Host that is not a loopback name, or a request from a page of another origin
 *    (lib/shared/loopback.ts foreignRequest, the rule the console shares): 403 forbidden_host,
 *    403 forbidden_origin.
 *  - A Content-Type other than JSON, even on an empty body (`<form method=post>` with no
 *    fields sends `Content-Length: 0`), or a body with no Content-Type, is the "simple" request
 *    a browser sends without asking first (application/json makes it ask, and this server never
 *    says yes); every route takes JSON or nothing: 415 unsupported_media_type.
 */
function refuse(request: IncomingMessage, anyBody = false): { error: LocalServerRefusal; message: string } | undefined {
  const foreign = foreignRequest(request.headers);
  if (foreign === 'host') {
    return {
      error: 'forbidden_host',
      message: 'the local server answers only requests addressed to 127.0.0.1, localhost or [::1]',
    };
  }
  if (foreign === 'origin') {
    return {
      error: 'forbidden_origin',
      message: 'the local server answers no request a page of another origin sends (Origin, Sec-Fetch-Site)',
    };
  }
  // The proxy route forwards the caller's body as it is (multipart, JSON, bytes): its Origin and
  // Sec-Fetch-Site refusals above are what keep a web page from spending credits through it.
  if (anyBody) return undefined;
  const type = request.headers['content-type'];
  const hasBody =
    Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;
  if ((type !== undefined || hasBody) && !JSON_TYPE.test(type ?? '')) {
    return {
      error: 'unsupported_media_type',
      message: 'send a body as JSON, with Content-Type: application/json (or no body and no Content-Type)',
    };
  }
  return undefined;
}

/** Reads the body up to `limit` bytes; past it, undefined (the rest is read and dropped). */
async function readBody(request: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  return tooLarge ? undefined : Buffer.concat(chunks);
}

/** A 413 for a body over `limit`; the connection closes after it (the rest of the body is not read). */
function tooLarge(response: ServerResponse, limit: number): void {
  const answer = errorAnswer(new PayloadTooLarge(limit));
  send(response, answer.status, JSON.stringify(answer.body), { connection: 'close' });
}

/**
 * The caller's end of a proxied answer: the response, written no faster than the caller reads
 * it; once the caller is gone, writes are dropped (the use case goes on reading the provider).
 */
class ServerSink implements ResponseSink {
  private gone = false;
  constructor(private readonly response: ServerResponse) {
    response.once('close', () => {
      if (!response.writableFinished) this.gone = true;
    });
  }
  get closed(): boolean {
    return this.gone || this.response.destroyed;
  }
  start(status: number, headers: Record<string, string>): void {
    if (!this.closed) this.response.writeHead(status, headers);
  }
  write(chunk: Uint8Array): Promise<void> {
    return this.closed ? Promise.resolve() : writeWithBackpressure(this.response, chunk);
  }
  end(): void {
    if (!this.closed) this.response.end();
  }
  fail(): void {
    this.response.destroy();
  }
}

/** Serves a request to the proxy route: its body read whole (up to the limit), its answer streamed. */
async function proxied(request: IncomingMessage, response: ServerResponse, handle: ProxyHandle): Promise<void> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_PROXY_BODY_BYTES) {
    request.resume();
    return tooLarge(response, MAX_PROXY_BODY_BYTES);
  }
  const body = await readBody(request, MAX_PROXY_BODY_BYTES);
  if (body === undefined) return tooLarge(response, MAX_PROXY_BODY_BYTES);
  // The path as sent, not as a URL parser normalizes it: `..` and `%2e%2e` reach the use case's path rule.
  const [rawPath = '/', rawQuery = ''] = (request.url ?? '/').split(/\?(.*)/s, 2);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  await serveProxy(
    handle,
    { method: request.method ?? 'GET', rawPath, rawQuery, headers, ...(body.length ? { body } : {}) },
    new ServerSink(response),
  );
}

/** The running local server: its URL, and how to stop it. */
export type LocalServer = Listening;

/**
 * Serves the API on 127.0.0.1:`port` (0: any free port) through the given handlers, and the
 * proxy route through `proxy` when given.
 */
export function startServer(
  handlers: Record<FunctionName, LambdaHandler>,
  port: number,
  proxy?: ProxyHandle,
): Promise<LocalServer> {
  const server = createServer((request, response) => {
    void (async () => {
      try {
        const proxyRequest = proxy !== undefined && proxyRoute((request.url ?? '/').split('?')[0] ?? '/') !== undefined;
        const refusal = refuse(request, proxyRequest);
        if (refusal) {
          request.resume();
          send(response, LOCAL_SERVER_STATUS[refusal.error], JSON.stringify(refusal));
          return;
        }
        if (proxy && proxyRequest) return await proxied(request, response, proxy);
        const body = await readBody(request);
        if (body === undefined) {
          const answer = errorAnswer(new PayloadTooLarge(MAX_BODY_BYTES));
          send(response, answer.status, JSON.stringify(answer.body));
          return;
        }
        const { event, functionName } = toEvent(request, body);
        const result = await handlers[functionName](event, lambdaContext(`keypool-${functionName}`));
        const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]));
        send(response, result.statusCode ?? 200, typeof result.body === 'string' ? result.body : '', headers);
      } catch (error) {
        // A refusal (toEvent's) is its answer; anything else an internal error that says nothing more.
        const answer = errorAnswer(error);
        if (!response.headersSent) send(response, answer.status, JSON.stringify(answer.body));
        else response.destroy();
      }
    })();
  });
  return listenOnLoopback(server, port);
}
