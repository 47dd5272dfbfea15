/**
 * The smaller findings of the outside review, each with the test that failed before its fix:
 * the local server answers only loopback hosts, its own origin and JSON, every grant and
 * completion leaves an audit line naming the IAM caller and the invocation's request id, the
 * Lambda event is never logged whatever POWERTOOLS_LOGGER_LOG_EVENT says, and Idempotency-Key
 * works through HTTP.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { call, captureOutput, startTestServer } from '../support/server.js';

// Before any module loads (the logger reads it once): an operator turned event logging on.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOGGER_LOG_EVENT = 'true';
});

let server: LocalServer;

beforeAll(async () => {
  const table = await createTestTable('hardening');
  server = await startTestServer(table.tableName);
});

afterAll(async () => {
  await server.close();
});

/** A pool with one key; returns the pool and the secret. */
async function pool(tag: string): Promise<{ pool: string; secret: string }> {
  const name = uniqueName(tag);
  const secret = fakeKey();
  const imported = await call(server.url, 'POST', `/pools/${name}/keys`, { keys: [{ apiKey: secret }] });
  expect(imported.status).toBe(201);
  return { pool: name, secret };
}

/** One raw request, with the Host and Content-Type a browser page would send. */
function raw(
  path: string,
  headers: Record<string, string>,
  body: string,
  method = 'POST',
): Promise<{ status: number; text: string }> {
  const url = new URL(server.url);
  return new Promise((done, fail) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => done({ status: res.statusCode ?? 0, text }));
      },
    );
    req.once('error', fail);
    req.end(body);
  });
}

describe('the local server refuses what a web page could send', () => {
  it('a text/plain POST addressed to another host (DNS rebinding) gets 403 and no key', async () => {
    // Prepare
    const { pool: name, secret } = await pool('rebind');
    // Act
    const answer = await raw(`/pools/${name}/leases`, { host: 'attacker.example', 'content-type': 'text/plain' }, '{}');
    // Assess
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'forbidden_host' });
    expect(answer.text).not.toContain(secret);
  });

  it('a JSON POST to another host is refused too; one to a loopback name is served', async () => {
    const { pool: name } = await pool('hosts');
    expect(
      (await raw(`/pools/${name}/leases`, { host: 'attacker.example:3000', 'content-type': 'application/json' }, '{}'))
        .status,
    ).toBe(403);
    expect(
      (await raw(`/pools/${name}/leases`, { host: 'localhost:3000', 'content-type': 'application/json' }, '{}')).status,
    ).toBe(200);
  });

  it('a body that is not declared JSON gets 415, even from a loopback host', async () => {
    // Prepare
    const { pool: name, secret } = await pool('media');
    // Act
    const answer = await raw(`/pools/${name}/leases`, { host: '127.0.0.1', 'content-type': 'text/plain' }, '{}');
    // Assess
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'unsupported_media_type' });
    expect(answer.text).not.toContain(secret);
  });
});

/** The pool's usage counts, read through the API: a refused request must leave them as they were. */
async function counts(name: string): Promise<number[]> {
  const listed = await call(server.url, 'GET', `/pools/${name}/keys`);
  return (listed.body as { keys: { usageCount: number }[] }).keys.map((k) => k.usageCount);
}

describe('the local server refuses what a page of another origin could send, on every route', () => {
  it('a body-less form POST (Content-Length: 0) is not a lease: 415, and no use counted', async () => {
    // Prepare: what <form method=post> or fetch(..., {mode: "no-cors"}) sends with no fields.
    const { pool: name, secret } = await pool('formless');
    const form = { host: '127.0.0.1', 'content-type': 'application/x-www-form-urlencoded' };
    // Act
    const answer = await raw(`/pools/${name}/leases`, form, '');
    const textPlain = await raw(`/pools/${name}/leases`, { ...form, 'content-type': 'text/plain' }, '');
    // Assess
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'unsupported_media_type' });
    expect(textPlain.status).toBe(415);
    expect(answer.text).not.toContain(secret);
    expect(await counts(name)).toEqual([0]);
  });

  it.each([
    ['POST', '/pools/{pool}/leases'],
    ['POST', '/pools/{pool}/keys'],
    ['GET', '/pools/{pool}/keys'],
    ['PUT', '/pools/{pool}'],
    ['GET', '/health'],
    ['GET', '/no/such/route'],
  ])('%s %s from a foreign Origin, or marked cross-site, gets 403 before any handler runs', async (method, route) => {
    // Prepare
    const { pool: name } = await pool('origin');
    const path = route.replace('{pool}', name);
    const json = { host: '127.0.0.1', 'content-type': 'application/json' };
    const body = method === 'POST' && route.endsWith('/keys') ? JSON.stringify({ keys: [{ apiKey: fakeKey() }] }) : '';
    // Act
    const foreign = await raw(path, { ...json, origin: 'http://evil.example' }, body, method);
    const otherPort = await raw(path, { ...json, origin: 'http://127.0.0.1:1' }, body, method);
    const opaque = await raw(path, { ...json, origin: 'null' }, body, method);
    const crossSite = await raw(path, { ...json, 'sec-fetch-site': 'cross-site' }, body, method);
    const sameSite = await raw(path, { ...json, 'sec-fetch-site': 'same-site' }, body, method);
    // Assess
    for (const answer of [foreign, otherPort, opaque, crossSite, sameSite]) {
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.text)).toMatchObject({ error: 'forbidden_origin' });
    }
    expect(await counts(name)).toEqual([0]);
  });

  it("serves the server's own origin, a typed URL (Sec-Fetch-Site: none) and a client that sends neither", async () => {
    // Prepare
    const { pool: name } = await pool('own-origin');
    const host = new URL(server.url).host;
    const json = { host, 'content-type': 'application/json' };
    // Act
    const own = await raw(`/pools/${name}/leases`, { ...json, origin: `http://${host}` }, '{}');
    const typed = await raw(`/pools/${name}/keys`, { ...json, 'sec-fetch-site': 'none' }, '', 'GET');
    const sameOrigin = await raw(`/pools/${name}/leases`, { ...json, 'sec-fetch-site': 'same-origin' }, '');
    const bare = await raw(`/pools/${name}/leases`, { host }, '');
    // Assess: three leases granted (the default cap serves four), and the listing.
    expect([own.status, typed.status, sameOrigin.status, bare.status]).toEqual([200, 200, 200, 200]);
    expect(await counts(name)).toEqual([3]);
  });
});

