/**
 * `withKey(options, fn)`: lease a key, call the provider with it, and complete the lease by
 * what the provider answered, so no caller ever forgets to report a use. Works over the HTTP
 * API (KeypoolClient) or directly on a Broker inside the account (brokerKeySource).
 */
import { maskKey } from '../domain/keys.js';
import type { CompletionReport, LeaseRequest, Outcome } from '../domain/types.js';
import { redact } from '../shared/redact.js';
import { checkedWait, defaultSleep, type KeySource, leaseWaiting, WaitBudget } from './key-source.js';

export interface WithKeyOptions extends LeaseRequest {
  /** where leases come from, for one pool: a KeypoolClient (HTTP API) or brokerKeySource(broker, pool) (same account) */
  keys: KeySource;
  /** further attempts, each with another lease, after a 401/402/429/5xx (default 2) */
  retries?: number;
  /** base of the jittered backoff before a retry, ms (default 250; doubles each retry) */
  backoffMs?: number;
  /** one attempt's limit, ms (default 60 s): fn gets an AbortSignal; past it the attempt is a failure */
  timeoutMs?: number;
  /**
   * when the pool is dry but a cooling key comes back (NoUsableKey.retryAfterSeconds), sleep
   * for it and lease again: the most this call sleeps so, in total over all its leases,
   * seconds (default: the source's maxWaitSeconds, else 0 = throw NoUsableKey at once)
   */
  maxWaitSeconds?: number;
  /** told when completing a lease fails (the use then stays counted); errors never hold the secret */
  onCompletionError?: (error: unknown, leaseId: string) => void;
  sleep?: (ms: number) => Promise<void>;
  /** a number in [0, 1) for backoff and wait jitter (default Math.random) */
  random?: () => number;
}

export interface KeyAttempt {
  keyId: string;
  leaseId: string;
  /** 0 for the first attempt */
  attempt: number;
  /** aborted when the attempt's time is up: pass it to fetch */
  signal: AbortSignal;
}

/** One provider call: returns the provider's Response, or throws (timeout, network). */
export type ProviderCall = (apiKey: string, attempt: KeyAttempt) => Promise<Response>;

export interface AttemptRecord {
  keyId: string;
  /** the provider's HTTP status; undefined when the call threw */
  status: number | undefined;
  outcome: Outcome;
}

/** The provider call failed on every attempt, or threw; the message never holds a secret. */
export class ProviderCallError extends Error {
  override readonly name = 'ProviderCallError';
  constructor(
    message: string,
    /** the provider's status on the last attempt (undefined: it threw) */
    readonly status: number | undefined,
    readonly attempts: AttemptRecord[],
  ) {
    super(message);
  }
}

/**
 * Errors a request cannot have reached the provider with: the connection was never made. Any
 * other throw (a timeout, a reset or a hang-up mid-answer) may come after the provider got the
 * request and billed it.
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

/**
 * How a call that threw completes its lease: `failure` (refunded) when the request surely never
 * left, else `unknown` (kept counted, slot freed): refunding a use the provider probably billed
 * would let a key pass its cap.
 */
export function outcomeForThrow(error: unknown): Outcome {
  const codeOf = (e: unknown): unknown => (typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined);
  const cause = typeof error === 'object' && error !== null && 'cause' in error ? error.cause : undefined;
  const code = codeOf(error) ?? codeOf(cause);
  return typeof code === 'string' && NOT_SENT.has(code) ? 'failure' : 'unknown';
}

/** How a provider answer completes the lease, and whether another key might do better. */
export function outcomeFor(status: number): { outcome: Outcome; retry: boolean } {
  if (status >= 200 && status < 300) return { outcome: 'success', retry: false };
  if (status === 401) return { outcome: 'invalid_key', retry: true };
  if (status === 402) return { outcome: 'out_of_credits', retry: true };
  if (status === 429) return { outcome: 'rate_limited', retry: true };
  if (status >= 500) return { outcome: 'failure', retry: true };
  // 403 content moderation (the prompt was refused, not the key), 400, 404, ...: no retry.
  return { outcome: 'failure', retry: false };
}

/** The longest cooldown a completion may ask for (the API's limit for retryAfterSeconds). */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/**
 * A provider's Retry-After as whole seconds for a rate_limited completion: a delay of 1 or more
 * seconds, at most MAX_RETRY_AFTER_SECONDS (a longer one is cut to it, so the key still rests
 * as long as the API allows rather than only the pool's default cooldown). An HTTP date, 0, or
 * anything else: undefined, and the pool's cooldown applies.
 */
