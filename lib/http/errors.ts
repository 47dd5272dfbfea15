/** Domain and edge errors to HTTP answers, in one place. A 500 says "internal error" and nothing more. */
import type { DryPool } from '../domain/dry-pool.js';
import { KeypoolError } from '../domain/errors.js';
import type { UnusableCounts } from '../domain/types.js';
import { redact } from '../shared/redact.js';

// The proxy use case refuses a body over its limit before leasing: the class lives in the domain.
export { PayloadTooLarge } from '../domain/errors.js';

export class RouteNotFound extends KeypoolError {
  readonly code = 'not_found';
  constructor(method: string, path: string) {
    // The path is the caller's text: shortened and passed through redact like any echo.
    super(`no route for ${method.slice(0, 16)} ${redact(path.slice(0, 200))}`);
  }
}

/**
 * Every code a keypool error carries over HTTP, and its status: the one table. The OpenAPI
 * document's `ErrorCode` enum is read from it (with the local server's codes below), so a code
 * added here is documented by construction.
 */
const STATUS: Record<string, number> = {
  invalid_request: 400,
  not_found: 404,
  pool_not_found: 404,
  key_not_found: 404,
  lease_not_found: 404,
  // A proxy path the pool's provider does not allow (account and balance endpoints among them).
  path_not_allowed: 403,
  job_not_found: 404,
  method_not_allowed: 405,
  no_usable_key: 409,
  idempotency_conflict: 409,
  // A pool that still holds keys not retired: DELETE /pools/{pool}?retireKeys=true retires them.
  pool_not_empty: 409,
  // A key from before sealing: retiring it waits for `keypool reseal` (its plain secret is out of every function's reach).
  key_not_sealed: 409,
  // A proxy request to a pool whose provider is `none`.
  no_provider: 409,
  // A proxy request whose Idempotency-Key's first request still runs: Retry-After says when to ask again.
  request_in_progress: 409,
  lease_expired: 410,
  payload_too_large: 413,
  // A caller past its report budget: a lease-less count is refused until the next minute.
  report_budget_exceeded: 429,
  // The wrapping-key service (KMS) failed: nothing is wrong with the request or the key, and a
  // retry may succeed. A 5xx, so the API's 5xx alarm sees an outage of the key service.
  sealing_unavailable: 503,
  // A stored secret was sealed under a wrapping key this process does not hold: a wrong setting
  // an operator must fix. Nothing was counted or marked; a 5xx, so the 5xx alarm calls them.
  sealing_misconfigured: 503,
  // DynamoDB throttled, or kept conflicting, past bounded retries: the caller retries after
  // Retry-After. Never a 409: a busy table says nothing about whether the pool has a key.
  store_throttled: 503,
  // Proxy mode: the provider gave no answer to pass on. A connection that could not be made on
  // any key tried, or that broke after the request went out (the use stays counted): 502.
  provider_failed: 502,
  // Proxy mode: the provider did not answer within the pool's proxyTimeoutSeconds after the
  // request went out: the use stays counted, no other key was tried.
  provider_timeout: 504,
};

/**
 * The 5xx codes that say the provider failed, not keypool (proxy mode): it could not be reached,
 * or broke off, or did not answer in time. Like a provider's own 5xx passed through, they are a
 * proxied provider failure.
 */
const PROVIDER_FAULT_CODES: ReadonlySet<string> = new Set(['provider_failed', 'provider_timeout']);

/**
 * Whether an error answer is a fault of keypool's own: a 5xx (an internal error, the key
 * service, the table) that is not the provider's failure passed on.
 */
export function isKeypoolFault(answer: { status: number; body: { error: string } }): boolean {
  return answer.status >= 500 && !PROVIDER_FAULT_CODES.has(answer.body.error);
}

/**
 * What the local server (`npm start`, lib/local/server.ts) refuses before any handler runs, and
 * the status of each: it has no IAM in front of it, so it turns away what a web page in a
 * browser on the same machine could send. Never answered on AWS.
 */
