/**
 * A small client for keypool's HTTP API, for one pool: lease a key, complete the lease, count
 * a use without one. Against a deployed API it signs each request with SigV4 (service
 * `execute-api`, the AWS SDK's default credential chain); against the local stack it speaks
 * plain HTTP. Every lease carries an Idempotency-Key, so an answer lost on the way back is
 * asked for again and replayed, not granted (and counted) twice.
 */
import { randomUUID } from 'node:crypto';
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
import {
  checkedWait,
  defaultSleep,
  type KeySource,
  type LeaseWait,
  leaseWaiting,
  type Waiting,
  WaitBudget,
} from './key-source.js';

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
   * how many times one lease is asked again, with the same Idempotency-Key, when its answer is
   * lost (a reset, a timeout), a 5xx or a 429 (after its Retry-After, when that is at most
   * 10 s) (default 2; 0: never)
   */
  leaseRetries?: number;
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

/** One lease() call's options: how long it may wait for a cooling key, and its Idempotency-Key. */
export interface LeaseOptions extends LeaseWait {
  /**
   * the lease's Idempotency-Key (1-255 printable ASCII characters, no spaces; default: a new
   * UUID per lease() call). A caller that keeps its own (a job id) and leases again after a
   * restart gets the same lease back while it lives.
   */
  idempotencyKey?: string;
}

/** The first wait before a lease is asked again, ms (doubles each time, jittered, at most 2 s). */
const LEASE_RETRY_BASE_MS = 200;
const LEASE_RETRY_MAX_MS = 2_000;
/** The longest Retry-After (a 429 or 503) a lease waits out before asking again, ms. */
const MAX_RETRY_AFTER_MS = 10_000;

export class KeypoolClient implements KeySource {
  readonly pool: string;
  readonly maxWaitSeconds: number;
  private readonly base: URL;
  private readonly signer: SignatureV4 | undefined;
  private readonly timeoutMs: number;
  private readonly leaseRetries: number;
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
    this.leaseRetries = options.leaseRetries ?? 2;
    if (!Number.isInteger(this.leaseRetries) || this.leaseRetries < 0)
      throw new RangeError('KeypoolClient: leaseRetries is a whole number >= 0');
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
   * longer in total than the bound. PoolNotFound when the pool does not exist. The call's
   * requests all carry one Idempotency-Key: an answer lost, or a 5xx or 429, is asked again
   * (`leaseRetries` times) and the API answers the lease it already granted, its use counted once.
   */
  lease(request: LeaseRequest = {}, options: LeaseOptions = {}): Promise<LeaseGrant> {
    const budget = new WaitBudget(checkedWait(options.maxWaitSeconds ?? this.maxWaitSeconds, 'lease'));
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    return leaseWaiting(() => this.leaseOnce(request, idempotencyKey), budget, this.waiting);
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

  private async leaseOnce(request: LeaseRequest, idempotencyKey: string): Promise<LeaseGrant> {
    const body: LeaseRequest = {
      ...(request.maxUses === undefined ? {} : { maxUses: request.maxUses }),
      ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
    };
    const answer = await this.leaseAnswer(body, idempotencyKey);
    if (answer.status === 409) {
      const error = new NoUsableKey(this.pool, request.maxUses ?? DEFAULT_MAX_USES, retryAfterOf(answer));
      // The API knows the pool's cap; its message says it where ours could only guess.
      const message = (answer.body as { message?: unknown } | undefined)?.message;
      if (typeof message === 'string') error.message = redact(message).slice(0, 500);
      throw error;
    }
    return this.expect(answer, 200) as LeaseGrant;
  }

  /**
   * The lease's answer, asked again with the same Idempotency-Key while it is lost (the request
   * threw: a reset, a timeout; a redirect is not lost), a 5xx or a 429, at most `leaseRetries`
   * times: the lease may have been granted, and only the key makes asking again safe. A
   * Retry-After of at most MAX_RETRY_AFTER_MS is waited out; a longer one is the answer.
   */
  private async leaseAnswer(body: LeaseRequest, idempotencyKey: string): Promise<Answer> {
    const headers = { 'idempotency-key': idempotencyKey };
    const sleep = this.waiting.sleep ?? defaultSleep;
    const random = this.waiting.random ?? Math.random;
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.leaseRetries;
      let waitMs = Math.min(LEASE_RETRY_MAX_MS, LEASE_RETRY_BASE_MS * 2 ** attempt) * (0.5 + random() / 2);
      try {
        const answer = await this.call('POST', 'leases', body, headers);
        if ((answer.status < 500 && answer.status !== 429) || last) return answer;
        const retryAfter = retryAfterOf(answer);
        if (retryAfter !== undefined && retryAfter * 1000 > MAX_RETRY_AFTER_MS) return answer;
        if (retryAfter !== undefined) waitMs = retryAfter * 1000;
      } catch (error) {
        if (error instanceof KeypoolError || last) throw error;
      }
      await sleep(waitMs);
    }
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
  private async call(method: 'POST', path: string, body: unknown, extra: Record<string, string> = {}): Promise<Answer> {
    const url = new URL(`pools/${encodeURIComponent(this.pool)}/${path}`, this.base);
    const text = body === undefined ? undefined : JSON.stringify(body);
    let headers: Record<string, string> = {
      ...extra,
      ...(text === undefined ? {} : { 'content-type': 'application/json' }),
    };
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
