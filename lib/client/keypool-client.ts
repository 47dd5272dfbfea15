/**
 * A small client for keypool's HTTP API: lease a key, complete the lease. Against a deployed
 * API it signs each request with SigV4 (service `execute-api`, the AWS SDK's default
 * credential chain); against the local stack it speaks plain HTTP.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { KeypoolError, NoUsableKey } from '../domain/errors.js';
import { type CompletionResult, DEFAULT_MAX_USES, DEFAULT_POOL, type LeaseGrant, type LeaseRequest, type Outcome } from '../domain/types.js';
import { redact } from '../shared/redact.js';

type Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

export interface KeypoolClientOptions {
  /** the API's base URL, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com or http://127.0.0.1:3000 */
  url: string;
  /** default: "none" for a loopback or localhost URL, "sigv4" otherwise */
  signing?: 'sigv4' | 'none';
  /** default: from an execute-api URL, else AWS_REGION / AWS_DEFAULT_REGION */
  region?: string;
  /** default: the AWS SDK's default chain (env, SSO, profile, container, instance metadata) */
  credentials?: Credentials;
  /** per request (default 10 s) */
  timeoutMs?: number;
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

/** What withKey needs: a KeypoolClient over HTTP, or a Broker in the same account. */
export interface KeySource {
  lease(request?: LeaseRequest): Promise<LeaseGrant>;
  complete(leaseId: string, outcome?: Outcome): Promise<unknown>;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

function regionOf(url: URL, given: string | undefined): string | undefined {
  return given ?? /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname)?.[1] ?? (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined);
}

export class KeypoolClient implements KeySource {
  private readonly base: URL;
  private readonly signer: SignatureV4 | undefined;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: KeypoolClientOptions) {
    this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    const signing = options.signing ?? (LOOPBACK.test(this.base.hostname) ? 'none' : 'sigv4');
    if (signing === 'sigv4') {
      const region = regionOf(this.base, options.region);
      if (!region) throw new Error('KeypoolClient: SigV4 needs a region: pass `region` or set AWS_REGION');
      this.signer = new SignatureV4({ service: 'execute-api', region, credentials: options.credentials ?? defaultProvider(), sha256: Sha256 });
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetch = options.fetch ?? fetch;
  }

  /** POST /leases: the least recently used usable key; NoUsableKey when the pool has none. */
  async lease(request: LeaseRequest = {}): Promise<LeaseGrant> {
    const answer = await this.call('POST', 'leases', request);
    if (answer.status === 409) throw new NoUsableKey(request.pool ?? DEFAULT_POOL, request.maxUses ?? DEFAULT_MAX_USES);
    return this.expect(answer, 200) as LeaseGrant;
  }

  /** POST /leases/{leaseId}/complete: success keeps the use counted, every other outcome returns it. */
  async complete(leaseId: string, outcome: Outcome = 'success'): Promise<CompletionResult> {
    return this.expect(await this.call('POST', `leases/${encodeURIComponent(leaseId)}/complete`, { outcome }), 200) as CompletionResult;
  }

  private expect(answer: { status: number; body: unknown }, status: number): unknown {
    if (answer.status === status) return answer.body;
    const body = (answer.body ?? {}) as { error?: unknown; message?: unknown };
    const code = typeof body.error === 'string' ? body.error : 'http_error';
    const message = typeof body.message === 'string' ? body.message : `keypool answered ${answer.status}`;
    throw new KeypoolApiError(code, answer.status, redact(message).slice(0, 500));
  }

  private async call(method: 'GET' | 'POST', path: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const url = new URL(path, this.base);
    const text = JSON.stringify(body);
    let headers: Record<string, string> = { 'content-type': 'application/json' };
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
    const response = await this.fetch(url, { method, headers, body: text, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new KeypoolApiError('redirect', response.status, `keypool answered ${response.status} (a redirect); not followed`);
    }
    const raw = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed };
  }
}
