/**
 * One request to keypool, signed with SigV4 whenever AWS credentials are available (given, or
 * the AWS SDK's default chain, loaded on first use) and unsigned only when there are none: the
 * local stack (`npm start`) checks no signature. Redirects are never followed: a signed
 * request, or an answer holding a secret, must not travel anywhere keypool did not send it.
 * Around it, the retry rules: which failures are asked again, and after how long.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { KeypoolApiError, KeypoolUnavailable, retryAfterHeader, safeText } from './errors.js';

/** AWS credentials, or a function that gives them (refreshed as it sees fit). */
export type KeypoolCredentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];
type CredentialProvider = Exclude<KeypoolCredentials, { accessKeyId: string }>;

/** Waits `ms` on the real clock (options let tests pass their own). */
export const defaultSleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Sleep and jitter, replaceable by tests. */
export interface Waiting {
  /** default: setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** a number in [0, 1) for the jitter (default Math.random) */
  random?: () => number;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;
const EXECUTE_API = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/;
const LAMBDA_URL = /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/;
// The local stack checks no signature, but a signature needs a region to be made at all.
const LOOPBACK_REGION = 'us-east-1';

/** The SigV4 service a URL signs for: `lambda` for a function URL, else `execute-api`. */
export function serviceFor(url: URL): string {
  return LAMBDA_URL.test(url.hostname) ? 'lambda' : 'execute-api';
}

/** The region: given, else the URL's (execute-api, function URL), else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1 for loopback. */
export function regionFor(url: URL, given: string | undefined): string | undefined {
  const fromUrl = EXECUTE_API.exec(url.hostname)?.[1] ?? LAMBDA_URL.exec(url.hostname)?.[1];
  const fromEnv = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined;
  return given ?? fromUrl ?? fromEnv ?? (LOOPBACK.test(url.hostname) ? LOOPBACK_REGION : undefined);
}

/**
 * The credentials requests are signed with: the given ones, else the default chain
 * (environment, SSO, profile, process, web identity, container, instance metadata), resolved
 * once; undefined when the chain has none. The chain's module is loaded only then.
 */
export class CredentialSource {
  private chain: Promise<CredentialProvider | undefined> | undefined;

  constructor(private readonly given: KeypoolCredentials | undefined) {}

  get(): Promise<CredentialProvider | undefined> {
    const given = this.given;
    if (given) return Promise.resolve(typeof given === 'function' ? given : () => Promise.resolve(given));
    this.chain ??= (async () => {
      const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
      // The chain remembers what it found and refreshes it before it expires.
      const provider = defaultProvider();
      try {
        await provider();
        return provider;
      } catch (error) {
        if (error instanceof Error && error.name === 'CredentialsProviderError') return undefined;
        throw error;
      }
    })();
    return this.chain;
  }
}

const rfc3986 = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A query as the signer takes it: a name given twice keeps both values. */
function queryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = {};
  for (const [name, value] of params) {
    const seen = record[name];
    record[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  return record;
}

/** A request as the transport sends it: `path` below the base URL, already percent-encoded. */
export interface Outgoing {
  method: string;
  path: string;
  query?: URLSearchParams;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal: AbortSignal;
}

/** Requests to one base URL, signed for one SigV4 service. */
export class Endpoint {
  readonly base: URL;
  private signer: SignatureV4 | undefined;

  constructor(
    base: string,
    private readonly credentials: CredentialSource,
    private readonly service: string,
    private readonly region: string | undefined,
    private readonly fetch: typeof globalThis.fetch,
  ) {
    this.base = new URL(base.endsWith('/') ? base : `${base}/`);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:')
      throw new TypeError('keypool: a URL is http(s)://host[:port][/prefix]');
  }

  /** Whether requests are signed: credentials were given or found. */
  async signs(): Promise<boolean> {
    return (await this.credentials.get()) !== undefined;
  }

  /** One request, signed when there are credentials; a 3xx is an error, never followed. */
  async send(request: Outgoing): Promise<Response> {
    const url = new URL(request.path, this.base);
    // RFC 3986, as SigV4 encodes it (a space is %20, never +), so the signed query is the one sent.
    if (request.query)
      url.search = [...request.query].map(([name, value]) => `${rfc3986(name)}=${rfc3986(value)}`).join('&');
    const headers = await this.sign(url, request);
    const response = await onTheWire(
      this.fetch(url, {
        method: request.method,
        headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        redirect: 'manual',
        signal: request.signal,
      }),
    );
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new KeypoolApiError(`keypool answered ${response.status} (a redirect); not followed`, {
        status: response.status,
        code: 'redirect',
      });
    }
    return response;
  }

  private async sign(url: URL, request: Outgoing): Promise<Record<string, string>> {
    const headers = request.headers ?? {};
    const credentials = await this.credentials.get();
    if (!credentials) return headers;
    if (!this.signer) {
      const region = regionFor(this.base, this.region);
      if (!region) throw new TypeError('keypool: SigV4 needs a region: pass `region` or set AWS_REGION');
      this.signer = new SignatureV4({ service: this.service, region, credentials, sha256: Sha256 });
    }
    const signed = await this.signer.sign({
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: queryRecord(url.searchParams),
      headers: { ...headers, host: url.host },
      body: request.body,
    });
    // fetch sets Host itself (to the same value that was signed).
    const { host: _host, ...rest } = signed.headers;
    return rest;
  }
}

/** A request that got no answer, or an answer cut off on the way: `cause` is what fetch threw. */
class LostRequest extends Error {
  override readonly name = 'LostRequest';
}

/** `io` (a fetch, a body being read), its failure marked as a lost request: the only kind a retry may help. */
export async function onTheWire<T>(io: Promise<T>): Promise<T> {
  try {
    return await io;
  } catch (error) {
    throw new LostRequest('the request got no answer', { cause: error });
  }
}

const codeOf = (e: unknown): unknown => (typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined);
const causeOf = (e: unknown): unknown => (typeof e === 'object' && e !== null && 'cause' in e ? e.cause : undefined);

/**
 * Errors a request cannot have reached the server with: the connection was never made. Any
 * other throw (a timeout, a reset or a hang-up mid-answer) may come after the server got it.
 */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_INVALID_URL',
]);

