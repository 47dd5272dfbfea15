/**
 * Text that is not text at the edge: a body whose bytes are not UTF-8 (the three bytes a lone
 * UTF-16 surrogate would be, ED A0 80) is refused with 400 rather than read with U+FFFD in
 * place of what was sent, through the local server and in a Lambda event; and a lone surrogate
 * anywhere in an HTTP API event (path, path parameter, query, header, JSON body) is answered by
 * every route with a 4xx JSON error, never a 500, as is one percent-encoded in a request to the
 * local server, the proxy route's included; a query that percent-decodes to bytes that are not
 * UTF-8 is refused by every route of the local server with 400 before the route runs.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHandlers } from '../../bin/local-handlers.js';
import type { LambdaHandler, LocalServer } from '../../lib/local/server.js';
import { type FunctionName, matchRoute, ROUTE_KEYS, ROUTES } from '../../lib/http/routes.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { call, startTestServer } from '../support/server.js';

let server: LocalServer;
let handlers: Record<FunctionName, LambdaHandler>;

beforeAll(async () => {
  const table = await createTestTable('ill-formed');
  server = await startTestServer(table.tableName);
  handlers = await loadHandlers();
});

afterAll(async () => {
  await server.close();
});

/** `{"keys":[{"apiKey":<secret>,"label":"ops<ED A0 80>"}]}`: JSON whose label is not UTF-8. */
function notUtf8Import(secret: string): Buffer {
  const [head, tail] = JSON.stringify({ keys: [{ apiKey: secret, label: 'ops#' }] }).split('#');
  return Buffer.concat([Buffer.from(head ?? ''), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(tail ?? '')]);
}

/** A new pool holding one key (of account org-1): its name and the key's id. */
async function poolWithKey(prefix: string): Promise<{ pool: string; keyId: string }> {
  const pool = uniqueName(prefix);
  const imported = await call(server.url, 'POST', `/pools/${pool}/keys`, {
    keys: [{ apiKey: fakeKey(), account: 'org-1' }],
  });
  const [keyId = ''] = (imported.body as { keys: { keyId: string }[] }).keys.map((k) => k.keyId);
  return { pool, keyId };
}

/** A route's path with the pool, the key and a lease id of that key in place of its parameters. */
const routePath = (template: string, pool: string, keyId: string): string =>
  template.replace('{pool}', pool).replace('{keyId}', keyId).replace('{leaseId}', `${keyId}.0.zz.0123456789abcdef`);

const CONTEXT = { functionName: 'keypool-test', awsRequestId: 'r', getRemainingTimeInMillis: () => 10_000 } as Context;

/** An HTTP API event for `method path`, routed as API Gateway routes it. */
function event(method: string, path: string, extra: Partial<APIGatewayProxyEventV2> = {}): APIGatewayProxyEventV2 {
  const match = matchRoute(method, path);
  const routeKey = match.found ? match.routeKey : '$default';
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    ...(match.found ? { pathParameters: match.params } : {}),
    requestContext: { http: { method, path }, routeKey },
    isBase64Encoded: false,
    ...extra,
  } as unknown as APIGatewayProxyEventV2;
}

async function invoke(input: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const key = input.routeKey as keyof typeof ROUTES;
  const name: FunctionName = key in ROUTES ? ROUTES[key].function : 'meta';
  return handlers[name](input, CONTEXT);
}

