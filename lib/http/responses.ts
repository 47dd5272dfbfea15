/**
 * What each route answers, for the OpenAPI document only: the Lambdas build their answers
 * typed and never load these schemas, which keeps them out of the function bundles.
 */
import type * as z from 'zod/mini';
import { statusOfCode } from './errors.js';
import type { RouteKey, RouteSpec } from './routes.js';
import * as s from './response-schemas.js';

/**
 * What a route answers, by status. `codes`: on an error answer, the error codes this route
 * answers with that status, each once (the document lists these and no other; the status of
 * each is the one table's, lib/http/errors.ts).
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

/** Any route that reaches the table may answer it. */
const STORE_THROTTLED =
  'store_throttled: DynamoDB throttled the request, or refused it for concurrent transactions, past bounded retries (or a lease lost every race for keys still leasable); it says nothing about the pool (never a 409); retry after retryAfterSeconds (also the Retry-After header)';

/** What each error code means where a route answers it, for the answer's description. */
const CODE_TEXT: Readonly<Record<string, string>> = {
  invalid_request:
    "invalid_request: malformed JSON, a body or a query whose bytes are not UTF-8, wrong types, out-of-range values, unknown fields, or a value above the pool's policy",
  pool_not_found: 'pool_not_found: no pool of that name',
  key_not_found: 'key_not_found: no key with that id in this pool (a key of another pool is not found)',
  lease_not_found: 'lease_not_found: no lease with that id in this pool (a lease of another pool is not found)',
  job_not_found: 'job_not_found: a result id keypool did not start in this pool',
  lease_expired: 'lease_expired: the lease ended before it was completed; its use stays counted',
  pool_not_empty: 'pool_not_empty: the pool still holds keys not retired (retireKeys=true retires them)',
  key_not_sealed:
    'key_not_sealed: a key still in plain text, from before sealing, cannot be retired (`keypool reseal` first)',
  method_not_allowed:
    'method_not_allowed: the answer at this path to a method it does not take (never to this one); `Allow` lists the ones it takes',
  payload_too_large: 'payload_too_large: the body is over 256 KB',
  unsupported_media_type:
    'unsupported_media_type, the local server only: a body sent without `Content-Type: application/json`',
  sealing_unavailable:
    'sealing_unavailable: the key service that seals and opens the stored secrets (KMS) failed; a lease counts nothing, an import may have written part of its batch (importing it again adds the rest); retry after retryAfterSeconds (also the Retry-After header).',
  sealing_misconfigured:
    'sealing_misconfigured: a stored secret was sealed under a wrapping key this deployment does not hold (a wrong setting); nothing is counted or changed; retry after retryAfterSeconds (also the Retry-After header).',
  store_throttled: STORE_THROTTLED,
};

/** The answers' text where API Gateway's throttling is the only 429. */
const GATEWAY_THROTTLING =
  "API Gateway's throttling of the API (its own answer: a message only, without Retry-After): wait and try again, backing off";

/**
 * The error answers of a route that answers exactly `codes`: one answer per status (each code's
 * status is the one table's), naming those codes and no other of the status.
 */
export function errors(...codes: readonly string[]): RouteResponses {
  const byStatus = new Map<number, string[]>();
  for (const code of codes) byStatus.set(statusOfCode(code), [...(byStatus.get(statusOfCode(code)) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      { description: list.map((code) => CODE_TEXT[code] ?? code).join(' '), schema: s.ErrorResponse, codes: list },
    ]),
  );
}

/** An error status of one route that answers `codes` of it, described by `text` (their own texts by default). */
export const answersOnly = (
  status: number,
  codes: readonly string[],
  text = codes.map((code) => CODE_TEXT[code] ?? code).join(' '),
): RouteResponses => ({
  [status]: { description: text, schema: s.ErrorResponse, codes },
});

/** The 503 of the routes that seal or open a secret: the key service, its setting, or the table. */
export const SEALING_OR_STORE: RouteResponses = errors(
  'sealing_unavailable',
  'sealing_misconfigured',
  'store_throttled',
);

/** The usage route's 429: its own refusal of a caller past its report budget, or API Gateway's throttling. */
const USAGE_TOO_MANY = answersOnly(
  429,
  ['report_budget_exceeded'],
  `report_budget_exceeded: this caller made more than the pool's maxClientReportsPerMinute negative reports and lease-less counts this minute; nothing was counted; retry after retryAfterSeconds (also the Retry-After header). Otherwise: ${GATEWAY_THROTTLING}`,
);

