/** keypool's HTTP API for applications: lease a key, complete the lease, count a use, proxy a call. */
import { createHash, randomUUID } from 'node:crypto';
import { errorFromAnswer, KeypoolApiError, KeypoolUnavailable } from './errors.js';
import { Lease } from './lease.js';
import {
  CredentialSource,
  Endpoint,
  type KeypoolCredentials,
  onTheWire,
  regionFor,
  sendWithRetries,
  serviceFor,
  type Waiting,
} from './transport.js';
import type { Completion, CompletionReport, CountedUse, LeaseGrant } from './types.js';
import { checkedWait, type KeySource, type LeaseWait, leaseWaiting, WaitBudget } from './waiting.js';
import { type ProviderCall, withKey, type WithKeyOptions } from './with-key.js';

export interface KeypoolOptions extends Waiting {
  /** the API's base URL: a deployed stack's `ApiUrl`, or the local stack's http://127.0.0.1:3000 */
  url: string;
  /** the region requests are signed for (default: the URL's, else AWS_REGION / AWS_DEFAULT_REGION) */
  region?: string;
  /** AWS credentials, or a function giving them (default: the AWS SDK's default chain, read on first use) */
  credentials?: KeypoolCredentials;
  /** where proxy mode is served when not at `url` (the OpenAPI document's `servers` of the proxy route) */
  proxyUrl?: string;
  /** the SigV4 service the proxy signs for (its server's `x-keypool-sigv4-service`; default `lambda` for a function URL, else `execute-api`) */
  proxyService?: string;
  /** per request, ms (default 10 s); a proxied call has its own (ProxyInit.timeoutMs) */
  timeoutMs?: number;
  /** further tries of a request that is safe to repeat (default 2; 0: never) */
  retries?: number;
  /** how long a lease waits in total for a cooling key when the pool is dry, seconds (default 0: NoUsableKey at once) */
  maxWaitSeconds?: number;
  fetch?: typeof fetch;
}

/** One lease() call: the request, how long it may wait, and its Idempotency-Key. */
export interface LeaseOptions extends LeaseWait {
  /**
   * the lease's Idempotency-Key (1-255 printable ASCII characters, no spaces; default: a new
   * UUID per call). A caller that keeps its own (a job id) and leases again after a restart
   * gets the same lease back while it lives.
   */
  idempotencyKey?: string;
}

/** A proxied call: a fetch init, sent to keypool instead of the provider. */
export interface ProxyInit {
  /** default POST */
  method?: 'GET' | 'POST';
  headers?: RequestInit['headers'];
  /** sent as fetch would encode it (FormData as multipart); the signature covers the encoded bytes */
  body?: RequestInit['body'];
  /** default: a new UUID; the same key again replays the first answer instead of billing twice */
  idempotencyKey?: string;
  /**
   * how long until the answer's headers arrive, ms (default PROXY_TIMEOUT_MS, 150 s); its body
   * then streams at its own pace
   */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const POOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * How long a proxied call waits for keypool's answer by default: keypool answers once the
 * provider has, within the pool's proxyTimeoutSeconds (default 120 s) and its 30 s margin. A
 * shorter wait gives up on a generation the provider still bills; a pool set longer needs a longer
 * `timeoutMs`. The Python client's default is the same.
 */
export const PROXY_TIMEOUT_MS = 150_000;

/** A JSON answer, read whole. */
interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const json = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/**
 * A client for keypool's HTTP API at `url`. Requests are signed with SigV4 whenever AWS
 * credentials are available (given, or the default chain) and go unsigned only when there are
 * none. An application is granted one pool's client routes: `pool(name)` gives them.
 */
export class Keypool {
  readonly maxWaitSeconds: number;
  /** @internal */
  readonly api: Endpoint;
  /** @internal */
  readonly proxyEndpoint: Endpoint;
  /** @internal */
  readonly timeoutMs: number;
  /** @internal */
  readonly retries: number;
  /** @internal */
  readonly waiting: Waiting;

  constructor(options: KeypoolOptions) {
    const fetcher = options.fetch ?? globalThis.fetch;
    const credentials = new CredentialSource(options.credentials);
    const base = new URL(options.url);
    // Credentials given but nowhere to sign them for: refused now rather than at the first call.
    if (options.credentials && !regionFor(base, options.region))
      throw new TypeError('keypool: SigV4 needs a region: pass `region` or set AWS_REGION');
    this.api = new Endpoint(options.url, credentials, 'execute-api', options.region, fetcher);
    const proxyBase = options.proxyUrl ?? options.url;
    this.proxyEndpoint =
      options.proxyUrl || options.proxyService
        ? new Endpoint(
            proxyBase,
            credentials,
            options.proxyService ?? serviceFor(new URL(proxyBase)),
            options.region,
            fetcher,
          )
        : this.api;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 2;
    if (!Number.isInteger(this.retries) || this.retries < 0)
      throw new RangeError('keypool: retries is a whole number >= 0');
    if (!(this.timeoutMs > 0)) throw new RangeError('keypool: timeoutMs is > 0');
    this.maxWaitSeconds = checkedWait(options.maxWaitSeconds, 'keypool');
    this.waiting = {
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.random ? { random: options.random } : {}),
    };
  }