describe('a body that is not UTF-8', () => {
  it('is refused with 400 through the local server, and nothing is stored with U+FFFD in its place', async () => {
    // Prepare
    const pool = uniqueName('not-utf8');
    // Act
    const answer = await fetch(`${server.url}/pools/${pool}/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: notUtf8Import(fakeKey()),
    });
    // Assess
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ error: 'invalid_request', details: [{ path: 'body' }] });
    expect((await call(server.url, 'GET', `/pools/${pool}/keys`)).status).toBe(404);
  });

  it('is refused with 400 in a Lambda event that carries it base64-encoded', async () => {
    // Prepare
    const pool = uniqueName('not-utf8-event');
    const body = notUtf8Import(fakeKey()).toString('base64');
    // Act
    const answer = await invoke(event('POST', `/pools/${pool}/keys`, { body, isBase64Encoded: true }));
    // Assess
    expect(answer.statusCode).toBe(400);
    expect(JSON.parse(String(answer.body))).toMatchObject({ error: 'invalid_request', details: [{ path: 'body' }] });
    expect((await call(server.url, 'GET', `/pools/${pool}/keys`)).status).toBe(404);
  });
});

describe('a lone UTF-16 surrogate in an HTTP API event', () => {
  it('is answered by every route with a 4xx JSON error, wherever it is', async () => {
    // Prepare
    const { pool, keyId } = await poolWithKey('surrogate');
    const lone = '\ud800';
    const answers: [string, number | undefined, string][] = [];
    // Act
    for (const key of ROUTE_KEYS) {
      const spec = ROUTES[key];
      const path = routePath(spec.path, pool, keyId);
      const params = Object.fromEntries(
        ['pool', 'keyId', 'leaseId'].filter((n) => spec.path.includes(`{${n}}`)).map((n) => [n, `x${lone}`]),
      );
      for (const [where, extra] of [
        ['params', { pathParameters: params }],
        ['query', { queryStringParameters: { [lone]: lone, cursor: lone, limit: lone, status: lone } }],
        ['header', { headers: { 'content-type': 'application/json', 'idempotency-key': lone, 'x-other': lone } }],
        [
          'body',
          { body: JSON.stringify({ [lone]: lone, keys: [{ apiKey: `sk-${lone}`, label: lone }], status: lone }) },
        ],
      ] as const) {
        if (where === 'params' && Object.keys(params).length === 0) continue;
        const answer = await invoke({ ...event(spec.method, path), ...extra, routeKey: key });
        answers.push([`${key} ${where}`, answer.statusCode, String(answer.body)]);
      }
    }
    const unmatched = await invoke(event('GET', `/pools/${lone}/x`));
    answers.push(['unmatched', unmatched.statusCode, String(unmatched.body)]);
    // Assess: a route that ignores what holds the surrogate may succeed; none fails.
    for (const [where, status, body] of answers) {
      expect(status, `${where}: ${body}`).toBeLessThan(500);
      expect(JSON.parse(body), where).toBeTypeOf('object');
    }
  });
});

describe('a query that percent-decodes to bytes that are not UTF-8 (%FF) through the local server', () => {
  it('is refused by every route with 400 invalid_request naming its place, before the route runs', async () => {
    // Prepare
    const { pool, keyId } = await poolWithKey('query');
    const paths = ROUTE_KEYS.map((key) => [ROUTES[key].method, routePath(ROUTES[key].path, pool, keyId)] as const);
    // Act
    const answers = await Promise.all(
      paths.map(
        async ([method, path]) => [`${method} ${path}`, await call(server.url, method, `${path}?note=%FF`)] as const,
      ),
    );
    const named = await call(server.url, 'POST', `/pools/${pool}/leases?%FF=1`);
    // Assess
    for (const [request, answer] of answers) {
      expect(answer.status, `${request}: ${answer.text}`).toBe(400);
      expect(answer.body, request).toEqual({
        error: 'invalid_request',
        message: expect.any(String) as unknown,
        details: [{ path: 'query.note', message: expect.any(String) as unknown }],
      });
    }
    expect(named.body).toMatchObject({ error: 'invalid_request', details: [{ path: 'query' }] });
    const listed = await call(server.url, 'GET', `/pools/${pool}/keys`);
    expect((listed.body as { keys: { usageCount: number; status: string }[] }).keys).toMatchObject([
      { usageCount: 0, status: 'active' },
    ]);
  });
});

describe('a percent-encoded lone surrogate (%ED%A0%80, bytes that are not UTF-8) through the local server', () => {
  it('is answered with a 4xx JSON error in a pool, a key id, a query, and the proxy route', async () => {
    // Prepare
    const pool = uniqueName('pct');
    const bad = '%ED%A0%80';
    await call(server.url, 'PUT', `/pools/${pool}`, {});
    // Act
    const answers = await Promise.all(
      [
        ['GET', `/pools/${pool}${bad}`],
        ['PATCH', `/pools/${pool}/keys/k_${bad}`],
        ['GET', `/pools/${pool}/keys?cursor=${bad}&${bad}=1`],
        ['POST', `/pools/${pool}${bad}/proxy/v2beta/stable-image/generate/core`],
        ['POST', `/pools/${pool}/proxy/v2beta/${bad}`],
      ].map(
        async ([method = 'GET', path = '/']) => [`${method} ${path}`, await call(server.url, method, path)] as const,
      ),
    );
    // Assess
    for (const [request, answer] of answers) {
      expect(answer.status, `${request}: ${answer.text}`).toBeGreaterThanOrEqual(400);
      expect(answer.status, `${request}: ${answer.text}`).toBeLessThan(500);
      expect(answer.body, request).toMatchObject({
        error: expect.any(String) as unknown,
        message: expect.any(String) as unknown,
      });
    }
  });
});
