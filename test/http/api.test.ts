import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { call, startTestServer } from '../support/server.js';

let server: LocalServer;
let base: string;

beforeAll(async () => {
  const table = await createTestTable('http');
  server = await startTestServer(table.tableName);
  base = server.url;
});

afterAll(async () => {
  await server.close();
});

interface KeyViewBody {
  keyId: string;
  pool: string;
  maskedKey: string;
  usageCount: number;
  status: string;
}
interface LeaseBody {
  leaseId: string;
  keyId: string;
  apiKey: string;
  usageCount: number;
  expiresAt: string;
}

async function importInto(pool: string, count: number): Promise<{ keys: KeyViewBody[]; secrets: string[] }> {
  const secrets = Array.from({ length: count }, () => fakeKey());
  const answer = await call(base, 'POST', '/keys', { keys: secrets.map((apiKey) => ({ apiKey, pool })) });
  expect(answer.status).toBe(201);
  return { keys: (answer.body as { keys: KeyViewBody[] }).keys, secrets };
}

describe('routes', () => {
  it('GET /health answers ok', async () => {
    const answer = await call(base, 'GET', '/health');
    expect(answer).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(answer.headers.get('content-type')).toBe('application/json');
  });

  it('GET /openapi.json is an OpenAPI 3.1 document with every route and its schemas', async () => {
    const answer = await call(base, 'GET', '/openapi.json');
    const doc = answer.body as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    expect(answer.status).toBe(200);
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      ['/health', '/keys', '/keys/{keyId}', '/keys/{keyId}/usage', '/leases', '/leases/{leaseId}/complete', '/openapi.json'].sort(),
    );
    expect(doc.paths['/leases']?.post?.requestBody).toMatchObject({
      content: { 'application/json': { schema: { properties: { maxUses: { type: 'integer', minimum: 0, maximum: 1000 } } } } },
    });
  });

  it('POST /keys imports, dedupes and answers a masked KeyView for every key sent', async () => {
    // Prepare
    const pool = uniqueName('imp');
    const secret = fakeKey();
    // Act
    const first = await call(base, 'POST', '/keys', { keys: [{ apiKey: secret, pool, label: 'main' }] });
    const again = await call(base, 'POST', '/keys', { keys: [{ apiKey: secret, pool }, { apiKey: fakeKey(), pool }] });
    // Assess
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ imported: 1, duplicates: 0, keys: [{ pool, label: 'main', usageCount: 0, status: 'active', lastUsedAt: null }] });
    expect(again.body).toMatchObject({ imported: 1, duplicates: 1 });
    expect((again.body as { keys: unknown[] }).keys).toHaveLength(2);
    const view = (first.body as { keys: KeyViewBody[] }).keys[0];
    expect(view?.maskedKey).toBe(`${secret.slice(0, 3)}...${secret.slice(-4)}`);
    expect(first.text + again.text).not.toContain(secret);
  });

  it('GET /keys filters by pool and status, pages with a cursor, and never shows a secret', async () => {
    // Prepare
    const pool = uniqueName('list');
    const { keys, secrets } = await importInto(pool, 5);
    await call(base, 'PATCH', `/keys/${keys[0]?.keyId ?? ''}`, { status: 'disabled' });
    // Act
    const seen: KeyViewBody[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const answer = await call(base, 'GET', `/keys?pool=${pool}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      const page = answer.body as { keys: KeyViewBody[]; cursor: string | null };
      expect(page.keys.length).toBeLessThanOrEqual(2);
      for (const secret of secrets) expect(answer.text).not.toContain(secret);
      seen.push(...page.keys);
      cursor = page.cursor;
      pages++;
    } while (cursor);
    const disabled = await call(base, 'GET', `/keys?pool=${pool}&status=disabled`);
    // Assess
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(seen.map((k) => k.keyId).sort()).toEqual(keys.map((k) => k.keyId).sort());
    expect((disabled.body as { keys: KeyViewBody[] }).keys.map((k) => k.keyId)).toEqual([keys[0]?.keyId]);
  });

  it('PATCH /keys/{keyId} disables and enables a key; a disabled key is never leased', async () => {
    // Prepare
    const pool = uniqueName('patch');
    const { keys } = await importInto(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    // Act
    const off = await call(base, 'PATCH', `/keys/${keyId}`, { status: 'disabled' });
    const refused = await call(base, 'POST', '/leases', { pool });
    const on = await call(base, 'PATCH', `/keys/${keyId}`, { status: 'active' });
    const leased = await call(base, 'POST', '/leases', { pool });
    // Assess
    expect(off).toMatchObject({ status: 200, body: { keyId, status: 'disabled' } });
    expect(refused).toMatchObject({ status: 409, body: { error: 'no_usable_key' } });
    expect(on).toMatchObject({ status: 200, body: { keyId, status: 'active' } });
    expect(leased).toMatchObject({ status: 200, body: { keyId } });
  });

  it('POST /keys/{keyId}/usage adds one', async () => {
    const pool = uniqueName('usage');
    const { keys } = await importInto(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    const one = await call(base, 'POST', `/keys/${keyId}/usage`);
    const two = await call(base, 'POST', `/keys/${keyId}/usage`);
    expect(one).toMatchObject({ status: 200, body: { keyId, usageCount: 1 } });
    expect(two.body).toEqual({ keyId, usageCount: 2 });
  });

  it('POST /leases with no body uses the defaults; complete with no body is success', async () => {
    // Prepare
    const { keys, secrets } = await importInto('stability', 1);
    // Act
    const lease = await call(base, 'POST', '/leases');
    const grant = lease.body as LeaseBody;
    const done = await call(base, 'POST', `/leases/${grant.leaseId}/complete`);
    // Assess
    expect(lease.status).toBe(200);
    expect(Object.keys(grant).sort()).toEqual(['apiKey', 'expiresAt', 'keyId', 'leaseId', 'pool', 'usageCount']);
    expect(Date.parse(grant.expiresAt) - Date.now()).toBeGreaterThan(290_000);
    expect(done).toMatchObject({ status: 200 });
    if (grant.keyId === keys[0]?.keyId) expect(grant.apiKey).toBe(secrets[0]);
  });

  it('lease then complete for every outcome answers the key count and status', async () => {
    const pool = uniqueName('cycle');
    await importInto(pool, 1);
    const grant = (await call(base, 'POST', '/leases', { pool, maxUses: 5, ttlSeconds: 60 })).body as LeaseBody;
    const done = await call(base, 'POST', `/leases/${grant.leaseId}/complete`, { outcome: 'rate_limited' });
    expect(done).toMatchObject({ status: 200, body: { keyId: grant.keyId, usageCount: 0, status: 'cooling' } });
  });
});

describe('errors', () => {
  const invalid = (answer: { status: number; body: unknown }): void => {
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'invalid_request', message: expect.any(String) as string, details: expect.any(Array) as unknown[] });
  };

  it.each([
    ['malformed JSON', '/leases', '{"pool":'],
    ['a string where an integer belongs (no coercion)', '/leases', { maxUses: '3' }],
    ['a fraction', '/leases', { maxUses: 1.5 }],
    ['out of range', '/leases', { maxUses: 1001 }],
    ['ttl out of range', '/leases', { ttlSeconds: 0 }],
    ['an unknown field', '/leases', { pool: 'stability', extra: true }],
    ['a JSON array body', '/leases', [1, 2]],
    ['an empty key list', '/keys', { keys: [] }],
    ['more than 500 keys', '/keys', { keys: Array.from({ length: 501 }, (_, i) => ({ apiKey: `sk-test-${i}aaaaaaaa` })) }],
    ['a key with spaces', '/keys', { keys: [{ apiKey: 'sk test with spaces' }] }],
    ['a bad pool name', '/keys', { keys: [{ apiKey: fakeKey(), pool: 'no spaces allowed' }] }],
  ])('400 invalid_request for %s', async (_what, path, body) => {
    invalid(await call(base, 'POST', path, body));
  });

  it('400 names the field and the reason', async () => {
    const answer = await call(base, 'POST', '/leases', { maxUses: '3' });
    expect((answer.body as { details: { path: string }[] }).details[0]?.path).toBe('body.maxUses');
  });

  it('400 for bad query values and unknown query parameters', async () => {
    invalid(await call(base, 'GET', '/keys?limit=0'));
    invalid(await call(base, 'GET', '/keys?limit=abc'));
    invalid(await call(base, 'GET', '/keys?status=gone'));
    invalid(await call(base, 'GET', '/keys?cursor=not-a-cursor'));
    invalid(await call(base, 'GET', '/keys?colour=blue'));
  });

  it('400 for a bad outcome and for a PATCH to a status operators cannot set', async () => {
    invalid(await call(base, 'POST', '/leases/x/complete', { outcome: 'great' }));
    invalid(await call(base, 'PATCH', '/keys/k_000000000000000000000000', { status: 'exhausted' }));
  });

  it('404 not_found for an unknown route, key_not_found and lease_not_found for unknown ids', async () => {
    expect(await call(base, 'GET', '/nowhere')).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect(await call(base, 'POST', '/keys/k_000000000000000000000000/usage')).toMatchObject({ status: 404, body: { error: 'key_not_found' } });
    expect(await call(base, 'PATCH', '/keys/garbage', { status: 'active' })).toMatchObject({ status: 404, body: { error: 'key_not_found' } });
    expect(await call(base, 'POST', '/leases/garbage/complete')).toMatchObject({ status: 404, body: { error: 'lease_not_found' } });
  });

  it('405 method_not_allowed with an allow header for a known path', async () => {
    const answer = await call(base, 'DELETE', '/keys');
    expect(answer).toMatchObject({ status: 405, body: { error: 'method_not_allowed' } });
    expect(answer.headers.get('allow')).toBe('POST, GET');
  });

  it('409 no_usable_key when the pool has none under the cap', async () => {
    const answer = await call(base, 'POST', '/leases', { pool: uniqueName('empty') });
    expect(answer).toMatchObject({ status: 409, body: { error: 'no_usable_key' } });
  });

  it('410 lease_expired for a completion after the lease expired', async () => {
    const pool = uniqueName('late');
    await importInto(pool, 1);
    const grant = (await call(base, 'POST', '/leases', { pool, ttlSeconds: 1 })).body as LeaseBody;
    await new Promise((r) => setTimeout(r, 1_100));
    const late = await call(base, 'POST', `/leases/${grant.leaseId}/complete`);
    expect(late).toMatchObject({ status: 410, body: { error: 'lease_expired' } });
  });

  it('413 payload_too_large over 256 KB, and nothing is imported', async () => {
    const pool = uniqueName('big');
    const keys = Array.from({ length: 500 }, () => ({ apiKey: `sk-test-${'x'.repeat(500)}`, pool }));
    const answer = await call(base, 'POST', '/keys', { keys });
    expect(answer).toMatchObject({ status: 413, body: { error: 'payload_too_large' } });
    const listed = await call(base, 'GET', `/keys?pool=${pool}`);
    expect((listed.body as { keys: unknown[] }).keys).toHaveLength(0);
  });
});
