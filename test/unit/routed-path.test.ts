/**
 * The HTTP API functions' edge (lib/http/http-handler.ts) refuses a path holding a `.` or `..`
 * segment, raw or percent-encoded, in any field of the event, and a path whose pool segment is
 * not the pool API Gateway matched: IAM authorizes the path as sent and a client policy ends in
 * `*`, so such a path could match one pool's policy and be routed to another pool. Refused with
 * 400 before any route runs; a normal request passes.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { httpHandler, ok } from '../../lib/http/http-handler.js';

const CONTEXT = { functionName: 'counting', awsRequestId: 'r', getRemainingTimeInMillis: () => 10_000 } as Context;
const ROUTE = 'POST /pools/{pool}/leases/{leaseId}/complete';
const LEASE = 'kabc.0.zz.0123456789abcdef';

/** An HTTP API (payload 2.0) event for the complete route, matched with `pool`, carrying `rawPath` and `path`. */
function event(pool: string, rawPath: string, path = rawPath): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: ROUTE,
    rawPath,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    pathParameters: { pool, leaseId: LEASE },
    requestContext: { http: { method: 'POST', path }, routeKey: ROUTE },
    body: '{"outcome":"success"}',
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

/** Runs the edge over `input` with a route that records the pool it was asked to act on. */
async function invoke(
  input: APIGatewayProxyEventV2,
): Promise<{ answer: APIGatewayProxyStructuredResultV2; pools: string[] }> {
  const pools: string[] = [];
  const handler = httpHandler({
    [ROUTE]: ({ params }) => {
      pools.push(params.pool);
      return Promise.resolve(ok({ ok: true }));
    },
  });
  const answer = await handler(input, CONTEXT);
  return { answer, pools };
}

describe('the HTTP API edge and the path as the event carries it', () => {
  it('serves a normal request with the pool API Gateway matched', async () => {
    // Act
    const { answer, pools } = await invoke(event('a', `/pools/a/leases/${LEASE}/complete`));
    // Assess
    expect(answer.statusCode).toBe(200);
    expect(pools).toEqual(['a']);
  });

  it.each([
    ['a raw `..` in rawPath', `/pools/a/leases/../../b/leases/${LEASE}/complete`, undefined],
    ['`%2e%2e` in rawPath', `/pools/a/leases/%2e%2e/%2e%2e/b/leases/${LEASE}/complete`, undefined],
    ['`%2E%2E` in rawPath', `/pools/a/leases/%2E%2E/%2E%2E/b/leases/${LEASE}/complete`, undefined],
    ['mixed `.%2E` in rawPath', `/pools/a/leases/.%2E/%2e./b/leases/${LEASE}/complete`, undefined],
    ['a `.` segment in rawPath', `/pools/b/./leases/${LEASE}/complete`, undefined],
    ['`%2e` alone in rawPath', `/pools/b/%2e/leases/${LEASE}/complete`, undefined],
    ['a `..` at the end of rawPath', `/pools/b/leases/${LEASE}/complete/..`, undefined],
    [
      'a `..` in requestContext.http.path only',
      `/pools/b/leases/${LEASE}/complete`,
      `/pools/a/leases/../../b/leases/${LEASE}/complete`,
    ],
  ])('refuses %s with 400 invalid_request before the route runs', async (_what, rawPath, path) => {
    // Act
    const { answer, pools } = await invoke(event('b', rawPath, path));
    // Assess
    expect(pools).toEqual([]);
    expect(answer.statusCode).toBe(400);
    expect(JSON.parse(answer.body ?? '')).toMatchObject({
      error: 'invalid_request',
      message: expect.stringContaining('path') as unknown,
      details: [{ path: 'path' }],
    });
  });

  it.each([
    ['rawPath', `/pools/a/leases/${LEASE}/complete`, `/pools/b/leases/${LEASE}/complete`],
    ['requestContext.http.path', `/pools/b/leases/${LEASE}/complete`, `/pools/a/leases/${LEASE}/complete`],
  ])('refuses a %s whose pool segment is not the pool API Gateway matched', async (_field, rawPath, path) => {
    // Act
    const { answer, pools } = await invoke(event('b', rawPath, path));
    // Assess
    expect(pools).toEqual([]);
    expect(answer.statusCode).toBe(400);
    expect(JSON.parse(answer.body ?? '')).toMatchObject({ error: 'invalid_request', details: [{ path: 'path' }] });
  });

  it('serves a request under a stage or base path that is itself named pools', async () => {
    // Act
    const { answer, pools } = await invoke(event('a', `/pools/pools/a/leases/${LEASE}/complete`));
    // Assess
    expect(answer.statusCode).toBe(200);
    expect(pools).toEqual(['a']);
  });

  it('takes a pool segment percent-encoded in the path as the decoded pool API Gateway matched', async () => {
    // Act
    const { answer, pools } = await invoke(event('sdxl.turbo', `/pools/sdxl%2Eturbo/leases/${LEASE}/complete`));
    // Assess
    expect(answer.statusCode).toBe(200);
    expect(pools).toEqual(['sdxl.turbo']);
  });
});
