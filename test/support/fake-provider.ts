/**
 * A fake Stability AI on loopback, shaped like the official API documents it:
 *   GET  /v1/user/account                   200 {"id", "email", "organizations": [{"id", "is_default", ...}]} | 401 | 429
 *                                           (the default organization is the key's account: its own
 *                                           `org-<key>` unless the key was given one)
 *   GET  /v1/user/balance                   200 {"credits": n} | 401 unauthorized | 429 | 500 server_error
 *                                           (a key of an account answers the account's credits)
 *                                           (and, to test the client's defences, a 302, an oversized 200,
 *                                           or any page in place of every answer: a WAF's 403 text/html)
 *   POST /v2beta/stable-image/generate/*,   200 image (or JSON with accept: application/json) | 400 | 401 |
 *        /v2beta/stable-image/edit/*,       402 payment_required | 403 content_moderation | 404 | 413 | 415 |
 *        /v1/generation/*                   422 | 429 (a forced one may carry Retry-After) | 500 | 503
 *   POST /v2beta/stable-image/upscale/creative, /v2beta/image-to-video
 *                                           200 {"id"}: an async job of that key
 *   GET  /v2beta/results/{id}                202 {"id","status":"in-progress"} while it runs, then 200 image;
 *                                           404 for an id another key started (or none)
 * Errors are in the documented shape (JSON `name`, `errors[]`). Each key is programmable
 * (balance, forced answers, an HTML page in place of the answer, delays, a large generated body,
 * a reset before answering or in the middle of the body); the provider-wide rate limit follows
 * Stability's (more than `max` requests in `windowMs`, then 429 for `timeoutMs`). Every
 * request is recorded with its arrival time, its headers and a digest of the bytes received,
 * so tests can count calls per key, measure requests per second and check an upload byte for
 * byte.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface FakeKey {
  /** the key's own credits; a key of an account (`account`) answers and spends the account's */
  credits: number;
  /** the organization the key belongs to (setAccount gives it credits shared by its keys) */
  account?: string;
  /** force this answer from the account endpoint */
  accountStatus?: 401 | 403 | 429 | 500;
  /** force this answer from the balance endpoint */
  balanceStatus?: 401 | 403 | 429 | 500 | 503;
  /** force this answer (in the documented error shape) from the generation endpoints */
  generateStatus?: 400 | 401 | 402 | 403 | 404 | 413 | 415 | 422 | 429 | 500 | 502 | 503;
  /** the Retry-After header of a forced 429 from the generation endpoint */
  retryAfter?: string;
  /** the generation endpoints answer this page instead (a WAF's `403 text/html`) */
  generatePage?: FakePage;
  /** a generation's image is this many bytes, generated as it is written (never held whole) */
  imageBytes?: number;
  /** the connection is reset once the request is read, before any answer */
  resetBeforeAnswer?: boolean;
  /** the answer's headers and part of its body go out, then the connection is reset */
  resetMidBody?: boolean;
  /** answer after this long (ms) */
  delayMs?: number;
  /** the balance endpoint answers this page instead for this key (a gateway in front of the provider) */
  balancePage?: FakePage;
  /** the balance endpoint answers 302 to this URL (the real API never redirects) */
  balanceRedirect?: string;
  /** the balance endpoint's 200 is padded to this many bytes, streamed without a content-length */
  balanceBodyBytes?: number;
}

/** A page answered in place of the provider's own answer. */
export interface FakePage {
  status: number;
  contentType: string;
  body: string;
}

export interface FakeRequest {
  /** arrival, ms since the epoch (performance-based for sub-ms ordering) */
  at: number;
  method: string;
  path: string;
  apiKey: string | undefined;
  status: number;
  /** the request's headers as they arrived */
  headers: IncomingMessage['headers'];
  /** the query string, without `?` */
  query: string;
  /** how many body bytes arrived, and their SHA-256 (hex): an upload checked byte for byte */
  bytes: number;
  sha256: string;
}

export interface FakeRateLimit {
  max: number;
  windowMs: number;
  timeoutMs: number;
}

