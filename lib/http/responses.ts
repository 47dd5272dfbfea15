/**
 * What each route answers, for the OpenAPI document only: the Lambdas build their answers
 * typed and never load these schemas, which keeps them out of the function bundles.
 */
import type * as z from 'zod/mini';
import type { RouteKey, RouteSpec } from './routes.js';
import * as s from './response-schemas.js';

/**
 * What a route answers, by status. `codes`: the error codes this route may answer with that
 * status, where it answers fewer than the status has (the document lists every code of the
 * status otherwise).
 */
export type RouteResponses = Record<
  number,
  {
    description: string;
    schema?: z.ZodMiniType;
    codes?: readonly string[];
    /** an answer passed through from elsewhere (the provider's, in proxy mode): any media type, these headers (name: what it is) */
    passthrough?: { headers: Readonly<Record<string, string>> };
  }
>;

const errors = (...statuses: number[]): RouteResponses =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: ERROR_TEXT[status] ?? 'error', schema: s.ErrorResponse, codes: CODES_OF[status] },
    ]),
  );

/** An error status of one route that answers only `codes` of it (its description: `text`, else the status's). */
const answersOnly = (
  status: number,
  codes: readonly string[],
  text = ERROR_TEXT[status] ?? 'error',
): RouteResponses => ({
  [status]: { description: text, schema: s.ErrorResponse, codes },
});

/** Any route that reaches the table may answer it. */
const STORE_THROTTLED =
  'store_throttled: DynamoDB throttled the request, or refused it for concurrent transactions, past bounded retries; it says nothing about the pool (never a 409); retry after retryAfterSeconds (also the Retry-After header)';

const ERROR_TEXT: Record<number, string> = {
  400: "invalid_request: malformed JSON, wrong types, out-of-range values, unknown fields, or a value above the pool's policy",
  404: 'pool_not_found, key_not_found or lease_not_found (a key or lease of another pool is not found)',
  409: 'no_usable_key: the pool has no key under the cap; retryAfterSeconds (and a Retry-After header) when a resting key comes back; unusable counts the keys not usable by why, as of countedAt (at most a minute old). pool_not_empty: the pool still holds keys not retired (retireKeys=true retires them). idempotency_conflict: the Idempotency-Key names a lease that no longer stands (completed, ended, expired, its key no longer leasable in this pool) or another caller made it',
  410: 'lease_expired: the lease ended before it was completed; its use stays counted',
  405: 'method_not_allowed: the answer at this path to a method it does not take (never to this one); `Allow` lists the ones it takes',
  413: 'payload_too_large: the body is over 256 KB',
  415: 'unsupported_media_type, the local server only: a body sent without `Content-Type: application/json`',
  429: "API Gateway's throttling of the API (its own answer: a message only, without Retry-After): wait and try again, backing off",
  503: STORE_THROTTLED,
};

/**
 * The codes of a status that `errors()` answers, where they are fewer than the status has: a 503
 * of a route that neither seals nor opens a secret is only the table's.
 */
const CODES_OF: Record<number, readonly string[]> = { 503: ['store_throttled'] };

/** The 503 of the routes that seal or open a secret: the key service, its setting, or the table. */
export const SEALING_OR_STORE: RouteResponses = {
  503: {
    description: `sealing_unavailable: the key service that seals and opens the stored secrets (KMS) failed; a lease counts nothing, an import may have written part of its batch (importing it again adds the rest). sealing_misconfigured: a stored secret was sealed under a wrapping key this deployment does not hold (a wrong setting); nothing is counted or changed. Either: retry after retryAfterSeconds (also the Retry-After header). Or ${STORE_THROTTLED}`,
    schema: s.ErrorResponse,
  },
};

/** The usage route's 429: its own refusal of a caller past its report budget, or API Gateway's throttling. */
const USAGE_TOO_MANY = answersOnly(
  429,
  ['report_budget_exceeded'],
  `report_budget_exceeded: this caller made more than the pool's maxClientReportsPerMinute negative reports and lease-less counts this minute; nothing was counted; retry after retryAfterSeconds (also the Retry-After header). Otherwise: ${ERROR_TEXT[429] ?? ''}`,
);