/** True when a request that threw `error` surely never left: its connection was never made. */
export function neverSent(error: unknown): boolean {
  const code = codeOf(error) ?? codeOf(causeOf(error));
  return typeof code === 'string' && NOT_SENT.has(code);
}

/** The first wait before a request is asked again, ms (doubles each time, jittered, at most 2 s). */
const RETRY_BASE_MS = 200;
const RETRY_MAX_MS = 2_000;
/** The longest Retry-After (a 429 or 503) waited out before asking again, ms; a longer one is the answer. */
export const MAX_RETRY_AFTER_MS = 10_000;

export interface RetryRules extends Waiting {
  /** further tries after the first */
  retries: number;
  /**
   * a request that is safe to repeat (a lease under its Idempotency-Key, a completion): a
   * reset or timeout, a 5xx, a 429 or 503 are asked again too. Otherwise only a connection
   * never made is: once sent, the request may have counted or billed.
   */
  repeatable: boolean;
}

/**
 * Sends until an answer is final, at most `retries` more times (see RetryRules); a short
 * Retry-After on a 429 or 503 is waited out, other waits back off with jitter. A request lost
 * on its last try (see onTheWire) is KeypoolUnavailable, its cause what fetch threw; any other
 * error (a redirect refused, a signing failure) is thrown as it is, at once.
 */
export async function sendWithRetries<T extends { status: number; headers: Headers }>(
  send: () => Promise<T>,
  rules: RetryRules,
  release: (answer: T) => Promise<void> = () => Promise.resolve(),
): Promise<T> {
  const sleep = rules.sleep ?? defaultSleep;
  const random = rules.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    const last = attempt >= rules.retries;
    let waitMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt) * (0.5 + random() / 2);
    try {
      const answer = await send();
      if (last || !rules.repeatable || (answer.status < 500 && answer.status !== 429)) return answer;
      const retryAfter = answer.status === 429 || answer.status === 503 ? retryAfterHeader(answer.headers) : undefined;
      if (retryAfter !== undefined && retryAfter * 1000 > MAX_RETRY_AFTER_MS) return answer;
      if (retryAfter !== undefined) waitMs = retryAfter * 1000;
      await release(answer);
    } catch (error) {
      if (!(error instanceof LostRequest)) throw error;
      const cause: unknown = error.cause;
      if (last || !(rules.repeatable || neverSent(cause))) {
        const inner = causeOf(cause) ?? cause;
        const code = codeOf(cause) ?? codeOf(inner);
        const why = typeof code === 'string' ? code : inner instanceof Error ? inner.message : 'no answer';
        throw new KeypoolUnavailable(`keypool could not be reached (${safeText(why)})`, { cause });
      }
    }
    await sleep(waitMs);
  }
}