/** What one Core image costs, in credits. */
export const IMAGE_COST = 3;
/** A prompt containing this word is refused with 403 content_moderation. */
export const MODERATED_WORD = 'forbidden';
/** The PNG signature and an IEND chunk: enough for a test to recognise "an image". */
export const FAKE_PNG = Buffer.from('89504e470d0a1a0a0000000049454e44ae426082', 'hex');

export class FakeProvider {
  readonly keys = new Map<string, FakeKey>();
  readonly requests: FakeRequest[] = [];
  /** Stability's limit is 150 in 10 s with a 60 s timeout; off unless a test sets it. */
  rateLimit: FakeRateLimit | undefined;
  /**
   * Every balance request answered with this page instead, whatever the key: what a firewall or
   * a proxy in front of the provider answers (e.g. `403 text/html "Access denied (WAF)"`).
   */
  balancePage: FakePage | undefined;
  private limitedUntil = 0;
  /** Credits of accounts (organizations), shared by every key given that account. */
  readonly accountCredits = new Map<string, number>();

  constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  /** Registers (or reprograms) a key; unknown keys are answered 401. */
  setKey(apiKey: string, behaviour: Partial<FakeKey> = {}): void {
    this.keys.set(apiKey, { credits: 100, ...this.keys.get(apiKey), ...behaviour });
  }

  /** Gives an account (organization) its credits, shared by the keys set with `account`. */
  setAccount(account: string, credits: number): void {
    this.accountCredits.set(account, credits);
  }

  /** A key's credits: its account's when it has one with credits set, else its own. */
  creditsOf(key: FakeKey): number {
    return key.account !== undefined ? (this.accountCredits.get(key.account) ?? key.credits) : key.credits;
  }

  /** Spends credits from the key's account (or the key). */
  private spend(key: FakeKey, credits: number): void {
    if (key.account !== undefined && this.accountCredits.has(key.account))
      this.accountCredits.set(key.account, (this.accountCredits.get(key.account) ?? 0) - credits);
    else key.credits -= credits;
  }

  /** Spends the cost of one image (the generation endpoint). */
  spendImage(key: FakeKey): void {
    this.spend(key, IMAGE_COST);
  }

  /** Async jobs by id: the key that started it and how many polls it still answers 202. */
  readonly jobs = new Map<string, { apiKey: string; pollsLeft: number }>();
  /** how many polls of a new job answer 202 before its result is ready */
  pollsBeforeDone = 1;

  /** How many requests used `apiKey` (to `path`, when given): the provider's own count of calls per key. */
  callsWith(apiKey: string, path?: string): number {
    return this.requests.filter((r) => r.apiKey === apiKey && (path === undefined || r.path === path)).length;
  }

  /** The requests to one path (all when omitted). */
  requestsTo(path?: string): FakeRequest[] {
    return path === undefined ? this.requests : this.requests.filter((r) => r.path === path);
  }

  /** The most requests (to `path`, from the `from`-th on) that arrived within any `windowMs` window. */
  maxInWindow(windowMs = 1000, path?: string, from = 0): number {
    return maxInWindow(
      this.requests.slice(from).filter((r) => path === undefined || r.path === path),
      windowMs,
    );
  }

  /** Stops listening (a connection is refused) until `resume`; open connections are dropped. */
  pause(): Promise<void> {
    return new Promise((done) => {
      this.server.closeAllConnections();
      this.server.close(() => done());
    });
  }

  /** Listens again on the same port. */
  resume(): Promise<void> {
    const port = Number(new URL(this.url).port);
    return new Promise((done, fail) => {
      this.server.once('error', fail);
      this.server.listen(port, '127.0.0.1', () => done());
    });
  }

  close(): Promise<void> {
    return new Promise((done) => {
      this.server.closeAllConnections();
      this.server.close(() => done());
    });
  }

  /** Applies the provider-wide limit to a request arriving at `now`; true: answer 429. */
  limited(now: number): boolean {
    const limit = this.rateLimit;
    if (!limit) return false;
    if (now < this.limitedUntil) return true;
    const recent = this.requests.filter((r) => r.at > now - limit.windowMs && r.status !== 429).length;
    if (recent >= limit.max) {
      this.limitedUntil = now + limit.timeoutMs;
      return true;
    }
    return false;
  }
}