/** What the local server refuses on every route, and why. */
export const LOCAL_REFUSALS = ['forbidden_host', 'forbidden_origin'] as const;

export const REFUSED_LOCALLY =
  'the local server (`npm start`) refuses a request addressed to a Host that is not a loopback name (forbidden_host), or sent by a page of another origin (forbidden_origin)';

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
    ...errors('invalid_request'),
    ...answersOnly(403, LOCAL_REFUSALS, refused),
    ...errors('method_not_allowed'),
    // keypool's own 429 is the usage route's alone (USAGE_TOO_MANY): elsewhere only API Gateway throttles.
    ...answersOnly(429, [], GATEWAY_THROTTLING),
    ...(spec.body
      ? errors('payload_too_large', 'unsupported_media_type')
      : spec.rawBody
        ? errors('payload_too_large')
        : {}),
  };
}

export const RESPONSES: Record<RouteKey, RouteResponses> = {
  'GET /health': { 200: { description: 'ok', schema: s.HealthResponse } },
  'GET /openapi.json': { 200: { description: 'OpenAPI 3.1 document' } },
  'GET /pools': { 200: { description: 'every pool', schema: s.PoolListResponse }, ...errors('store_throttled') },
  'PUT /pools/{pool}': {
    200: { description: 'the pool as it is now', schema: s.PoolViewSchema },
    ...errors('store_throttled'),
  },
  'GET /pools/{pool}': {
    200: { description: 'the pool', schema: s.PoolViewSchema },
    ...errors('pool_not_found', 'store_throttled'),
  },
  'DELETE /pools/{pool}': {
    200: { description: 'the pool is deleted', schema: s.PoolDeletionResponse },
    202: {
      description:
        'retireKeys=true only: the request stopped retiring keys before its time ran out (about 20 s), and the pool stays; send the same request again until it answers 200 (keys retired already are skipped)',
      schema: s.PoolDeletionPendingResponse,
    },
    ...errors('pool_not_found', 'pool_not_empty', 'key_not_sealed', 'store_throttled'),
  },
  'POST /pools/{pool}/keys': {
    201: { description: 'imported', schema: s.ImportResponse },
    ...SEALING_OR_STORE,
  },
  'GET /pools/{pool}/keys': {
    200: { description: 'one page', schema: s.KeyPageResponse },
    ...errors('pool_not_found', 'store_throttled'),
  },
  'GET /pools/{pool}/accounts': {
    200: { description: 'one page', schema: s.AccountPageResponse },
    ...errors('pool_not_found', 'store_throttled'),
  },
  'PATCH /pools/{pool}/keys/{keyId}': {
    200: { description: 'the key', schema: s.KeyViewSchema },
    ...errors('pool_not_found', 'key_not_found', 'store_throttled'),
  },
  'DELETE /pools/{pool}/keys/{keyId}': {
    200: { description: 'the key, retired', schema: s.KeyViewSchema },
    ...errors('pool_not_found', 'key_not_found', 'key_not_sealed', 'store_throttled'),
  },
  'POST /pools/{pool}/keys/{keyId}/usage': {
    200: { description: 'the new count', schema: s.UsageResponse },
    ...errors('pool_not_found', 'key_not_found', 'store_throttled'),
    ...USAGE_TOO_MANY,
  },
  'POST /pools/{pool}/leases': {
    200: { description: 'the lease, with the secret', schema: s.LeaseResponse },
    ...errors('pool_not_found'),
    ...answersOnly(
      409,
      ['no_usable_key', 'idempotency_conflict'],
      'no_usable_key: the pool has no key under the cap; retryAfterSeconds (and a Retry-After header) when a resting key comes back; unusable counts the keys not usable by why, as of countedAt (at most a minute old); both absent when the count could not be read or was not there within 300 ms (the first refusal of a large pool in a process: a later one carries it). idempotency_conflict: the Idempotency-Key names a lease that no longer stands (completed, ended, expired, its key no longer leasable in this pool) or another caller made it',
    ),
    ...SEALING_OR_STORE,
  },
  'POST /pools/{pool}/leases/{leaseId}/complete': {
    200: { description: 'the key after completion', schema: s.CompleteResponse },
    ...errors('pool_not_found', 'lease_not_found', 'lease_expired', 'store_throttled'),
  },
};
