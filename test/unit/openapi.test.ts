/**
 * The OpenAPI document (lib/http/openapi.ts) as client generators read it: named types, the
 * error codes of the one table, the answers and headers every route may give, servers and
 * SigV4. Tools lint it and compile a client against it in test/slow/openapi-tools.test.ts.
 */
import * as z from 'zod/mini';
import { describe, expect, it } from 'vitest';
import { MaxUses, PoolName } from '../../lib/domain/primitives.js';
import { ERROR_CODES, LOCAL_SERVER_STATUS, statusOfCode } from '../../lib/http/errors.js';
import { buildOpenApiDocument, openApiDocument } from '../../lib/http/openapi.js';
import { ErrorResponse } from '../../lib/http/response-schemas.js';
import { PROXY_ROUTES } from '../../lib/http/proxy-spec.js';
import { type DocumentedRouteSpec, ROUTE_KEYS, ROUTES, type RouteSpec } from '../../lib/http/routes.js';

type Json = Record<string, unknown>;
type Operation = {
  operationId: string;
  security: Json[];
  parameters: { name: string; in: string; schema: Json }[];
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, { headers?: Record<string, Json>; content?: Record<string, { schema: Json }> }>;
};
type Document = {
  servers: { url: string; variables?: Json; 'x-keypool-sigv4-service'?: string }[];
  paths: Record<string, Record<string, Operation> & { servers?: Json[] }>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
};

const doc = openApiDocument() as unknown as Document;

/** Every operation of the document with its route key. */
const operations = (): [string, Operation][] =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => method !== 'servers')
      .map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op as Operation]),
  );

/** Every route the document describes: the HTTP API's and proxy mode's. */
const ALL_ROUTES: Record<string, RouteSpec> = { ...ROUTES, ...PROXY_ROUTES };
/** A route's spec by its key in the document (where the proxy's `{path+}` is written `{path}`). */
const specOf = (key: string): RouteSpec =>
  (ALL_ROUTES[key] ?? ALL_ROUTES[key.replace('{path}', '{path+}')]) as RouteSpec;

