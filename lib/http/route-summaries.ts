/**
 * What each route of the HTTP contract does, in one line: the OpenAPI document's summaries.
 * Apart from the route table (./routes.ts) so that the Lambda functions, which read the table
 * to route and validate, do not carry the document's prose; the type asks for every route.
 */
import { MAX_VERIFY_BATCH } from '../domain/primitives.js';
import type { RouteKey } from './routes.js';

export const ROUTE_SUMMARIES: Readonly<Record<RouteKey, string>> = {
  'GET /health': 'Liveness',
  'GET /openapi.json': 'This document',
  'GET /pools': 'Every pool and its policy',
  'PUT /pools/{pool}': "Create a pool or change its policy (absent fields keep their value; a new pool's default)",
  'GET /pools/{pool}': "A pool's policy",
  'DELETE /pools/{pool}': 'Delete a pool (with retireKeys=true, its keys retired first)',
  'POST /pools/{pool}/keys': `Import keys into the pool (creates it with the defaults if absent; dedupes by fingerprint; revive=true revives retired keys; verify=true asks the provider about each key first, at most ${MAX_VERIFY_BATCH} keys a request)`,
  'GET /pools/{pool}/keys': "One page of the pool's keys, secrets masked",
  'GET /pools/{pool}/accounts': "One page of the pool's accounts: keys, usable keys, credits, status",
  'PATCH /pools/{pool}/keys/{keyId}': 'Enable or disable a key, reset its count, or set its account',
  'DELETE /pools/{pool}/keys/{keyId}': 'Retire a key: never leased again, its secret destroyed, its record kept',
  'POST /pools/{pool}/keys/{keyId}/usage': 'Count one use without a lease',
  'POST /pools/{pool}/leases': 'Lease the least recently used usable key of the pool',
  'POST /pools/{pool}/leases/{leaseId}/complete': 'Report the outcome of a lease',
};