/** The most of `requests` that arrived within any half-open window of `windowMs`. */
export function maxInWindow(requests: readonly FakeRequest[], windowMs: number): number {
  const times = requests.map((r) => r.at).sort((a, b) => a - b);
  let best = 0;
  let first = 0;
  for (let last = 0; last < times.length; last++) {
    while ((times[last] ?? 0) - (times[first] ?? 0) >= windowMs) first++;
    best = Math.max(best, last - first + 1);
  }
  return best;
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function errorBody(name: string, message: string): Record<string, unknown> {
  return { id: randomUUID().replace(/-/g, ''), name, errors: [message], message };
}

/** Writes `bytes` bytes in 64 KiB chunks as the reader takes them (backpressure), never holding them; stops early when the reader hangs up. */
async function writeGenerated(response: ServerResponse, bytes: number, fill = 'x'): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, fill);
  let left = bytes;
  while (left > 0 && !response.destroyed) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!response.write(piece)) {
      await new Promise<void>((done) => {
        const go = (): void => {
          response.off('drain', go);
          response.off('close', go);
          done();
        };
        response.once('drain', go);
        response.once('close', go);
      });
    }
  }
}

/**
 * A valid 200 balance answer of `bytes` bytes (`{"credits":n,"pad":"xxx..."}`), written as the
 * client reads it, without a content-length; stops early when the client hangs up.
 */
async function streamPadded(
  response: ServerResponse,
  record: FakeRequest,
  credits: number,
  bytes: number,
): Promise<void> {
  record.status = 200;
  const head = `{"credits":${credits},"pad":"`;
  const tail = '"}';
  response.writeHead(200, { 'content-type': 'application/json' });
  response.write(head);
  await writeGenerated(response, Math.max(0, bytes - head.length - tail.length));
  if (!response.destroyed) response.end(tail);
}

/** A page in place of the provider's answer (a WAF's or a proxy's), as it is. */
function writePage(response: ServerResponse, record: FakeRequest, page: FakePage): void {
  record.status = page.status;
  response.writeHead(page.status, { 'content-type': page.contentType, 'content-length': Buffer.byteLength(page.body) });
  response.end(page.body);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The text fields of a multipart/form-data body (enough for prompt and output_format). */
function multipartFields(contentType: string, body: Buffer): Map<string, string> | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  if (!contentType.startsWith('multipart/form-data') || !boundary) return undefined;
  const fields = new Map<string, string>();
  for (const part of body.toString('utf8').split(`--${boundary[1] ?? boundary[2] ?? ''}`)) {
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const name = /name="([^"]*)"/.exec(part.slice(0, split));
    if (name?.[1] !== undefined) fields.set(name[1], part.slice(split + 4).replace(/\r\n$/, ''));
  }
  return fields;
}

const BALANCE = '/v1/user/balance';
const ACCOUNT = '/v1/user/account';
/** Paths that generate (or start a job) and bill the key. */
const GENERATION =
  /^\/(?:v2beta\/stable-image\/(?:generate|edit|upscale|control)\/[a-z-]+|v2beta\/image-to-video|v1\/generation\/[a-z0-9.-]+\/[a-z-]+)$/;
/** Async endpoints: their answer is a job id, their result is polled. */
const ASYNC = /^\/v2beta\/(?:stable-image\/upscale\/creative|image-to-video)$/;
const RESULT = /^\/v2beta\/results\/([A-Za-z0-9]+)$/;