export const LOCAL_SERVER_STATUS = {
  forbidden_host: 403,
  forbidden_origin: 403,
  unsupported_media_type: 415,
} as const;

export type LocalServerRefusal = keyof typeof LOCAL_SERVER_STATUS;

/** The code of every answer that is not a KeypoolError: a 500 that says nothing more. */
export const INTERNAL_ERROR = { code: 'internal_error', status: 500 } as const;

/** Every `error` code an answer of keypool (on AWS or the local server) may carry, each once. */
export const ERROR_CODES: readonly string[] = [
  ...new Set([...Object.keys(STATUS), ...Object.keys(LOCAL_SERVER_STATUS), INTERNAL_ERROR.code]),
];

/** The status of every code in ERROR_CODES. */
export function statusOfCode(code: string): number {
  return STATUS[code] ?? (LOCAL_SERVER_STATUS as Record<string, number>)[code] ?? INTERNAL_ERROR.status;
}

/** An error that asks for response headers besides its body (e.g. `allow` on a 405). */
export interface WithHeaders {
  readonly headers: Record<string, string>;
}

function headersOf(error: unknown): Record<string, string> {
  return typeof error === 'object' && error !== null && 'headers' in error ? (error as WithHeaders).headers : {};
}

export interface ErrorBody {
  error: string;
  message: string;
  /**
   * no_usable_key: seconds until a resting key comes back; sealing_unavailable,
   * sealing_misconfigured, store_throttled and request_in_progress: seconds to wait before trying again;
   * report_budget_exceeded: seconds to the next minute (each also the Retry-After header)
   */
  retryAfterSeconds?: number;
  details?: { path: string; message: string }[];
  /** no_usable_key: the pool's keys a lease could not use, by why (lib/domain/dry-pool.ts) */
  unusable?: UnusableCounts;
  /** no_usable_key: when those keys were counted (at most a minute before) */
  countedAt?: string;
  /** no_usable_key: the earliest end of a rest the count saw, while it is ahead */
  nextReturnAt?: string;
}

/**
 * The wait an error asks its caller for (NoUsableKey while a key cools, SealingUnavailable,
 * SealingMisconfigured, StoreThrottled), read by shape: this module names none of them, so no
 * function bundles the sealer for it.
 */
function retryAfterOf(error: KeypoolError): number | undefined {
  return 'retryAfterSeconds' in error && typeof error.retryAfterSeconds === 'number'
    ? error.retryAfterSeconds
    : undefined;
}

/**
 * A refusal's account of its dry pool (NoUsableKey's `dry`), read by shape like retryAfterOf:
 * the lease function's error mapping names no use-case class.
 */
function dryOf(error: KeypoolError): Pick<ErrorBody, 'unusable' | 'countedAt' | 'nextReturnAt'> {
  const dry = 'dry' in error ? (error.dry as DryPool | undefined) : undefined;
  return dry ? { ...dry } : {};
}

/** The status and body for an error; anything that is not a KeypoolError is an internal error. */
export function errorAnswer(error: unknown): {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  known: boolean;
} {
  if (error instanceof KeypoolError && STATUS[error.code] !== undefined) {
    const details =
      'details' in error && Array.isArray(error.details) && error.details.length
        ? { details: error.details as ErrorBody['details'] }
        : {};
    const wait = retryAfterOf(error);
    const body: ErrorBody = {
      error: error.code,
      message: error.message,
      ...(wait === undefined ? {} : { retryAfterSeconds: wait }),
      ...details,
      ...dryOf(error),
    };
    const headers = { ...headersOf(error), ...(wait === undefined ? {} : { 'retry-after': String(wait) }) };
    return { status: STATUS[error.code] ?? 500, body, headers, known: true };
  }
  return {
    status: INTERNAL_ERROR.status,
    body: { error: INTERNAL_ERROR.code, message: 'internal error' },
    headers: {},
    known: false,
  };
}