describe('the audit trail', () => {
  it('a grant and a completion each leave one line naming the pool, the key, the outcome and the IAM caller, never the secret', async () => {
    // Prepare: the Lambda handlers themselves, with the identity API Gateway's IAM authorizer adds.
    const { pool: name, secret } = await pool('audit');
    const caller = 'arn:aws:sts::123456789012:assumed-role/image-worker/i-0abc';
    const { handler: lease } = await import('../../functions/lease.js');
    const { handler: counting } = await import('../../functions/counting.js');
    const event = (
      routeKey: string,
      path: string,
      params: Record<string, string>,
      body: unknown,
    ): APIGatewayProxyEventV2 =>
      ({
        version: '2.0',
        routeKey,
        rawPath: path,
        rawQueryString: '',
        headers: { 'content-type': 'application/json' },
        pathParameters: params,
        body: JSON.stringify(body),
        isBase64Encoded: false,
        requestContext: { http: { method: 'POST', path }, routeKey, authorizer: { iam: { userArn: caller } } },
      }) as unknown as APIGatewayProxyEventV2;
    // Lambda's request ids are UUIDs: each line must carry it whole, to be joined to its invocation.
    const requestId = randomUUID();
    const context = {
      functionName: 'keypool-test',
      awsRequestId: requestId,
      getRemainingTimeInMillis: () => 10_000,
    } as unknown as Context;
    const capture = captureOutput();
    let lines: string;
    try {
      // Act
      const granted = await lease(
        event('POST /pools/{pool}/leases', `/pools/${name}/leases`, { pool: name }, {}),
        context,
      );
      const grant = JSON.parse(String(granted.body)) as { leaseId: string; keyId: string };
      await counting(
        event(
          'POST /pools/{pool}/leases/{leaseId}/complete',
          `/pools/${name}/leases/${grant.leaseId}/complete`,
          { pool: name, leaseId: grant.leaseId },
          { outcome: 'failure' },
        ),
        context,
      );
      lines = capture.lines();
      // Assess
      const audit = lines
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.message === 'audit');
      expect(audit).toEqual([
        expect.objectContaining({
          audit: 'lease',
          pool: name,
          keyId: grant.keyId,
          caller,
          function_request_id: requestId,
        }),
        expect.objectContaining({
          audit: 'complete',
          pool: name,
          keyId: grant.keyId,
          outcome: 'failure',
          caller,
          function_request_id: requestId,
        }),
      ]);
      expect(lines).not.toContain(grant.leaseId);
    } finally {
      capture.stop();
    }
    expect(lines).not.toContain(secret);
  });
});

describe('event logging', () => {
  it('is pinned off: with POWERTOOLS_LOGGER_LOG_EVENT=true an import body (secrets) is still never logged', async () => {
    // Prepare
    const name = uniqueName('event');
    const secret = fakeKey();
    const capture = captureOutput();
    try {
      // Act
      const answer = await call(server.url, 'POST', `/pools/${name}/keys`, { keys: [{ apiKey: secret }] });
      // Assess
      expect(answer.status).toBe(201);
      // No event dump at all (redaction would mask the secret in one, but the body is not the
      // log's business either), and so no secret.
      expect(capture.lines()).not.toContain('"requestContext"');
      expect(capture.lines()).not.toContain(secret);
      expect(capture.lines()).toContain('"route":"POST /pools/{pool}/keys"');
    } finally {
      capture.stop();
    }
  });
});

describe('Idempotency-Key over HTTP', () => {
  it('the same key answers the same lease and counts one use; a malformed key is 400', async () => {
    // Prepare
    const { pool: name } = await pool('idem');
    const headers = { 'idempotency-key': 'render-job-42' };
    // Act
    const first = await call(server.url, 'POST', `/pools/${name}/leases`, {}, headers);
    const again = await call(server.url, 'POST', `/pools/${name}/leases`, {}, headers);
    const bad = await call(server.url, 'POST', `/pools/${name}/leases`, {}, { 'idempotency-key': 'has spaces' });
    const listed = await call(server.url, 'GET', `/pools/${name}/keys`);
    // Assess
    expect(first.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect((listed.body as { keys: { usageCount: number }[] }).keys.map((k) => k.usageCount)).toEqual([1]);
  });

  it('a key whose lease was completed answers 409 idempotency_conflict, without a secret', async () => {
    // Prepare
    const { pool: name } = await pool('idem-done');
    const headers = { 'idempotency-key': 'render-job-43' };
    const first = await call(server.url, 'POST', `/pools/${name}/leases`, {}, headers);
    const { leaseId, apiKey } = first.body as { leaseId: string; apiKey: string };
    await call(server.url, 'POST', `/pools/${name}/leases/${leaseId}/complete`, { outcome: 'success' });
    // Act
    const again = await call(server.url, 'POST', `/pools/${name}/leases`, {}, headers);
    // Assess
    expect(again).toMatchObject({ status: 409, body: { error: 'idempotency_conflict' } });
    expect(JSON.stringify(again.body)).not.toContain(apiKey);
  });
});