async function answer(provider: FakeProvider, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const at = performance.timeOrigin + performance.now();
  const url = new URL(request.url ?? '/', 'http://fake');
  const path = url.pathname;
  const method = request.method ?? 'GET';
  const auth = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
  const apiKey = auth?.[1];
  const key = apiKey === undefined ? undefined : provider.keys.get(apiKey);
  const limited = provider.limited(at);
  const record: FakeRequest = {
    at,
    method,
    path,
    apiKey,
    status: 0,
    headers: request.headers,
    query: url.search.slice(1),
    bytes: 0,
    sha256: '',
  };
  provider.requests.push(record);
  const body = await readBody(request);
  record.bytes = body.length;
  record.sha256 = createHash('sha256').update(body).digest('hex');
  if (key?.delayMs) await new Promise((done) => setTimeout(done, key.delayMs));
  const reply = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
    record.status = status;
    if (!response.destroyed) send(response, status, payload, headers);
  };
  if (limited)
    return reply(
      429,
      errorBody('rate_limit_exceeded', 'You have exceeded the rate limit of 150 requests within a 10 second period'),
    );
  // The real 401 message can echo part of the key: callers must never log it.
  const unauthorized = (): void =>
    reply(401, errorBody('unauthorized', `Incorrect API key provided: ${(apiKey ?? '').slice(0, 14)}`));
  if (method === 'GET' && path === BALANCE) {
    if (provider.balancePage) return writePage(response, record, provider.balancePage);
    if (!key) return unauthorized();
    if (key.balancePage) return writePage(response, record, key.balancePage);
    switch (key.balanceStatus) {
      case 401:
        return unauthorized();
      case 403:
        return reply(403, errorBody('forbidden', 'This key may not be used'));
      case 429:
        return reply(429, errorBody('rate_limit_exceeded', 'too many requests'));
      case 500:
      case 503:
        return reply(key.balanceStatus, errorBody('server_error', 'An unexpected server error occurred'));
      default:
        if (key.balanceRedirect !== undefined) {
          record.status = 302;
          response.writeHead(302, { location: key.balanceRedirect, 'content-length': 0 });
          response.end();
          return;
        }
        if (key.balanceBodyBytes !== undefined)
          return streamPadded(response, record, provider.creditsOf(key), key.balanceBodyBytes);
        return reply(200, { credits: provider.creditsOf(key) });
    }
  }
  if (method === 'GET' && path === ACCOUNT) {
    if (!key || key.accountStatus === 401) return unauthorized();
    if (key.accountStatus === 403) return reply(403, errorBody('forbidden', 'This key may not be used'));
    if (key.accountStatus === 429) return reply(429, errorBody('rate_limit_exceeded', 'too many requests'));
    if (key.accountStatus === 500) return reply(500, errorBody('server_error', 'An unexpected server error occurred'));
    const organization =
      key.account ??
      `org-${createHash('sha256')
        .update(apiKey ?? '')
        .digest('hex')
        .slice(0, 12)}`;
    return reply(200, {
      id: `user-${organization}`,
      email: 'owner@example.test',
      profile_picture: 'https://example.test/p.png',
      organizations: [
        { id: 'org-personal-other', name: 'elsewhere', role: 'MEMBER', is_default: false },
        { id: organization, name: organization, role: 'OWNER', is_default: true },
      ],
    });
  }
  if (method === 'POST' && GENERATION.test(path)) return generate(provider, request, body, record, response);
  const result = RESULT.exec(path);
  if (method === 'GET' && result) return poll(provider, result[1] ?? '', request, record, response);
  reply(404, errorBody('not_found', 'no such endpoint'));
}

/** The documented error name of each status a generation may be forced to answer. */
const ERROR_NAMES: Record<number, [string, string]> = {
  400: ['bad_request', 'prompt: required'],
  402: ['payment_required', 'You lack sufficient credits to make this request'],
  403: ['content_moderation', 'Your request was flagged by our content moderation system'],
  404: ['not_found', 'no such resource'],
  413: ['payload_too_large', 'the request body is too large'],
  415: ['unsupported_media_type', 'the body must be multipart/form-data'],
  422: ['invalid_parameters', 'the parameters are not acceptable'],
  429: ['rate_limit_exceeded', 'too many requests'],
  500: ['server_error', 'An unexpected server error occurred'],
  502: ['bad_gateway', 'An upstream server failed'],
  503: ['server_error', 'An unexpected server error occurred'],
};

