/**
 * A small client for keypool's HTTP API, for one pool: lease a key, complete the lease, count
 * a use without one. Against a deployed API it signs each request with SigV4 (service
 * `execute-api`, the AWS SDK's default credential chain); against the local stack it speaks
 * plain HTTP.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { KeypoolError, NoUsableKey, PoolNotFound } from '../domain/errors.js';
import { POOL_NAME_PATTERN } from '../domain/pool-name.js';
import { isLoopbackHostname } from '../shared/loopback.js';
import {
  type CompletionReport,
  type CompletionResult,
  DEFAULT_MAX_USES,
  DEFAULT_POOL,
  type LeaseGrant,
  type LeaseRequest,
} from '../domain/types.js';
import { redact } from '../shared/redact.js';
import { checkedWait, type KeySource, type LeaseWait, leaseWaiting, type Waiting, WaitBudget } from './key-source.js';

type Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

export interface KeypoolClientOptions extends Waiting {
  /** the API's base URL, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com or http://127.0.0.1:3000 */
  url: string;
  /** the pool every call is for (default DEFAULT_POOL): an application is granted one pool */
  pool?: string;
  /** default: "none" for a loopback or localhost URL, "sigv4" otherwise */
  signing?: 'sigv4' | 'none';
  /** default: from an execute-api URL, else AWS_REGION / AWS_DEFAULT_REGION */
  region?: string;
  /** default: the AWS SDK's default chain (env, SSO, profile, container, instance metadata) */
  credentials?: Credentials;
  /** per request (default 10 s) */
  timeoutMs?: number;
  /**
   * how long lease() waits in total for a cooling key when the pool is dry, seconds (default 0:
   * it throws NoUsableKey at once); also withKey's bound when withKey is given none
   */
  maxWaitSeconds?: number;
  fetch?: typeof fetch;
}

/** An answer of the API other than the ones with their own class; `message` is the API's, never a secret. */
export class KeypoolApiError extends KeypoolError {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function regionOf(url: URL, given: string | undefined): string | undefined {
  return (
    given ??
    /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname)?.[1] ??
    (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined)
  );
}

