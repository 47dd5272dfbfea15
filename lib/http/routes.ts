/**
 * The HTTP contract: every route, the Lambda entry point that serves it, and its schemas.
 * The CDK stack, the local server and the OpenAPI document all read this one table.
 */
import type * as z from 'zod/mini';
import * as s from './schemas.js';

export type FunctionName = 'meta' | 'keys' | 'list' | 'lease' | 'counting';

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  function: FunctionName;
  summary: string;
  /** false: the only route a deployed API serves without IAM authorization */
  authorized: boolean;
  body?: z.ZodMiniType;
  bodyOptional?: boolean;
  query?: z.ZodMiniType;
  params?: z.ZodMiniType;
}

export const ROUTES = {
  'GET /health': {
    method: 'GET', path: '/health', function: 'meta', authorized: false, summary: 'Liveness',
  },
  'GET /openapi.json': {
    method: 'GET', path: '/openapi.json', function: 'meta', authorized: true, summary: 'This document',
  },
  'POST /keys': {
    method: 'POST', path: '/keys', function: 'keys', authorized: true, summary: 'Import keys (dedupes by fingerprint)',
    body: s.ImportBody,
  },
  'GET /keys': {
    method: 'GET', path: '/keys', function: 'list', authorized: true, summary: 'List keys, secrets masked',
    query: s.ListQuery,
  },
  'PATCH /keys/{keyId}': {
    method: 'PATCH', path: '/keys/{keyId}', function: 'keys', authorized: true, summary: 'Enable or disable a key',
    params: s.KeyIdParams, body: s.SetStatusBody,
  },
  'POST /keys/{keyId}/usage': {
    method: 'POST', path: '/keys/{keyId}/usage', function: 'counting', authorized: true, summary: 'Count one use without a lease',
    params: s.KeyIdParams,
  },
  'POST /leases': {
    method: 'POST', path: '/leases', function: 'lease', authorized: true, summary: 'Lease the least recently used usable key',
    body: s.LeaseBody, bodyOptional: true,
  },
  'POST /leases/{leaseId}/complete': {
    method: 'POST', path: '/leases/{leaseId}/complete', function: 'counting', authorized: true, summary: 'Report the outcome of a lease',
    params: s.LeaseIdParams, body: s.CompleteBody, bodyOptional: true,
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteKey = keyof typeof ROUTES;

export const ROUTE_KEYS = Object.keys(ROUTES) as RouteKey[];

/** The entry point that answers requests no route matches (API Gateway's `$default`). */
export const DEFAULT_ROUTE_FUNCTION: FunctionName = 'meta';

export type RouteMatch =
  | { found: true; routeKey: RouteKey; params: Record<string, string> }
  | { found: false; reason: 'not_found' | 'method_not_allowed'; allowed: string[] };

function segmentsMatch(template: string, path: string): Record<string, string> | undefined {
  const want = template.split('/');
  const have = path.split('/');
  if (want.length !== have.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? '';
    const h = have[i] ?? '';
    if (w.startsWith('{') && w.endsWith('}')) {
      if (h === '') return undefined;
      params[w.slice(1, -1)] = h;
    } else if (w !== h) return undefined;
  }
  return params;
}

/** Finds the route for a request as API Gateway would; a known path with another method is a 405. */
export function matchRoute(method: string, path: string): RouteMatch {
  const allowed: string[] = [];
  for (const routeKey of ROUTE_KEYS) {
    const spec: RouteSpec = ROUTES[routeKey];
    const params = segmentsMatch(spec.path, path);
    if (!params) continue;
    if (spec.method === method.toUpperCase()) return { found: true, routeKey, params };
    allowed.push(spec.method);
  }
  return { found: false, reason: allowed.length ? 'method_not_allowed' : 'not_found', allowed };
}