export function retryAfterSeconds(response: Pick<Response, 'headers'>): number | undefined {
  const value = response.headers.get('retry-after')?.trim() ?? '';
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  const seconds = Number(value);
  return seconds >= 1 ? Math.min(seconds, MAX_RETRY_AFTER_SECONDS) : undefined;
}

function mentions(error: unknown, secret: string, depth = 0): boolean {
  if (depth > 4 || error === null || error === undefined) return false;
  if (typeof error !== 'object') return typeof error === 'string' && error.includes(secret);
  const e = error as { message?: unknown; stack?: unknown; cause?: unknown };
  return (
    [e.message, e.stack].some((t) => typeof t === 'string' && t.includes(secret)) ||
    mentions(e.cause, secret, depth + 1)
  );
}

/** The error as thrown, unless it carries the secret somewhere: then a secret-free replacement. */
function scrubbed(error: unknown, apiKey: string, attempts: AttemptRecord[]): unknown {
  if (!mentions(error, apiKey)) return error;
  const e = error as { name?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message.split(apiKey).join(maskKey(apiKey)) : 'error';
  return new ProviderCallError(
    `the provider call threw ${typeof e.name === 'string' ? e.name : 'an error'}: ${redact(message).slice(0, 300)}`,
    undefined,
    attempts,
  );
}

/**
 * Leases a key, runs `fn(apiKey)`, completes the lease by the answer (2xx success, 401
 * invalid_key, 402 out_of_credits, 429 rate_limited with the provider's Retry-After, anything
 * else failure) and returns the Response. 401/402/429/5xx are retried with another key up to
 * `retries` times; when none is left it throws ProviderCallError. A 403 (content moderation) or
 * another 4xx is returned as it is, without retry. If `fn` times out or throws after the
 * request may have left, the lease is completed `unknown` (the use stays counted: the provider
 * probably billed it); only a connection never made is a `failure`; the error is rethrown. A dry pool throws NoUsableKey, after waiting
 * for a cooling key only while the sleeps of the whole call stay within `maxWaitSeconds`. The
 * lease is always completed; no error carries the secret.
 */
export async function withKey(options: WithKeyOptions, fn: ProviderCall): Promise<Response> {
  const retries = options.retries ?? 2;
  const backoffMs = options.backoffMs ?? 250;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  // One budget for the whole call: waits on later attempts spend what earlier ones left.
  const budget = new WaitBudget(checkedWait(options.maxWaitSeconds ?? options.keys.maxWaitSeconds, 'withKey'));
  const request: LeaseRequest = {
    ...(options.maxUses === undefined ? {} : { maxUses: options.maxUses }),
    ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
  };
  const attempts: AttemptRecord[] = [];
  const complete = async (leaseId: string, report: CompletionReport): Promise<void> => {
    try {
      await options.keys.complete(leaseId, report);
    } catch (error) {
      options.onCompletionError?.(error, leaseId);
    }
  };
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await sleep(random() * backoffMs * 2 ** (attempt - 1));
    // The source is told not to wait itself: withKey waits, so its own bound holds for the whole call.
    const grant = await leaseWaiting(() => options.keys.lease(request, { maxWaitSeconds: 0 }), budget, {
      sleep,
      random,
    });
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, fail) => {
      timer = setTimeout(() => {
        const error = new ProviderCallError(`the provider call took longer than ${timeoutMs} ms`, undefined, attempts);
        controller.abort(error);
        fail(error);
      }, timeoutMs);
    });
    let response: Response;
    try {
      response = await Promise.race([
        fn(grant.apiKey, { keyId: grant.keyId, leaseId: grant.leaseId, attempt, signal: controller.signal }),
        timedOut,
      ]);
    } catch (error) {
      const outcome = outcomeForThrow(error);
      attempts.push({ keyId: grant.keyId, status: undefined, outcome });
      await complete(grant.leaseId, { outcome });
      throw scrubbed(error, grant.apiKey, attempts);
    } finally {
      clearTimeout(timer);
    }
    const { outcome, retry } = outcomeFor(response.status);
    attempts.push({ keyId: grant.keyId, status: response.status, outcome });
    const wait = outcome === 'rate_limited' ? retryAfterSeconds(response) : undefined;
    await complete(grant.leaseId, { outcome, ...(wait === undefined ? {} : { retryAfterSeconds: wait }) });
    if (!retry) return response;
    // A discarded answer's body is released so its connection can be reused.
    await response.body?.cancel().catch(() => undefined);
    if (attempt >= retries) {
      const seen = attempts.map((a) => `${a.keyId}: ${a.status ?? 'threw'} ${a.outcome}`).join('; ');
      throw new ProviderCallError(
        `the provider refused ${attempts.length} attempt(s), the last with ${response.status} (${seen})`,
        response.status,
        attempts,
      );
    }
  }
}
