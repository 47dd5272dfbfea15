/**
 * What each route answers, for the OpenAPI document only: the Lambdas build their answers
 * typed and never load these schemas, which keeps them out of the function bundles.
 */
import type * as z from 'zod/mini';
import type { RouteKey } from './routes.js';
import * as s from './response-schemas.js';

export type RouteResponses = Record<number, { description: string; schema?: z.ZodMiniType }>;

const errors = (...codes: number[]): RouteResponses =>
  Object.fromEntries(
    codes.map((code) => [code, { description: ERROR_TEXT[code] ?? 'error', schema: s.ErrorResponse }]),
  );

/** Any route that reaches the table may answer it. */
const STORE_THROTTLED =
  'store_throttled: DynamoDB throttled the request, or refused it for concurrent transactions, past bounded retries; it says nothing about the pool (never a 409); retry after retryAfterSeconds (also the Retry-After header)';

const ERROR_TEXT: Record<number, string> = {
  400: "invalid_request: malformed JSON, wrong types, out-of-range values, unknown fields, or a value above the pool's policy",
  404: 'pool_not_found, key_not_found or lease_not_found (a key or lease of another pool is not found)',
  409: 'no_usable_key: the pool has no key under the cap; retryAfterSeconds (and a Retry-After header) when a cooling key comes back',
  410: 'lease_expired: the lease ended before it was completed; its use stays counted',
  413: 'payload_too_large: the body is over 256 KB',
  503: STORE_THROTTLED,
};

/** The 503 of the routes that seal or open a secret: the key service, or the table. */
const SEALING_OR_STORE: RouteResponses = {
  503: {
    description: `sealing_unavailable: the key service that seals and opens the stored secrets (KMS) failed; a lease counts nothing, an import may have written part of its batch (importing it again adds the rest); retry after retryAfterSeconds (also the Retry-After header). Or ${STORE_THROTTLED}`,
    schema: s.ErrorResponse,
  },
};

export const RESPONSES: Record<RouteKey, RouteResponses> = {
  'GET /health': { 200: { description: 'ok', schema: s.HealthResponse } },
  'GET /openapi.json': { 200: { description: 'OpenAPI 3.1 document' } },
  'GET /pools': { 200: { description: 'every pool', schema: s.PoolListResponse }, ...errors(503) },
  'PUT /pools/{pool}': {
    200: { description: 'the pool as it is now', schema: s.PoolViewSchema },
    ...errors(400, 413, 503),
  },
  'GET /pools/{pool}': { 200: { description: 'the pool', schema: s.PoolViewSchema }, ...errors(400, 404, 503) },
  'POST /pools/{pool}/keys': {
    201: { description: 'imported', schema: s.ImportResponse },
    ...errors(400, 413),
    ...SEALING_OR_STORE,
  },
  'GET /pools/{pool}/keys': { 200: { description: 'one page', schema: s.KeyPageResponse }, ...errors(400, 404, 503) },
  'PATCH /pools/{pool}/keys/{keyId}': {
    200: { description: 'the key', schema: s.KeyViewSchema },
    ...errors(400, 404, 413, 503),
  },
  'POST /pools/{pool}/keys/{keyId}/usage': {
    200: { description: 'the new count', schema: s.UsageResponse },
    ...errors(400, 404, 503),
  },
  'POST /pools/{pool}/leases': {
    200: { description: 'the lease, with the secret', schema: s.LeaseResponse },
    ...errors(400, 404, 409, 413),
    ...SEALING_OR_STORE,
  },
  'POST /pools/{pool}/leases/{leaseId}/complete': {
    200: { description: 'the key after completion', schema: s.CompleteResponse },
    ...errors(400, 404, 410, 413, 503),
  },
};