  /** The pool `name` (default `stability`): its leases, completions, counts and proxy. */
  pool(name = 'stability'): Pool {
    // The name becomes a path segment: one the API would refuse is refused here, before anything is signed.
    if (!POOL_NAME.test(name) || name === '.' || name === '..')
      throw new RangeError('keypool: a pool is 1-64 letters, digits, "_", "." or "-" (not "." or "..")');
    return new Pool(this, name);
  }

  /** Whether requests are signed: credentials were given, or the default chain found some. */
  signs(): Promise<boolean> {
    return this.api.signs();
  }

  /** @internal One JSON request to the API, retried by the rules (repeatable or not). */
  async call(method: 'GET' | 'POST', path: string, body: unknown, options: CallOptions = {}): Promise<Answer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers = { ...options.headers, ...(text === undefined ? {} : { 'content-type': 'application/json' }) };
    return sendWithRetries(
      async () => {
        const response = await this.api.send({
          method,
          path,
          headers,
          ...(text === undefined ? {} : { body: text }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        // The body is read inside the try: an answer cut off on the way is as lost as none.
        return { status: response.status, headers: response.headers, body: json(await onTheWire(response.text())) };
      },
      { retries: this.retries, repeatable: options.repeatable ?? true, ...this.waiting },
    );
  }

  /** @internal The answer's body when it has the expected status, else the error it stands for. */
  async expect(answer: Answer, status: number): Promise<unknown> {
    if (answer.status === status && answer.body !== undefined) return answer.body;
    if (answer.status >= 200 && answer.status < 300)
      throw new KeypoolApiError(`keypool answered ${answer.status} without the expected body`, {
        status: answer.status,
      });
    throw errorFromAnswer(answer, await this.api.signs());
  }
}

interface CallOptions {
  headers?: Record<string, string>;
  /** default true: safe to ask again (see RetryRules) */
  repeatable?: boolean;
}

/** keypool's id for a secret: `k_` and the first 24 hex digits of its SHA-256 (computed here; the secret is not sent). */
export function keyIdFor(apiKey: string): string {
  return `k_${createHash('sha256').update(apiKey, 'utf8').digest('hex').slice(0, 24)}`;
}

/** One pool of keypool: leases, completions, counts, withKey and proxy mode. */
export class Pool implements KeySource {
  readonly name: string;
  readonly maxWaitSeconds: number;
  readonly #client: Keypool;
  readonly #base: string;

  constructor(client: Keypool, name: string) {
    this.#client = client;
    this.name = name;
    this.maxWaitSeconds = client.maxWaitSeconds;
    this.#base = `pools/${encodeURIComponent(name)}`;
  }

  /**
   * POST /pools/{pool}/leases: the least recently used key whose count is <= `maxUses` (the
   * pool's cap, or lower; above it is InvalidRequest), held for `ttlSeconds`. Complete it with
   * `lease.complete(outcome)`. Every call sends its own Idempotency-Key and repeats it on its
   * own retries (an answer lost, a 5xx, a 429/503 with a short Retry-After), so a retry never
   * takes a second use. A dry pool throws NoUsableKey; when a key is cooling it first waits for
   * it, as long as the waits of this call stay within `maxWaitSeconds` (default: the client's).
   * PoolNotFound when the pool does not exist.
   */
  async lease(options: LeaseOptions = {}): Promise<Lease> {
    const body = {
      ...(options.maxUses === undefined ? {} : { maxUses: options.maxUses }),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
    };
    const headers = { 'idempotency-key': options.idempotencyKey ?? randomUUID() };
    const budget = new WaitBudget(checkedWait(options.maxWaitSeconds ?? this.maxWaitSeconds, 'lease'));
    const client = this.#client;
    return leaseWaiting(
      async () =>
        new Lease(
          this,
          (await client.expect(
            await client.call('POST', `${this.#base}/leases`, body, { headers }),
            200,
          )) as LeaseGrant,
        ),
      budget,
      client.waiting,
    );
  }

  /** POST /pools/{pool}/leases/{leaseId}/complete: success and unknown keep the use counted, every other outcome gives it back. */
  async complete(leaseId: string, report: CompletionReport = {}): Promise<Completion> {
    // A completion repeated after a lost answer changes nothing and answers the key as it stands.
    const answer = await this.#client.call(
      'POST',
      `${this.#base}/leases/${encodeURIComponent(leaseId)}/complete`,
      report,
    );
    return (await this.#client.expect(answer, 200)) as Completion;
  }

  /** POST /pools/{pool}/keys/{keyId}/usage: one use counted without a lease (no cap applies). Never asked again once sent. */
  async increment(keyId: string): Promise<CountedUse> {
    const path = `${this.#base}/keys/${encodeURIComponent(keyId)}/usage`;
    const answer = await this.#client.call('POST', path, undefined, { repeatable: false });
    return (await this.#client.expect(answer, 200)) as CountedUse;
  }

  /** `increment` for the key holding this secret: its id is computed here, the secret is not sent. */
  incrementUsage(apiKey: string): Promise<CountedUse> {
    return this.increment(keyIdFor(apiKey));
  }

  /** withKey over this pool: lease, call `fn` with the key, complete the lease by what it returned or threw. */
  withKey(fn: ProviderCall, options: WithKeyOptions = {}): Promise<Response> {
    return withKey({ ...options, keys: this }, fn);
  }

  /**
   * Proxy mode: keypool calls the pool's provider at `path` (e.g.
   * "v2beta/stable-image/generate/core") with a key of its own choosing and completes the lease
   * from the provider's answer; the caller never holds a key. Sent to `proxyUrl` (default: the
   * API's URL), signed for the proxy's SigV4 service. Resolves to the provider's answer as it
   * streams in; keypool's own refusals (NoUsableKey, PoolNotFound, ...) are thrown, as is an
   * answer of the gateway in front of keypool (no `x-keypool-outcome`: IAM's 403...). An
   * Idempotency-Key always goes with it: calling again with the same `idempotencyKey` after a
   * dropped connection replays the answer instead of billing twice, or, when the provider may
   * have billed it and no answer was kept, throws IdempotencyConflict rather than ask again.
   * Only a connection never made is retried here.
   */
  async proxy(path: string, init: ProxyInit = {}): Promise<Response> {
    const [rawPath = '', search] = path.split(/\?(.*)/s, 2);
    const providerPath = rawPath
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map(encodeURIComponent)
      .join('/');
    if (!providerPath)
      throw new RangeError('keypool: proxy needs the provider path, e.g. v2beta/stable-image/generate/core');
    const endpoint = this.#client.proxyEndpoint;
    const method = init.method ?? 'POST';
    // fetch's own encoding of the body (a multipart boundary, a content-type), made once so the
    // signature covers exactly the bytes sent.
    const prepared = new Request(endpoint.base, {
      method,
      ...(init.headers ? { headers: init.headers } : {}),
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const body = init.body === undefined ? undefined : new Uint8Array(await prepared.arrayBuffer());
    const headers = { ...Object.fromEntries(prepared.headers), 'idempotency-key': init.idempotencyKey ?? randomUUID() };
    const controller = new AbortController();
    const abort = (): void => controller.abort(init.signal?.reason);
    if (init.signal?.aborted) abort();
    init.signal?.addEventListener('abort', abort, { once: true });
    const release = (): void => init.signal?.removeEventListener('abort', abort);
    const timer = setTimeout(
      () => controller.abort(new DOMException('keypool: no answer from the proxy in time', 'TimeoutError')),
      init.timeoutMs ?? PROXY_TIMEOUT_MS,
    );
    let response: Response;
    try {
      response = await sendWithRetries(
        () =>
          endpoint.send({
            method,
            path: `${this.#base}/proxy/${providerPath}`,
            ...(search === undefined ? {} : { query: new URLSearchParams(search) }),
            headers,
            ...(body === undefined ? {} : { body }),
            signal: controller.signal,
          }),
        { retries: this.#client.retries, repeatable: false, ...this.#client.waiting },
        (answer) => answer.body?.cancel() ?? Promise.resolve(),
      );
    } catch (error) {
      release();
      // The caller's own abort is theirs to see as they made it.
      if (error instanceof KeypoolUnavailable && init.signal?.aborted) throw init.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const refusal = response.status >= 400 ? await notTheProviders(response) : undefined;
    if (refusal) {
      release();
      await response.body?.cancel().catch(() => undefined);
      throw errorFromAnswer(
        { status: response.status, body: refusal.body, headers: response.headers },
        await endpoint.signs(),
      );
    }
    return untilRead(response, release);
  }
}

/**
 * The answer, its body handed on as it arrives, `done` called once that body ends, fails or is
 * cancelled: the caller's signal keeps its listener (an abort still stops the body) only as long
 * as the body streams, so a signal shared by many calls does not gather one per call.
 */
function untilRead(response: Response, done: () => void): Response {
  if (!response.body) {
    done();
    return response;
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(stream) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          done();
          stream.close();
        } else stream.enqueue(chunk.value);
      } catch (error) {
        done();
        stream.error(error);
      }
    },
    cancel(reason) {
      done();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/**
 * An error answer of the proxy that is not the provider's: keypool's own refusal (`{ error,
 * message }`), or the gateway's in front of keypool (IAM's 403, its throttling's 429, a function
 * that failed), which carries none of keypool's headers, where every provider answer keypool
 * passes on carries `x-keypool-outcome`. Its body when it is JSON; undefined for the provider's.
 */
async function notTheProviders(response: Response): Promise<{ body: unknown } | undefined> {
  const body = (response.headers.get('content-type') ?? '').includes('json')
    ? json(await response.clone().text())
    : undefined;
  const { error, message } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof error === 'string' && typeof message === 'string') return { body };
  return response.headers.has('x-keypool-outcome') ? undefined : { body };
}
