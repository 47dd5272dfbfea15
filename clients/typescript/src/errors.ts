/**
 * keypool's answers as errors: one class per `error` code of the API, mapped in one place
 * (errorFromAnswer). A message is the API's own (which never holds a secret) passed through
 * safeText, or written here from the status; no error ever carries an API key.
 */

export interface KeypoolErrorOptions {
  /** the HTTP status of the answer (none when keypool was not reached) */
  status?: number;
  /** the API's `error` code, for a class that covers several (KeypoolApiError) */
  code?: string;
  /** seconds the answer asked to wait (its `retryAfterSeconds` or Retry-After) */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** Any refusal or failure of keypool: `code` is the API's `error` code, `status` the HTTP status. */
export class KeypoolError extends Error {
  /** the code this class stands for */
  static readonly code: string = 'keypool_error';
  readonly code: string;
  readonly status: number | undefined;
  /** seconds to wait before asking again, when the answer said */
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, options: KeypoolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? new.target.code;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A field the API refused, as `details` of a 400 name it. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** 400: a malformed or out-of-range request, or a `maxUses`/`ttlSeconds` above the pool's policy (`details` name the limit). */
export class InvalidRequest extends KeypoolError {
  static override readonly code = 'invalid_request';
  readonly details: FieldProblem[];
  constructor(message: string, options: KeypoolErrorOptions & { details?: FieldProblem[] } = {}) {
    super(message, options);
    this.details = options.details ?? [];
  }
}

/** 403: IAM refused the request (unsigned, or signed by someone without this pool's client policy). */
export class AccessDenied extends KeypoolError {
  static override readonly code: string = 'access_denied';
}

/** 403 from the local server: the Host header is not a loopback name. */
export class ForbiddenHost extends AccessDenied {
  static override readonly code = 'forbidden_host';
}

/** 403 from the local server: a request from a web page's origin. */
export class ForbiddenOrigin extends AccessDenied {
  static override readonly code = 'forbidden_origin';
}

/** 404: no route for this method and path. */
export class NotFound extends KeypoolError {
  static override readonly code = 'not_found';
}

/** 404: no such pool. */
export class PoolNotFound extends KeypoolError {
  static override readonly code = 'pool_not_found';
}

/** 404: no such key in this pool. */
export class KeyNotFound extends KeypoolError {
  static override readonly code = 'key_not_found';
}

/** 404: no such lease in this pool (or an operator's reset ended it). */
export class LeaseNotFound extends KeypoolError {
  static override readonly code = 'lease_not_found';
}

/** 405: the route exists, not with this method. */
export class MethodNotAllowed extends KeypoolError {
  static override readonly code = 'method_not_allowed';
}

/**
 * Why a dry pool's keys are not usable, each a count of the `unusable` of a 409 no_usable_key:
 * `overCap` active but over the cap the lease asked for, `accountExhausted` in an account whose
 * credits ran out, the others keys with that status (retired keys are not counted).
 */
const UNUSABLE_REASONS = [
  'overCap',
  'cooling',
  'suspect',
  'exhausted',
  'disabled',
  'undecryptable',
  'accountExhausted',
] as const;

/** A dry pool's keys a lease could not use, by why. */
export type UnusableCounts = Record<(typeof UNUSABLE_REASONS)[number], number>;

/** Why a pool is dry, as a 409 no_usable_key tells it (absent when keypool had no count to give in time). */
export interface DryPool {
  /** the pool's keys a lease could not use, by why (retired keys are not counted) */
  unusable?: UnusableCounts;
  /** when those keys were counted (ISO 8601, at most a minute before the answer) */
  countedAt?: string;
  /** the earliest end of a rest the count saw, while it is ahead (ISO 8601) */
  nextReturnAt?: string;
}

/**
 * 409: no key of the pool is under the cap; `retryAfterSeconds`: when a cooling key comes back,
 * if one is cooling; `unusable`, `countedAt`, `nextReturnAt`: why the pool's keys are not usable.
 */
export class NoUsableKey extends KeypoolError implements DryPool {
  static override readonly code = 'no_usable_key';
  readonly unusable: UnusableCounts | undefined;
  readonly countedAt: string | undefined;
  readonly nextReturnAt: string | undefined;
  constructor(message: string, options: KeypoolErrorOptions & DryPool = {}) {
    super(message, options);
    this.unusable = options.unusable;
    this.countedAt = options.countedAt;
    this.nextReturnAt = options.nextReturnAt;
  }
}

/**
 * 409: the Idempotency-Key names a lease that cannot be answered again (another caller made it,
 * it was completed or ended, or its key is no longer leasable in the pool), or a proxied request
 * that cannot be (another caller's, or one the provider may have billed with no answer kept to
 * replay: a 2xx not kept, or no answer after it went out); use a new key.
 */
export class IdempotencyConflict extends KeypoolError {
  static override readonly code = 'idempotency_conflict';
}

/** 409: the pool still holds keys that are not retired; delete it with retireKeys to retire them. */
export class PoolNotEmpty extends KeypoolError {
  static override readonly code = 'pool_not_empty';
}

/** 409: the key is stored in plain text (from before sealing): `keypool reseal` first, then retire it. */
export class KeyNotSealed extends KeypoolError {
  static override readonly code = 'key_not_sealed';
}

/** 403: a proxy path the pool's provider does not allow (the account and balance endpoints among them); nothing was leased. */
export class PathNotAllowed extends KeypoolError {
  static override readonly code = 'path_not_allowed';
}

/** 404: a job id keypool did not start in this pool (or whose pin expired after 24 h). */
export class JobNotFound extends KeypoolError {
  static override readonly code = 'job_not_found';
}

/** 409: a proxy request to a pool with no provider (`provider: none`); nothing was called. */
export class NoProvider extends KeypoolError {
  static override readonly code = 'no_provider';
}

/** 409: a proxy request with this Idempotency-Key is still running; retry after `retryAfterSeconds` for its answer. */
export class RequestInProgress extends KeypoolError {
  static override readonly code = 'request_in_progress';
}

/** 410: the lease ended before it was completed; its use stays counted. */
export class LeaseExpired extends KeypoolError {
  static override readonly code = 'lease_expired';
}

/** 413: the request body is over the API's limit. */
export class PayloadTooLarge extends KeypoolError {
  static override readonly code = 'payload_too_large';
}

/**
 * 429: this caller is past the pool's `maxClientReportsPerMinute`; a use counted without a lease
 * was not counted. Retry after `retryAfterSeconds` (the next minute).
 */
export class ReportBudgetExceeded extends KeypoolError {
  static override readonly code = 'report_budget_exceeded';
}

/** 415 from the local server: a body that is not JSON. */
export class UnsupportedMediaType extends KeypoolError {
  static override readonly code = 'unsupported_media_type';
}

/** 503: the key service that opens stored secrets failed; nothing was counted. Retry after `retryAfterSeconds`. */
export class SealingUnavailable extends KeypoolError {
  static override readonly code = 'sealing_unavailable';
}

/** 503: keypool does not hold the wrapping key a secret was sealed under: an operator must fix its setting; nothing was counted. */
export class SealingMisconfigured extends KeypoolError {
  static override readonly code = 'sealing_misconfigured';
}

/** 503: the table was too busy to answer after keypool's own retries; nothing was counted. Retry after `retryAfterSeconds`. */
export class StoreThrottled extends KeypoolError {
  static override readonly code = 'store_throttled';
}

/** 502: proxy mode reached no answer to pass on: no connection to the provider on any key tried, or one that broke after the request went out (its use stays counted). */
export class ProviderFailed extends KeypoolError {
  static override readonly code = 'provider_failed';
}

/** 504: proxy mode's provider call passed the pool's proxyTimeoutSeconds after the request went out: its use stays counted, no other key was tried. */
export class ProviderTimeout extends KeypoolError {
  static override readonly code = 'provider_timeout';
}

/** 500: keypool failed; its message says no more. */
export class InternalError extends KeypoolError {
  static override readonly code = 'internal_error';
}

/** Any other answer that is not what the call expects: `code` says which (`http_error`, `redirect`, a code newer than this package). */
export class KeypoolApiError extends KeypoolError {
  static override readonly code = 'http_error';
}

/** keypool could not be reached (refused, reset, timed out) after the client's own retries; `cause` says how. */
export class KeypoolUnavailable extends KeypoolError {
  static override readonly code = 'unavailable';
}

/** The class of each code an answer of keypool carries. */
const BY_CODE: ReadonlyMap<string, typeof KeypoolError> = new Map(
  [
    InvalidRequest,
    ForbiddenHost,
    ForbiddenOrigin,
    NotFound,
    PoolNotFound,
    KeyNotFound,
    LeaseNotFound,
    MethodNotAllowed,
    NoUsableKey,
    IdempotencyConflict,
    PoolNotEmpty,
    KeyNotSealed,
    PathNotAllowed,
    JobNotFound,
    NoProvider,
    RequestInProgress,
    LeaseExpired,
    PayloadTooLarge,
    ReportBudgetExceeded,
    UnsupportedMediaType,
    SealingUnavailable,
    SealingMisconfigured,
    StoreThrottled,
    ProviderFailed,
    ProviderTimeout,
    InternalError,
  ].map((error) => [error.code, error]),
);

/** The codes this package has a class for (every code the API documents). */
export const ERROR_CODES: readonly string[] = [...BY_CODE.keys()];

/** An AWS-looking credential, a provider key or any long token: masked wherever a text from outside is shown. */
const SECRET_SHAPED = /sk-[A-Za-z0-9_-]{8,}|[A-Za-z0-9_\-+/=]{32,}/g;
const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i;

/**
 * A text from outside (an answer's message) as an error may show it: at most 500 characters,
 * anything shaped like a secret masked. keypool's messages hold none; a gateway or proxy in
 * between might echo one. A UUID (a request id) stays whole.
 */
export function safeText(text: string): string {
  return text.replace(SECRET_SHAPED, (run) => (UUID.test(run) ? run : `${run.slice(0, 3)}...`)).slice(0, 500);
}

/** A wait in whole seconds from a Retry-After header: digits only (an HTTP date or 0 is none). */
export function retryAfterHeader(headers: Pick<Headers, 'get'> | undefined): number | undefined {
  const value = headers?.get('retry-after')?.trim() ?? '';
  return /^[0-9]{1,6}$/.test(value) && Number(value) > 0 ? Number(value) : undefined;
}

/** What errorFromAnswer reads of an answer. */
export interface ErrorAnswer {
  status: number;
  /** the body as parsed JSON (undefined when it was not JSON) */
  body: unknown;
  headers?: Pick<Headers, 'get'>;
}

const record = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** A no_usable_key answer's account of its pool: each part kept only in the API's shape (counts, ISO times). */
function dryPoolOf(body: Record<string, unknown>): DryPool {
  const counts = record(body.unusable);
  const whole = UNUSABLE_REASONS.every((field) => Number.isSafeInteger(counts[field]) && Number(counts[field]) >= 0);
  const unusable = Object.fromEntries(
    UNUSABLE_REASONS.map((field) => [field, Number(counts[field])]),
  ) as UnusableCounts;
  const time = (value: unknown): string | undefined =>
    typeof value === 'string' && ISO_TIME.test(value) ? value : undefined;
  const countedAt = time(body.countedAt);
  const nextReturnAt = time(body.nextReturnAt);
  return {
    ...(whole ? { unusable } : {}),
    ...(countedAt === undefined ? {} : { countedAt }),
    ...(nextReturnAt === undefined ? {} : { nextReturnAt }),
  };
}

/** A 400's refused fields as text an error may show (safeText), each `{ path, message }` and nothing more. */
function fieldProblems(body: Record<string, unknown>): FieldProblem[] {
  const text = (value: unknown): string => (typeof value === 'string' ? safeText(value) : '');
  return (Array.isArray(body.details) ? (body.details as unknown[]) : [])
    .filter((item) => typeof item === 'object' && item !== null)
    .map((item) => ({ path: text(record(item).path), message: text(record(item).message) }));
}

/**
 * The error for an answer of keypool (or of the API Gateway in front of it) that is not a
 * success: the class of its `error` code; for an answer without one (API Gateway's own), an
 * AccessDenied for a 403 (saying when the request went unsigned: `signed` false) and a
 * KeypoolApiError otherwise. `retryAfterSeconds` from the body, else from Retry-After.
 */
export function errorFromAnswer(answer: ErrorAnswer, signed = true): KeypoolError {
  const body = record(answer.body);
  const fromBody = body.retryAfterSeconds;
  const retryAfterSeconds =
    typeof fromBody === 'number' && Number.isInteger(fromBody) && fromBody > 0
      ? fromBody
      : retryAfterHeader(answer.headers);
  const options = { status: answer.status, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
  const message = typeof body.message === 'string' ? safeText(body.message) : `keypool answered ${answer.status}`;
  const code = body.error;
  if (typeof code === 'string') {
    const known = BY_CODE.get(code);
    if (known === InvalidRequest) return new InvalidRequest(message, { ...options, details: fieldProblems(body) });
    if (known === NoUsableKey) return new NoUsableKey(message, { ...options, ...dryPoolOf(body) });
    if (known) return new known(message, options);
    return new KeypoolApiError(message, { ...options, code: safeText(code).slice(0, 64) });
  }
  if (answer.status === 403) {
    const hint = signed ? '' : ' (the request went unsigned: no AWS credentials were found)';
    return new AccessDenied(`${message}${hint}`, options);
  }
  return new KeypoolApiError(message, options);
}
