/**
 * The HTTP contract: every route, the Lambda entry point that serves it, and its schemas.
 * The CDK stack, the local server and the OpenAPI document all read this one table.
 */
import type * as z from 'zod/mini';
import * as s from './schemas.js';

export type FunctionName = 'meta' | 'pools' | 'keys' | 'list' | 'lease' | 'counting';

/** The function of a route the HTTP API does not serve: proxy mode's (lib/http/proxy-route.ts). */
export type ElsewhereFunctionName = 'proxy';

/**
 * Who may call a route: `public` needs no credentials (health checks); `admin` is the
 * operator (the keypool-admin policy); `client` is an application, granted per pool
 * (a keypool-client-<pool> policy allows exactly the client routes of that pool).
 */
export type Access = 'public' | 'admin' | 'client';

/**
 * A base URL the OpenAPI document names, with the SigV4 service a signed request to it uses
 * (absent where nothing checks a signature).
 */
export interface ServerSpec {
  url: string;
  description: string;
  variables?: Record<string, { default: string; description: string }>;
  sigv4Service?: string;
}

/** The AWS region a server URL names, as a server variable. */
export const REGION_VARIABLE = { default: 'us-east-1', description: 'the AWS region the API is deployed in' } as const;

/** The local stack (`npm start`): every route, the proxy's included, on one port. */
export const LOCAL_SERVER: ServerSpec = {
  url: 'http://127.0.0.1:{port}',
  description: 'The local stack (`npm start`): the same handlers on DynamoDB Local; it checks no signature.',
  variables: { port: { default: '3000', description: 'KEYPOOL_PORT' } },
};

/** A route as the OpenAPI document tells it: its spec and what it does in one line (./route-summaries.ts). */
export type DocumentedRouteSpec = RouteSpec & { summary: string };

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  /** the operation's name in the OpenAPI document: what generated clients call the method */
  operationId: string;
  function: FunctionName | ElsewhereFunctionName;
  access: Access;
  body?: z.ZodMiniType;
  bodyOptional?: boolean;
  /** a body passed through as bytes, whatever its media type (proxy mode), in place of a JSON `body` */
  rawBody?: { description: string };
  query?: z.ZodMiniType;
  params?: z.ZodMiniType;
  /** request headers the route reads (others are ignored); names in lower case */
  headers?: z.ZodMiniType;
  /**
   * where this path is served when not at the API's own base URL (a route on another endpoint,
   * signed for another SigV4 service): the document gives its path these servers
   */
  servers?: readonly ServerSpec[];
}

export const ROUTES = {
  'GET /health': {
    method: 'GET',
    path: '/health',
    operationId: 'health',
    function: 'meta',
    access: 'public',
  },
  'GET /openapi.json': {
    method: 'GET',
    path: '/openapi.json',
    operationId: 'openapi',
    function: 'meta',
    access: 'admin',
  },
  'GET /pools': {
    method: 'GET',
    path: '/pools',
    operationId: 'listPools',
    function: 'pools',
    access: 'admin',
  },
  'PUT /pools/{pool}': {
    method: 'PUT',
    path: '/pools/{pool}',
    operationId: 'putPool',
    function: 'pools',
    access: 'admin',
    params: s.PoolParams,
    body: s.PoolBody,
    bodyOptional: true,
  },
  'GET /pools/{pool}': {
    method: 'GET',
    path: '/pools/{pool}',
    operationId: 'getPool',
    function: 'pools',
    access: 'admin',
    params: s.PoolParams,
  },
  'DELETE /pools/{pool}': {
    method: 'DELETE',
    path: '/pools/{pool}',
    operationId: 'deletePool',
    function: 'keys',
    access: 'admin',
    params: s.PoolParams,
    query: s.DeletePoolQuery,
  },
  'POST /pools/{pool}/keys': {
    method: 'POST',
    path: '/pools/{pool}/keys',
    operationId: 'importKeys',
    function: 'keys',
    access: 'admin',
    params: s.PoolParams,
    query: s.ImportQuery,
    body: s.ImportBody,
  },
  'GET /pools/{pool}/keys': {
    method: 'GET',
    path: '/pools/{pool}/keys',
    operationId: 'listKeys',
    function: 'list',
    access: 'admin',
    params: s.PoolParams,
    query: s.ListQuery,
  },
  'GET /pools/{pool}/accounts': {
    method: 'GET',
    path: '/pools/{pool}/accounts',
    operationId: 'listAccounts',
    function: 'list',
    access: 'admin',
    params: s.PoolParams,
    query: s.AccountsQuery,
  },
  'PATCH /pools/{pool}/keys/{keyId}': {
    method: 'PATCH',
    path: '/pools/{pool}/keys/{keyId}',
    operationId: 'updateKey',
    function: 'keys',
    access: 'admin',
    params: s.PoolKeyParams,
    body: s.UpdateKeyBody,
  },
  'DELETE /pools/{pool}/keys/{keyId}': {
    method: 'DELETE',
    path: '/pools/{pool}/keys/{keyId}',
    operationId: 'retireKey',
    function: 'keys',
    access: 'admin',
    params: s.PoolKeyParams,
  },
  'POST /pools/{pool}/keys/{keyId}/usage': {
    method: 'POST',
    path: '/pools/{pool}/keys/{keyId}/usage',
    operationId: 'countUse',
    function: 'counting',
    access: 'client',
    params: s.PoolKeyParams,
  },
  'POST /pools/{pool}/leases': {
    method: 'POST',
    path: '/pools/{pool}/leases',
    operationId: 'leaseKey',
    function: 'lease',
    access: 'client',
    params: s.PoolParams,
    body: s.LeaseBody,
    bodyOptional: true,
    headers: s.LeaseHeaders,
  },
  'POST /pools/{pool}/leases/{leaseId}/complete': {
    method: 'POST',
    path: '/pools/{pool}/leases/{leaseId}/complete',
    operationId: 'completeLease',
    function: 'counting',
    access: 'client',
    params: s.PoolLeaseParams,
    body: s.CompleteBody,
    bodyOptional: true,
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteKey = keyof typeof ROUTES;

export const ROUTE_KEYS = Object.keys(ROUTES) as RouteKey[];

/** The routes a client (an application, not the operator) calls: what a per-pool policy allows. */
export const CLIENT_ROUTE_KEYS = ROUTE_KEYS.filter((key) => (ROUTES[key] as RouteSpec).access === 'client');

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
