/**
 * The console: a read-only web page on 127.0.0.1 over the same stores the CLI reads (the
 * Overview use case), for an operator's browser. Server-rendered HTML, its own stylesheet and a
 * few lines of script, nothing fetched from anywhere else: every answer carries a strict
 * Content-Security-Policy. GET and HEAD only; a request addressed to another Host or sent by a
 * page of another origin is refused by the local server's own rule (lib/shared/loopback.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { InvalidRequest, PoolNotFound, StoreThrottled } from '../domain/errors.js';
import { POOL_NAME_PATTERN, POOL_NAME_RULE } from '../domain/pool-name.js';
import { listenOnLoopback, type Listening } from '../shared/listen.js';
import { foreignRequest } from '../shared/loopback.js';
import { deniedPermission, storeFailure } from '../shared/store-failure.js';
import type { Overview } from '../use-cases/overview.js';
import { CONSOLE_CSS, CONSOLE_JS } from './assets.js';
import { type Html, page, type PageFrame, REFRESH_SECONDS } from './html.js';
import { keysView, messageView, poolsView, runsView } from './views.js';

/** How many maintenance runs the runs view lists. */
export const RUNS_SHOWN = 50;
/** The largest page of keys the keys view asks for (the API's own limit). */
const MAX_PAGE = 1000;

/** Sent with every answer: nothing but the console's own script, style and images, no framing, no referrer, no cache. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const HTML_TYPE = 'text/html; charset=utf-8';

interface Answer {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

/** What the console reads through: the Overview use case. */
export type ConsoleSource = Pick<Overview, 'pools' | 'keys' | 'runs'>;

export interface ConsoleOptions {
  source: ConsoleSource;
  /** the table `source` reads: named when DynamoDB refuses a read without naming it */
  tableName: string;
  /** 0: any free port */
  port: number;
  /** told about an error the page answered 500 for (the page itself says only "internal error") */
  onError?: (error: unknown) => void;
}

/** The running console: its URL, and how to stop it. */
export type RunningConsole = Listening;

/** Where a page stands: its own path and query, and whether it reloads itself. */
type Place = Pick<PageFrame, 'path' | 'query' | 'paused'>;

/** The place of the page `url` asks for. */
function placeOf(url: URL): Place {
  return {
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    paused: url.searchParams.get('refresh') === 'off',
  };
}

/** A refusal's page stays as it is: reloading it would answer the same. */
const STILL: Place = { path: '/', query: {}, paused: true };

function refusal(
  status: number,
  title: string,
  message: string,
  headers: Record<string, string> = {},
  place: Place = STILL,
): Answer {
  const body = page({ title, readAt: new Date().toISOString(), ...place, body: messageView(title, message) });
  return { status, type: HTML_TYPE, body, headers };
}

/**
 * Why the table cannot be read now, in a sentence, when the reason is one an operator can act on
 * or wait out (nothing answers, no such table, no credentials, credentials without the permission,
 * throttled); undefined otherwise.
 */
function unreadable(error: unknown, tableName: string): string | undefined {
  if (error instanceof StoreThrottled)
    return `DynamoDB is throttling the table's reads (${error.busy.dynamoCode}), even after the SDK's retries.`;
  switch (storeFailure(error)) {
    case 'unreachable':
      return 'DynamoDB does not answer at the endpoint the console reads: for the local stack, is npm start running?';
    case 'not_dynamodb':
      return "Something answers at the endpoint the console reads, but not as DynamoDB: KEYPOOL_DYNAMODB_LOCAL_PORT or KEYPOOL_DYNAMODB_ENDPOINT must name DynamoDB's port (the DynamoDB line npm start prints), not the API's or the console's.";
    case 'missing_table':
      return 'The table does not exist at the endpoint the console reads (npm start creates the local one).';
    case 'no_credentials':
      return 'No AWS credentials were found to read the table: set a profile, or KEYPOOL_DYNAMODB_ENDPOINT for a local table.';
    case 'access_denied':
      // What it reads: the pool-keys index (pools, keys, runs), the pool and key records, their batches.
      return `The AWS credentials in use are not allowed ${deniedPermission(error, tableName)}: the console reads with dynamodb:Query, dynamodb:GetItem and dynamodb:BatchGetItem on the table and its indexes.`;
    default:
      return undefined;
  }
}

/** The keys view's page size from `?limit=`: a whole number 1..1000, or the API's default when absent. */
function pageLimit(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_PAGE) {
    throw new InvalidRequest(`limit must be a whole number from 1 to ${MAX_PAGE}`);
  }
  return Number(raw);
}

