/**
 * The local HTTP server: each request becomes an API Gateway HTTP API (payload v2) event
 * and is answered by the same Lambda handler that serves the route on AWS. The handlers are
 * given to it (bin/local-handlers.ts loads the real ones), so the server knows only the route table.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { errorAnswer, LOCAL_SERVER_STATUS, type LocalServerRefusal, PayloadTooLarge } from '../http/errors.js';
import { MAX_BODY_BYTES } from '../http/http-handler.js';
import { DEFAULT_ROUTE_FUNCTION, type FunctionName, matchRoute, ROUTES } from '../http/routes.js';
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

/** The API Gateway v2 event for a request, as HTTP APIs build it. */
export function toEvent(
  request: IncomingMessage,
  body: string,
): { event: APIGatewayProxyEventV2; functionName: FunctionName } {
  // Prefixed, not resolved against a base: a path starting with // would otherwise be read as a host (and throw).
  const url = new URL(`http://localhost${request.url ?? '/'}`);
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
    isBase64Encoded: false,
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
function refuse(request: IncomingMessage): { error: LocalServerRefusal; message: string } | undefined {
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

/** Reads the body up to the limit; past it, answers 413 and returns undefined. */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  return tooLarge ? undefined : Buffer.concat(chunks).toString('utf8');
}

/** The running local server: its URL, and how to stop it. */
export type LocalServer = Listening;

/** Serves the API on 127.0.0.1:`port` (0: any free port) through the given handlers. */
export function startServer(handlers: Record<FunctionName, LambdaHandler>, port: number): Promise<LocalServer> {
  const server = createServer((request, response) => {
    void (async () => {
      try {
        const refusal = refuse(request);
        if (refusal) {
          request.resume();
          send(response, LOCAL_SERVER_STATUS[refusal.error], JSON.stringify(refusal));
          return;
        }
        const body = await readBody(request);
        if (body === undefined) {
          const tooLarge = errorAnswer(new PayloadTooLarge(MAX_BODY_BYTES));
          send(response, tooLarge.status, JSON.stringify(tooLarge.body));
          return;
        }
        const { event, functionName } = toEvent(request, body);
        const result = await handlers[functionName](event, lambdaContext(`keypool-${functionName}`));
        const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]));
        send(response, result.statusCode ?? 200, typeof result.body === 'string' ? result.body : '', headers);
      } catch {
        const internal = errorAnswer(undefined);
        if (!response.headersSent) send(response, internal.status, JSON.stringify(internal.body));
        else response.destroy();
      }
    })();
  });
  return listenOnLoopback(server, port);
}
