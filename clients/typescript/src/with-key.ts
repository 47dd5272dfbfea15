/**
 * `withKey(options, fn)`: lease a key, call the provider with it, and complete the lease by
 * what the provider answered, so no caller ever forgets to report a use. `pool.withKey(fn)`
 * is this over a Pool; any KeySource will do.
 */
import { inspect } from 'node:util';
import { safeText } from './errors.js';
import { defaultSleep, neverSent, type Waiting } from './transport.js';
import type { CompletionReport, LeaseRequest, Outcome } from './types.js';
import { checkedWait, type KeySource, leaseWaiting, WaitBudget } from './waiting.js';

/** How withKey tries: everything but where the keys come from. */
export interface WithKeyOptions extends LeaseRequest, Waiting {
  /** further attempts, each with another lease, after a 401/402/429/5xx (default 2) */
  retries?: number;
  /** base of the jittered backoff before a retry, ms (default 250; doubles each retry) */
  backoffMs?: number;
  /** one attempt's limit, ms (default 60 s): fn gets an AbortSignal; past it the attempt completes unknown */
  timeoutMs?: number;
  /**
   * when the pool is dry but a cooling key comes back (NoUsableKey.retryAfterSeconds), sleep
   * for it and lease again: the most this call sleeps so, in total over all its leases,
   * seconds (default: the source's maxWaitSeconds, else 0 = throw NoUsableKey at once)
   */
  maxWaitSeconds?: number;
  /** told when completing a lease fails (the use then stays counted); errors never hold the secret */
  onCompletionError?: (error: unknown, leaseId: string) => void;
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

/** The provider call failed on every attempt, timed out, or threw with the secret in its error; the message never holds a secret. */
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
 * How a call that threw completes its lease: `failure` (refunded) when the request surely never
 * left, else `unknown` (kept counted, slot freed): refunding a use the provider probably billed
 * would let a key pass its cap.
 */
export function outcomeForThrow(error: unknown): Outcome {
  return neverSent(error) ? 'failure' : 'unknown';
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
 * A provider's Retry-After as a rate_limited completion takes it: whole seconds, 1 to
 * MAX_RETRY_AFTER_SECONDS (a longer wait is cut to it, so the key still rests as long as the
 * API allows). A number is rounded up; a header's text counts when it is digits. An HTTP date,
 * 0 or anything else: undefined, and the pool's cooldown applies.
 */
export function restSeconds(retryAfter: number | string | null | undefined): number | undefined {
  const seconds =
    typeof retryAfter === 'string'
      ? /^[0-9]{1,10}$/.test(retryAfter.trim())
        ? Number(retryAfter.trim())
        : NaN
      : (retryAfter ?? NaN);
  return seconds > 0 ? Math.min(Math.ceil(seconds), MAX_RETRY_AFTER_SECONDS) : undefined;
}

/** The provider's Retry-After on an answer, as restSeconds reads it. */
export function retryAfterSeconds(response: Pick<Response, 'headers'>): number | undefined {
  return restSeconds(response.headers.get('retry-after'));
}

/** What the outside may see of a secret: its first 3 and last 4 characters, less for a short one. */
export function maskKey(apiKey: string): string {
  const chars = Array.from(apiKey);
  if (chars.length >= 16) return `${chars.slice(0, 3).join('')}...${chars.slice(-4).join('')}`;
  return chars.length >= 8 ? `...${chars.slice(-2).join('')}` : '...';
}

/**
 * Whether the error shows the secret anywhere a log would: its message, stack and causes, and
 * every field of its own (an HTTP library's error keeps the request it sent, headers and all),
 * as util.inspect prints it and as JSON.stringify writes it.
 */
function mentions(error: unknown, secret: string): boolean {
  const views = [
    inspect(error, { depth: 8, maxArrayLength: Infinity, maxStringLength: Infinity, breakLength: Infinity }),
  ];
  try {
    // undefined for an error JSON cannot write (its declared type says string).
    const json = JSON.stringify(error) as string | undefined;
    if (json !== undefined) views.push(json);
  } catch {
    // A cyclic or unserialisable error is seen by inspect alone.
  }
  const e = (typeof error === 'object' && error !== null ? error : {}) as { message?: unknown; stack?: unknown };
  views.push(...[error, e.message, e.stack].filter((t): t is string => typeof t === 'string'));
  return views.some((view) => view.includes(secret));
}

/** The error as thrown, unless it carries the secret somewhere: then a secret-free replacement. */
function scrubbed(error: unknown, apiKey: string, attempts: AttemptRecord[]): unknown {
  if (!mentions(error, apiKey)) return error;
  const e = error as { name?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message.split(apiKey).join(maskKey(apiKey)) : 'error';
  return new ProviderCallError(
    `the provider call threw ${typeof e.name === 'string' ? e.name : 'an error'}: ${safeText(message).slice(0, 300)}`,
    undefined,
    attempts,
  );
}

/**
 * Leases a key from `keys`, runs `fn(apiKey)`, completes the lease by the answer (2xx success,
 * 401 invalid_key, 402 out_of_credits, 429 rate_limited with the provider's Retry-After,
 * anything else failure) and returns the Response. 401/402/429/5xx are retried with another key
 * up to `retries` times; when none is left it throws ProviderCallError. A 403 (content
 * moderation) or another 4xx is returned as it is, without retry. If `fn` throws before its
 * connection was made, the lease completes `failure` (the use is given back); any other throw,
 * or `timeoutMs` passing, completes it `unknown` (the use stays counted: the provider probably
 * billed it); the error is rethrown. A dry pool throws NoUsableKey, after waiting for a cooling
 * key only while the sleeps of the whole call stay within `maxWaitSeconds`. The lease is always
 * completed; no error carries the secret.
 */
export async function withKey(options: WithKeyOptions & { keys: KeySource }, fn: ProviderCall): Promise<Response> {
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
    const grant = await leaseWaiting(() => options.keys.lease({ ...request, maxWaitSeconds: 0 }), budget, {
      sleep,
      random,
    });
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, fail) => {
      timer = setTimeout(() => {
        const error = new ProviderCallError(`the provider call took longer than ${timeoutMs} ms`, undefined, attempts);
        controller.abort(error);
        fail(error);
      }, timeoutMs);
    });
    let response: Response;
    let judged: { outcome: Outcome; retry: boolean; wait: number | undefined };
    try {
      response = await Promise.race([
        fn(grant.apiKey, { keyId: grant.keyId, leaseId: grant.leaseId, attempt, signal: controller.signal }),
        timedOut,
      ]);
      // Read inside the try: an answer that is not a Response (from JavaScript) still completes the lease.
      const { outcome, retry } = outcomeFor(response.status);
      judged = { outcome, retry, wait: outcome === 'rate_limited' ? retryAfterSeconds(response) : undefined };
    } catch (error) {
      const outcome = outcomeForThrow(error);
      attempts.push({ keyId: grant.keyId, status: undefined, outcome });
      await complete(grant.leaseId, { outcome });
      throw scrubbed(error, grant.apiKey, attempts);
    } finally {
      clearTimeout(timer);
    }
    const { outcome, retry, wait } = judged;
    attempts.push({ keyId: grant.keyId, status: response.status, outcome });
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