/** A Retry-After the API sent with a 409: the body's retryAfterSeconds, else the header's seconds. */
function retryAfterOf(answer: Answer): number | undefined {
  const fromBody = (answer.body as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  if (typeof fromBody === 'number' && Number.isInteger(fromBody) && fromBody > 0) return fromBody;
  const header = answer.headers.get('retry-after')?.trim() ?? '';
  return /^[0-9]{1,6}$/.test(header) && Number(header) > 0 ? Number(header) : undefined;
}

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

export class KeypoolClient implements KeySource {
  readonly pool: string;
  readonly maxWaitSeconds: number;
  private readonly base: URL;
  private readonly signer: SignatureV4 | undefined;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly waiting: Waiting;

  constructor(options: KeypoolClientOptions) {
    this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    this.pool = options.pool ?? DEFAULT_POOL;
    // The pool becomes a path segment: a name the API would refuse is refused here, before anything is signed.
    if (!POOL_NAME_PATTERN.test(this.pool))
      throw new RangeError('KeypoolClient: a pool is 1-64 letters, digits, "_", "." or "-"');
    const signing = options.signing ?? (isLoopbackHostname(this.base.hostname) ? 'none' : 'sigv4');
    if (signing === 'sigv4') {
      const region = regionOf(this.base, options.region);
      if (!region) throw new Error('KeypoolClient: SigV4 needs a region: pass `region` or set AWS_REGION');
      this.signer = new SignatureV4({
        service: 'execute-api',
        region,
        credentials: options.credentials ?? defaultProvider(),
        sha256: Sha256,
      });
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxWaitSeconds = checkedWait(options.maxWaitSeconds, 'KeypoolClient');
    this.fetch = options.fetch ?? fetch;
    this.waiting = {
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.random ? { random: options.random } : {}),
    };
  }

  /**
   * POST /pools/{pool}/leases: the least recently used usable key of the pool. When the pool
   * is dry it throws NoUsableKey, whose retryAfterSeconds says when a cooling key comes back;
   * with a wait bound (this call's, else the client's) it first sleeps for that key, never
   * longer in total than the bound. PoolNotFound when the pool does not exist.
   */
  lease(request: LeaseRequest = {}, wait: LeaseWait = {}): Promise<LeaseGrant> {
    const budget = new WaitBudget(checkedWait(wait.maxWaitSeconds ?? this.maxWaitSeconds, 'lease'));
    return leaseWaiting(() => this.leaseOnce(request), budget, this.waiting);
  }

  /** POST /pools/{pool}/leases/{leaseId}/complete: success keeps the use counted, every other outcome returns it. */
  async complete(leaseId: string, report: CompletionReport = {}): Promise<CompletionResult> {
    return this.expect(
      await this.call('POST', `leases/${encodeURIComponent(leaseId)}/complete`, report),
      200,
    ) as CompletionResult;
  }

  /** POST /pools/{pool}/keys/{keyId}/usage: one use counted without a lease (and without the cap). */
  async increment(keyId: string): Promise<{ keyId: string; usageCount: number }> {
    return this.expect(await this.call('POST', `keys/${encodeURIComponent(keyId)}/usage`, undefined), 200) as {
      keyId: string;
      usageCount: number;
    };
  }

  private async leaseOnce(request: LeaseRequest): Promise<LeaseGrant> {
    const body: LeaseRequest = {
      ...(request.maxUses === undefined ? {} : { maxUses: request.maxUses }),
      ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
    };
    const answer = await this.call('POST', 'leases', body);
    if (answer.status === 409) {
      const error = new NoUsableKey(this.pool, request.maxUses ?? DEFAULT_MAX_USES, retryAfterOf(answer));
      // The API knows the pool's cap; its message says it where ours could only guess.
      const message = (answer.body as { message?: unknown } | undefined)?.message;
      if (typeof message === 'string') error.message = redact(message).slice(0, 500);
      throw error;
    }
    return this.expect(answer, 200) as LeaseGrant;
  }

  private expect(answer: Answer, status: number): unknown {
    if (answer.status === status) return answer.body;
    const body = (answer.body ?? {}) as { error?: unknown; message?: unknown };
    const code = typeof body.error === 'string' ? body.error : 'http_error';
    // The same class a Broker throws, so a caller handles a missing pool one way for both sources.
    if (code === 'pool_not_found') throw new PoolNotFound(this.pool);
    const message = typeof body.message === 'string' ? body.message : `keypool answered ${answer.status}`;
    throw new KeypoolApiError(code, answer.status, redact(message).slice(0, 500));
  }

  /** One request under /pools/{pool}/; `body` undefined sends none (a route without a body refuses one). */
  private async call(method: 'POST', path: string, body: unknown): Promise<Answer> {
    const url = new URL(`pools/${encodeURIComponent(this.pool)}/${path}`, this.base);
    const text = body === undefined ? undefined : JSON.stringify(body);
    let headers: Record<string, string> = text === undefined ? {} : { 'content-type': 'application/json' };
    if (this.signer) {
      const signed = await this.signer.sign(
        new HttpRequest({
          method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          path: url.pathname,
          headers: { ...headers, host: url.host },
          body: text,
        }),
      );
      // fetch sets Host itself (to the same value that was signed).
      const { host: _host, ...rest } = signed.headers;
      headers = rest;
    }
    // keypool never redirects. Following one would resend the signed request elsewhere, and
    // the answer it fetched could be taken for a lease (with a secret in it): a 3xx is an error.
    const response = await this.fetch(url, {
      method,
      headers,
      body: text,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new KeypoolApiError(
        'redirect',
        response.status,
        `keypool answered ${response.status} (a redirect); not followed`,
      );
    }
    const raw = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, headers: response.headers };
  }
}