/**
 * The pool a `/pools/<name>` path names, decoded; undefined for any other path. A name no pool
 * can have is refused here, before it reaches the table (a name too long for a DynamoDB key would
 * fail there) or the page (the refusal never repeats it).
 */
function poolOf(pathname: string): string | undefined {
  const match = /^\/pools\/([^/]+)$/.exec(pathname);
  if (!match?.[1]) return undefined;
  let pool: string;
  try {
    pool = decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
  // The pattern, not the zod schema: this module is in every process that seals (wiring-secrets),
  // the maintain function's among them, where zod's schemas are not wanted.
  if (!POOL_NAME_PATTERN.test(pool)) throw new InvalidRequest(`a pool is ${POOL_NAME_RULE}`);
  return pool;
}

async function route(source: ConsoleSource, url: URL): Promise<Answer> {
  const place = placeOf(url);
  const { paused } = place;
  const view = (title: string, readAt: string, body: Html): Answer => ({
    status: 200,
    type: HTML_TYPE,
    body: page({ title, readAt, ...place, body }),
  });
  if (url.pathname === '/console.css') return { status: 200, type: 'text/css; charset=utf-8', body: CONSOLE_CSS };
  if (url.pathname === '/console.js') return { status: 200, type: 'text/javascript; charset=utf-8', body: CONSOLE_JS };
  if (url.pathname === '/') {
    const read = await source.pools();
    return view('Pools', read.readAt, poolsView(read.data, paused));
  }
  if (url.pathname === '/runs') {
    const read = await source.runs(RUNS_SHOWN);
    return view('Maintenance runs', read.readAt, runsView(read.data));
  }
  const pool = poolOf(url.pathname);
  if (pool === undefined) return refusal(404, 'Not found', 'The console has no such page.');
  const limit = pageLimit(url.searchParams.get('limit'));
  const cursor = url.searchParams.get('cursor') ?? undefined;
  const read = await source.keys(pool, {
    ...(cursor === undefined ? {} : { cursor }),
    ...(limit === undefined ? {} : { limit }),
  });
  return view(
    `Pool ${pool}`,
    read.readAt,
    keysView({ ...read.data.page, policy: read.data.policy, from: cursor, limit, readAt: read.readAt, paused }),
  );
}

async function answer(request: IncomingMessage, options: ConsoleOptions): Promise<Answer> {
  const foreign = foreignRequest(request.headers);
  if (foreign === 'host')
    return refusal(403, 'Forbidden', 'The console answers only requests addressed to 127.0.0.1, localhost or [::1].');
  if (foreign === 'origin')
    return refusal(403, 'Forbidden', 'The console answers no request a page of another origin sends.');
  const method = request.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD')
    return refusal(405, 'Method not allowed', 'The console is read-only: GET and HEAD only.', { allow: 'GET, HEAD' });
  // Prefixed, not resolved against a base: a path starting with // would otherwise be read as a host.
  const url = new URL(`http://localhost${request.url ?? '/'}`);
  try {
    return await route(options.source, url);
  } catch (error) {
    if (error instanceof PoolNotFound) return refusal(404, 'No such pool', error.message);
    if (error instanceof InvalidRequest) return refusal(400, 'Bad request', error.message);
    const why = unreadable(error, options.tableName);
    // The page reloads itself as it would have: an open console recovers once the table answers.
    if (why !== undefined)
      return refusal(503, 'Table unavailable', why, { 'retry-after': String(REFRESH_SECONDS) }, placeOf(url));
    options.onError?.(error);
    return refusal(500, 'Internal error', 'internal error');
  }
}

function send(request: IncomingMessage, response: ServerResponse, result: Answer): void {
  response.writeHead(result.status, {
    ...CONSOLE_HEADERS,
    ...result.headers,
    'content-type': result.type,
    'content-length': Buffer.byteLength(result.body),
  });
  response.end(request.method === 'HEAD' ? undefined : result.body);
}

/** Serves the console on 127.0.0.1:`port` (0: any free port). */
export function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const server = createServer((request, response) => {
    // A body is never read: nothing the console answers takes one.
    request.resume();
    void answer(request, options).then(
      (result) => send(request, response, result),
      (error: unknown) => {
        options.onError?.(error);
        if (!response.headersSent) send(request, response, refusal(500, 'Internal error', 'internal error'));
        else response.destroy();
      },
    );
  });
  return listenOnLoopback(server, options.port);
}