/** A generation's image (or the JSON form of it), as Stability answers a success. */
async function answerImage(
  key: FakeKey,
  request: IncomingMessage,
  record: FakeRequest,
  response: ServerResponse,
): Promise<void> {
  record.status = 200;
  if ((request.headers.accept ?? '').includes('application/json')) {
    return send(response, 200, { image: FAKE_PNG.toString('base64'), finish_reason: 'SUCCESS', seed: 1 });
  }
  const bytes = key.imageBytes ?? FAKE_PNG.length;
  response.writeHead(200, {
    'content-type': 'image/png',
    'content-length': bytes,
    'finish-reason': 'SUCCESS',
    seed: '1',
    'x-request-id': randomUUID(),
    'set-cookie': 'provider-session=abc',
  });
  if (key.resetMidBody) {
    response.write(FAKE_PNG.subarray(0, 8), () => setTimeout(() => response.socket?.destroy(), 10));
    return;
  }
  if (key.imageBytes === undefined) {
    response.end(FAKE_PNG);
    return;
  }
  await writeGenerated(response, bytes);
  if (!response.destroyed) response.end();
}

/** A generation (or an async job's start) by the key the request carries. */
async function generate(
  provider: FakeProvider,
  request: IncomingMessage,
  body: Buffer,
  record: FakeRequest,
  response: ServerResponse,
): Promise<void> {
  const key = record.apiKey === undefined ? undefined : provider.keys.get(record.apiKey);
  const reply = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
    record.status = status;
    if (!response.destroyed) send(response, status, payload, headers);
  };
  const fail = (status: number, headers: Record<string, string> = {}): void => {
    const [name, message] = ERROR_NAMES[status] ?? ['server_error', 'error'];
    reply(status, errorBody(name, message), headers);
  };
  // The real 401 message echoes the key's first characters: a proxy must not pass them on.
  if (!key || key.generateStatus === 401)
    return reply(401, errorBody('unauthorized', `Incorrect API key provided: ${(record.apiKey ?? '').slice(0, 14)}`));
  if (key.resetBeforeAnswer) {
    record.status = -1;
    request.socket.destroy();
    return;
  }
  if (key.generatePage) return writePage(response, record, key.generatePage);
  const forced = key.generateStatus;
  if (forced === 429) return fail(429, key.retryAfter === undefined ? {} : { 'retry-after': key.retryAfter });
  if (forced !== undefined && forced !== 403 && forced !== 402) return fail(forced);
  const v1 = record.path.startsWith('/v1/');
  const fields = v1 ? new Map<string, string>() : multipartFields(request.headers['content-type'] ?? '', body);
  if (!fields) return fail(415);
  const prompt = v1 ? body.toString('utf8') : (fields.get('prompt') ?? '');
  if (prompt === '' && !ASYNC.test(record.path)) return fail(400);
  if (forced === 403 || prompt.includes(MODERATED_WORD)) return fail(403);
  if (forced === 402 || provider.creditsOf(key) < IMAGE_COST) return fail(402);
  provider.spendImage(key);
  if (ASYNC.test(record.path)) {
    const id = randomUUID().replace(/-/g, '');
    provider.jobs.set(id, { apiKey: record.apiKey ?? '', pollsLeft: provider.pollsBeforeDone });
    return reply(200, { id });
  }
  return answerImage(key, request, record, response);
}

/** A poll of an async job's result: only the key that started it sees it. */
async function poll(
  provider: FakeProvider,
  id: string,
  request: IncomingMessage,
  record: FakeRequest,
  response: ServerResponse,
): Promise<void> {
  const job = provider.jobs.get(id);
  const key = record.apiKey === undefined ? undefined : provider.keys.get(record.apiKey);
  if (!key || !job || job.apiKey !== record.apiKey) {
    record.status = 404;
    return send(response, 404, errorBody('not_found', 'no result with this id'));
  }
  if (job.pollsLeft > 0) {
    job.pollsLeft--;
    record.status = 202;
    return send(response, 202, { id, status: 'in-progress' });
  }
  return answerImage({ ...key, resetMidBody: false }, request, record, response);
}

/** Starts the fake provider on a free loopback port. */
export async function startFakeProvider(): Promise<FakeProvider> {
  const holder: { provider?: FakeProvider } = {};
  const server = createServer((request, response) => {
    if (holder.provider) void answer(holder.provider, request, response).catch(() => response.destroy());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  holder.provider = new FakeProvider(server, `http://127.0.0.1:${port}`);
  return holder.provider;
}