describe('the OpenAPI document', () => {
  it('names each operation as the route table does', () => {
    // Act
    const ids = Object.fromEntries(operations().map(([key, op]) => [key, op.operationId]));
    // Assess
    expect(ids).toEqual({
      'GET /health': 'health',
      'GET /openapi.json': 'openapi',
      'GET /pools': 'listPools',
      'PUT /pools/{pool}': 'putPool',
      'GET /pools/{pool}': 'getPool',
      'DELETE /pools/{pool}': 'deletePool',
      'POST /pools/{pool}/keys': 'importKeys',
      'GET /pools/{pool}/keys': 'listKeys',
      'GET /pools/{pool}/accounts': 'listAccounts',
      'PATCH /pools/{pool}/keys/{keyId}': 'updateKey',
      'DELETE /pools/{pool}/keys/{keyId}': 'retireKey',
      'POST /pools/{pool}/keys/{keyId}/usage': 'countUse',
      'POST /pools/{pool}/leases': 'leaseKey',
      'POST /pools/{pool}/leases/{leaseId}/complete': 'completeLease',
      'POST /pools/{pool}/proxy/{path}': 'proxyCall',
      'GET /pools/{pool}/proxy/{path}': 'proxyPoll',
    });
  });

  it('gives every request and answer body a named schema that exists', () => {
    // Prepare
    const bodies = operations().flatMap(([, op]) => [
      ...Object.values(op.requestBody?.content ?? {}).map((c) => c.schema),
      ...Object.values(op.responses).flatMap((answer) => Object.values(answer.content ?? {}).map((c) => c.schema)),
    ]);
    // Act
    // Proxy mode passes the provider's bodies through as bytes: no schema names them.
    const refs = bodies
      .filter((schema) => schema.contentMediaType !== 'application/octet-stream')
      .flatMap((schema) => ('anyOf' in schema ? (schema.anyOf as Json[]).map((s) => s.$ref) : [schema.$ref]));
    // Assess
    expect(bodies.length).toBeGreaterThan(50);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas).toHaveProperty(String(ref).split('/').pop() ?? '');
    }
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['LeaseGrant', 'Completion', 'PoolView', 'KeyView', 'KeyPage', 'ImportResult', 'Error']),
    );
  });

  it("enumerates the error codes of the one table, the local server's included", () => {
    // Act
    const codes = doc.components.schemas.ErrorCode?.enum;
    // Assess
    expect(codes).toEqual([...ERROR_CODES]);
    expect(codes).toEqual(
      expect.arrayContaining(['no_usable_key', 'internal_error', ...Object.keys(LOCAL_SERVER_STATUS)]),
    );
    expect(doc.components.schemas.Error?.properties).toMatchObject({
      error: { $ref: '#/components/schemas/ErrorCode' },
    });
    expect(ErrorResponse.safeParse({ error: 'no_such_code', message: 'm' }).success).toBe(false);
  });

  it('declares 400, 403, 405, 429 and a default on every route; 413 and 415 where a body is taken', () => {
    for (const [key, op] of operations()) {
      // Act
      const statuses = Object.keys(op.responses);
      // Assess
      expect(statuses, key).toEqual(expect.arrayContaining(['400', '403', '405', '429', 'default']));
      if (specOf(key).body) expect(statuses, key).toEqual(expect.arrayContaining(['413', '415']));
      // Any media type passes through the proxy: 413 only.
      if (specOf(key).rawBody) expect(statuses, key).toContain('413');
    }
    expect(Object.keys(doc.paths['/pools/{pool}']?.get?.responses ?? {})).toContain('404');
  });

  it('declares Allow on a 405 and Retry-After on 409, 429 and 503', () => {
    for (const [key, op] of operations()) {
      // Assess
      expect(op.responses['405']?.headers, key).toHaveProperty('Allow');
      for (const status of ['409', '429', '503']) {
        const answer = op.responses[status];
        if (answer) expect(answer.headers, `${key} ${status}`).toHaveProperty('Retry-After');
      }
    }
    expect(doc.paths['/pools/{pool}']?.put?.responses['405']?.headers?.Allow).toMatchObject({
      example: 'PUT, GET, DELETE',
    });
    expect(doc.paths['/pools/{pool}/leases']?.post?.responses['409']?.headers).toHaveProperty('Retry-After');
  });

  it("lists on a client route's error only the codes that route answers, and API Gateway's alone on a 429 it never gives", () => {
    // Arrange
    const responses = (path: string): Operation['responses'] & Record<string, { description?: string }> =>
      doc.paths[path]?.post?.responses ?? {};
    const codes = (path: string, status: string): string[] =>
      [...(/`error`: (.*)\.$/.exec(responses(path)[status]?.description ?? '')?.[1] ?? '').matchAll(/`(\w+)`/g)].map(
        (m) => m[1] ?? '',
      );
    // Act / Assess
    expect(codes('/pools/{pool}/leases', '409')).toEqual(['no_usable_key', 'idempotency_conflict']);
    expect(codes('/pools/{pool}/leases', '404')).toEqual(['pool_not_found']);
    expect(codes('/pools/{pool}/leases/{leaseId}/complete', '404')).toEqual(['pool_not_found', 'lease_not_found']);
    expect(codes('/pools/{pool}/keys/{keyId}/usage', '404')).toEqual(['pool_not_found', 'key_not_found']);
    // Only the lease-less count spends a report budget: every other 429 is API Gateway's throttling.
    expect(codes('/pools/{pool}/keys/{keyId}/usage', '429')).toEqual(['report_budget_exceeded']);
    for (const path of ['/pools/{pool}/leases', '/pools/{pool}/leases/{leaseId}/complete']) {
      expect(codes(path, '429'), path).toEqual([]);
      expect(responses(path)['429']?.content?.['application/json']?.schema, path).toEqual({
        $ref: '#/components/schemas/GatewayError',
      });
    }
  });

  it("lists on every admin and proxy route's error only the codes that route answers, each of its status in the one table", () => {
    // Arrange: what each route's use case and edge can throw (the 400, 405 and 429 of every route aside).
    const LOCAL = ['forbidden_host', 'forbidden_origin'];
    const expected: Record<string, Record<string, string[]>> = {
      'GET /health': { 403: LOCAL },
      'GET /pools': { 403: LOCAL, 503: ['store_throttled'] },
      'PUT /pools/{pool}': {
        403: LOCAL,
        413: ['payload_too_large'],
        415: ['unsupported_media_type'],
        503: ['store_throttled'],
      },
      'GET /pools/{pool}': { 403: LOCAL, 404: ['pool_not_found'], 503: ['store_throttled'] },
      'DELETE /pools/{pool}': {
        403: LOCAL,
        404: ['pool_not_found'],
        409: ['pool_not_empty', 'key_not_sealed'],
        503: ['store_throttled'],
      },
      'POST /pools/{pool}/keys': {
        403: LOCAL,
        413: ['payload_too_large'],
        415: ['unsupported_media_type'],
        503: ['sealing_unavailable', 'sealing_misconfigured', 'store_throttled'],
      },
      'GET /pools/{pool}/keys': { 403: LOCAL, 404: ['pool_not_found'], 503: ['store_throttled'] },
      'GET /pools/{pool}/accounts': { 403: LOCAL, 404: ['pool_not_found'], 503: ['store_throttled'] },
      'PATCH /pools/{pool}/keys/{keyId}': {
        403: LOCAL,
        404: ['pool_not_found', 'key_not_found'],
        413: ['payload_too_large'],
        415: ['unsupported_media_type'],
        503: ['store_throttled'],
      },
      'DELETE /pools/{pool}/keys/{keyId}': {
        403: LOCAL,
        404: ['pool_not_found', 'key_not_found'],
        409: ['key_not_sealed'],
        503: ['store_throttled'],
      },
    };
    const proxy = {
      403: ['path_not_allowed', ...LOCAL],
      404: ['pool_not_found', 'job_not_found'],
      409: ['no_usable_key', 'idempotency_conflict', 'no_provider', 'request_in_progress'],
      413: ['payload_too_large'],
      502: ['provider_failed'],
      503: ['sealing_unavailable', 'sealing_misconfigured', 'store_throttled'],
      504: ['provider_timeout'],
    };
    expected['POST /pools/{pool}/proxy/{path}'] = proxy;
    expected['GET /pools/{pool}/proxy/{path}'] = proxy;
    const documented = (op: Operation): Record<string, string[]> =>
      Object.fromEntries(
        Object.entries(op.responses as Record<string, { description?: string }>)
          .filter(([status]) => !['400', '405', '429', 'default'].includes(status))
          .flatMap(([status, answer]) => {
            const list = /`error`: (.*)\.$/.exec(answer.description ?? '')?.[1];
            return list ? [[status, [...list.matchAll(/`(\w+)`/g)].map((m) => m[1] ?? '')]] : [];
          }),
      );
    // Act / Assess
    for (const [key, op] of operations()) {
      if (specOf(key).access === 'client' && !key.includes('/proxy/')) continue;
      const codes = documented(op);
      if (key !== 'GET /openapi.json') expect(codes, key).toEqual(expected[key]);
      for (const [status, list] of Object.entries(codes))
        for (const code of list) expect(statusOfCode(code), `${key} ${status} ${code}`).toBe(Number(status));
    }
  });

  it('refuses to document an error answer that names no codes, or a code of another status', () => {
    // Prepare
    const table = (codes?: readonly string[]) => ({
      routes: { 'GET /pools': { ...ROUTES['GET /pools'], summary: 'the pools' } },
      responses: { 'GET /pools': { 404: { description: 'gone', schema: ErrorResponse, ...(codes ? { codes } : {}) } } },
    });
    // Act / Assess
    expect(() => buildOpenApiDocument(table())).toThrow(/names the codes/);
    expect(() => buildOpenApiDocument(table(['pool_not_empty']))).toThrow(/not an error code of status 404/);
    expect(() => buildOpenApiDocument(table(['pool_not_found']))).not.toThrow();
  });

  it('bounds counts from 0, never by ±2^53', () => {
    // Act
    const text = JSON.stringify(doc);
    // Assess
    expect(text).not.toContain(String(Number.MAX_SAFE_INTEGER));
    for (const name of ['LeaseGrant', 'Completion', 'KeyView', 'CountedUse'])
      expect(doc.components.schemas[name]?.properties, name).toMatchObject({
        usageCount: { type: 'integer', minimum: 0 },
      });
    expect(doc.components.schemas.ImportResult?.properties).toMatchObject({
      imported: { type: 'integer', minimum: 0 },
      duplicates: { type: 'integer', minimum: 0 },
    });
  });

  it('declares a pool deletion that ran out of time: 202 with the keys retired and those remaining', () => {
    // Act
    const answers = doc.paths['/pools/{pool}']?.delete?.responses;
    // Assess
    expect(answers?.['200']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/PoolDeletion',
    });
    expect(answers?.['202']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/PoolDeletionPending',
    });
    expect(doc.components.schemas.PoolDeletionPending).toMatchObject({
      properties: { deleted: { const: false }, retiredKeys: { minimum: 0 }, remainingKeys: { minimum: 0 } },
      required: ['pool', 'deleted', 'retiredKeys', 'remainingKeys'],
    });
  });

  it('declares limit as an integer from 1 to 1000, as the query validation means it', () => {
    // Act
    const limit = doc.paths['/pools/{pool}/keys']?.get?.parameters.find((p) => p.name === 'limit');
    // Assess
    expect(limit).toEqual({
      name: 'limit',
      in: 'query',
      required: false,
      schema: { type: 'integer', minimum: 1, maximum: 1000 },
    });
  });

  it('declares the yes/no query flags as the words true or false, the only values the query validation takes', () => {
    // Act
    const flags = [
      doc.paths['/pools/{pool}/keys']?.post?.parameters.find((p) => p.name === 'revive'),
      doc.paths['/pools/{pool}/keys']?.post?.parameters.find((p) => p.name === 'verify'),
      doc.paths['/pools/{pool}']?.delete?.parameters.find((p) => p.name === 'retireKeys'),
    ];
    // Assess
    for (const flag of flags) expect(flag?.schema).toEqual({ type: 'string', pattern: '^(true|false)$' });
  });

  it('signs every route but GET /health with SigV4, the scheme AWS itself exports', () => {
    // Assess
    expect(doc.components.securitySchemes.sigv4).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
      'x-amazon-apigateway-authtype': 'awsSigv4',
    });
    for (const [key, op] of operations())
      expect(op.security, key).toEqual(specOf(key).access === 'public' ? [] : [{ sigv4: [] }]);
  });

  it('names the deployed API with variables, its SigV4 service, and the local stack', () => {
    // Assess
    expect(doc.servers.map((s) => s.url)).toEqual([
      'https://{apiId}.execute-api.{region}.amazonaws.com',
      'http://127.0.0.1:{port}',
    ]);
    expect(doc.servers[0]).toMatchObject({
      'x-keypool-sigv4-service': 'execute-api',
      variables: { apiId: {}, region: {} },
    });
    expect(doc.servers[1]?.variables).toMatchObject({ port: { default: '3000' } });
  });

  it('gives a route served elsewhere its own servers, and a greedy {path+} as the parameter {path}', () => {
    // Prepare
    const proxy: DocumentedRouteSpec = {
      method: 'POST',
      path: '/pools/{pool}/proxy/{path+}',
      operationId: 'proxyCall',
      function: 'lease',
      access: 'client',
      summary: 'a route on another endpoint',
      params: z.strictObject({ pool: PoolName, path: z.string() }),
      servers: [{ url: 'https://proxy.example', description: 'elsewhere', sigv4Service: 'lambda' }],
    };
    // Act
    const built = buildOpenApiDocument({ routes: { proxy }, responses: { proxy: {} } }) as unknown as Document;
    // Assess
    const item = built.paths['/pools/{pool}/proxy/{path}'];
    expect(item?.servers).toEqual([
      { url: 'https://proxy.example', description: 'elsewhere', 'x-keypool-sigv4-service': 'lambda' },
    ]);
    expect(item?.post?.parameters.map((p) => p.name)).toEqual(['pool', 'path']);
  });

  it('refuses to build with a body that has no name, or an operationId taken twice', () => {
    // Prepare
    const base: DocumentedRouteSpec = { ...specOf('POST /pools/{pool}/leases'), summary: 'lease' };
    const unnamed: DocumentedRouteSpec = { ...base, body: z.strictObject({ maxUses: z.optional(MaxUses) }) };
    const twice: DocumentedRouteSpec = { ...base, path: '/other' };
    // Act / Assess
    expect(() => buildOpenApiDocument({ routes: { unnamed }, responses: { unnamed: {} } })).toThrow(/no name/);
    expect(() => buildOpenApiDocument({ routes: { base, twice }, responses: { base: {}, twice: {} } })).toThrow(
      /operationId leaseKey is taken/,
    );
  });

  it('describes proxy mode: its own servers (the REST API, signed for execute-api, and the local stack), the provider path, any body, the answer passed through with its headers', () => {
    // Prepare
    const item = doc.paths['/pools/{pool}/proxy/{path}'];
    const post = item?.post;
    // Assess
    expect(item?.servers).toEqual([
      expect.objectContaining({
        url: 'https://{proxyApiId}.execute-api.{region}.amazonaws.com/{stage}',
        'x-keypool-sigv4-service': 'execute-api',
      }),
      expect.objectContaining({ url: 'http://127.0.0.1:{port}' }),
    ]);
    expect(post?.parameters.map((p) => `${p.in} ${p.name}`)).toEqual([
      'path pool',
      'path path',
      'header idempotency-key',
    ]);
    expect(Object.keys(post?.requestBody?.content ?? {})).toEqual(['*/*']);
    expect(item?.get?.requestBody).toBeUndefined();
    expect(Object.keys(post?.responses['200']?.content ?? {})).toEqual(['*/*']);
    expect(Object.keys(post?.responses['200']?.headers ?? {})).toEqual(
      expect.arrayContaining(['x-keypool-key-id', 'x-keypool-attempts', 'x-keypool-outcome', 'finish-reason', 'seed']),
    );
    expect(Object.keys(post?.responses ?? {})).toEqual(
      expect.arrayContaining(['400', '403', '404', '409', '413', '502', '503', '504']),
    );
    expect(post?.security).toEqual([{ sigv4: [] }]);
  });

  it('has an operation for every route of the table, and the proxy route written {path}', () => {
    expect(
      operations()
        .map(([key]) => key)
        .sort(),
    ).toEqual([...ROUTE_KEYS, 'POST /pools/{pool}/proxy/{path}', 'GET /pools/{pool}/proxy/{path}'].sort());
  });
});