const REFUSED_LOCALLY =
  'the local server (`npm start`) refuses a request addressed to a Host that is not a loopback name';

/**
 * What any route may answer besides its own: a bad request, a refusal, a method the path does
 * not take, throttling; and a body too large or not JSON where the route takes one.
 */
export function sharedErrors(spec: RouteSpec): RouteResponses {
  const refused =
    spec.access === 'public'
      ? `Only ${REFUSED_LOCALLY}`
      : `API Gateway refused the request: no valid SigV4 signature, or the caller's IAM policy does not allow this route (for this pool); its own answer, a message only. Also: ${REFUSED_LOCALLY}`;
  return {
    ...errors(400),
    403: { description: refused, schema: s.ErrorResponse },
    ...errors(405),
    // keypool's own 429 is the usage route's alone (USAGE_TOO_MANY): elsewhere only API Gateway throttles.
    ...answersOnly(429, []),
    ...(spec.body ? errors(413, 415) : spec.rawBody ? errors(413) : {}),
  };
}

export const RESPONSES: Record<RouteKey, RouteResponses> = {
  'GET /health': { 200: { description: 'ok', schema: s.HealthResponse } },
  'GET /openapi.json': { 200: { description: 'OpenAPI 3.1 document' } },
  'GET /pools': { 200: { description: 'every pool', schema: s.PoolListResponse }, ...errors(503) },
  'PUT /pools/{pool}': {
    200: { description: 'the pool as it is now', schema: s.PoolViewSchema },
    ...errors(400, 413, 503),
  },
  'GET /pools/{pool}': { 200: { description: 'the pool', schema: s.PoolViewSchema }, ...errors(400, 404, 503) },
  'DELETE /pools/{pool}': {
    200: { description: 'the pool is deleted', schema: s.PoolDeletionResponse },
    ...errors(400, 404, 409, 503),
  },
  'POST /pools/{pool}/keys': {
    201: { description: 'imported', schema: s.ImportResponse },
    ...errors(400, 413),
    ...SEALING_OR_STORE,
  },
  'GET /pools/{pool}/keys': { 200: { description: 'one page', schema: s.KeyPageResponse }, ...errors(400, 404, 503) },
  'GET /pools/{pool}/accounts': {
    200: { description: 'one page', schema: s.AccountPageResponse },
    ...errors(400, 404, 503),
  },
  'PATCH /pools/{pool}/keys/{keyId}': {
    200: { description: 'the key', schema: s.KeyViewSchema },
    ...errors(400, 404, 413, 503),
  },
  'DELETE /pools/{pool}/keys/{keyId}': {
    200: { description: 'the key, retired', schema: s.KeyViewSchema },
    ...errors(400, 404, 409, 503),
  },
  'POST /pools/{pool}/keys/{keyId}/usage': {
    200: { description: 'the new count', schema: s.UsageResponse },
    ...errors(400, 503),
    ...answersOnly(404, ['pool_not_found', 'key_not_found']),
    ...USAGE_TOO_MANY,
  },
  'POST /pools/{pool}/leases': {
    200: { description: 'the lease, with the secret', schema: s.LeaseResponse },
    ...errors(400, 413),
    ...answersOnly(404, ['pool_not_found']),
    ...answersOnly(
      409,
      ['no_usable_key', 'idempotency_conflict'],
      'no_usable_key: the pool has no key under the cap; retryAfterSeconds (and a Retry-After header) when a resting key comes back; unusable counts the keys not usable by why, as of countedAt (at most a minute old). idempotency_conflict: the Idempotency-Key names a lease that no longer stands (completed, ended, expired, its key no longer leasable in this pool) or another caller made it',
    ),
    ...SEALING_OR_STORE,
  },
  'POST /pools/{pool}/leases/{leaseId}/complete': {
    200: { description: 'the key after completion', schema: s.CompleteResponse },
    ...errors(400, 410, 413, 503),
    ...answersOnly(404, ['pool_not_found', 'lease_not_found']),
  },
};
