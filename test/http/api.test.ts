/**
 * The HTTP contract (issue 10's table), row by row, through the real local server on DynamoDB
 * Local: every route's method, path, body or query, and the status and shape of its answer;
 * then the errors every route shares. The pool rules (cap, cross-pool ids, suspect keys,
 * Retry-After, expiry) are in ./pool-rules.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_VERIFY_BATCH } from '../../lib/domain/primitives.js';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { startTestServer } from '../support/server.js';
import {
  type ErrorBodyShape,
  expectError,
  KEY_VIEW_FIELDS,
  type KeyViewBody,
  type LeaseGrantBody,
  POOL_VIEW_FIELDS,
  poolApi,
  type PoolViewBody,
} from '../support/pool-api.js';

let server: LocalServer;
let api: ReturnType<typeof poolApi>;

beforeAll(async () => {
  const table = await createTestTable('http');
  server = await startTestServer(table.tableName);
  api = poolApi(server.url);
});

afterAll(async () => {
  await server.close();
});

const DEFAULTS = {
  maxUses: 3,
  leaseTtlSeconds: 300,
  cooldownSeconds: 60,
  provider: 'stability',
  minCredits: 3,
  shards: 1,
};

describe('GET /health and GET /openapi.json', () => {
  it('GET /health answers 200 {"status":"ok"} as JSON', async () => {
    // Act
    const answer = await api.call('GET', '/health');
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: 'ok' });
    expect(answer.headers.get('content-type')).toBe('application/json');
  });

  it('GET /openapi.json is an OpenAPI 3.1 document with exactly the routes of the contract and their schemas', async () => {
    // Act
    const answer = await api.call('GET', '/openapi.json');
    // Assess
    type Operation = {
      requestBody?: { content: Record<string, { schema: { $ref: string } }> };
      responses: Record<string, unknown>;
      'x-keypool-access': string;
    };
    const doc = answer.body as {
      openapi: string;
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(answer.status).toBe(200);
    expect(doc.openapi).toBe('3.1.0');
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((method) => ['get', 'put', 'post', 'patch', 'delete'].includes(method))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual(
      [
        'GET /health',
        'GET /openapi.json',
        'GET /pools',
        'PUT /pools/{pool}',
        'GET /pools/{pool}',
        'DELETE /pools/{pool}',
        'POST /pools/{pool}/keys',
        'GET /pools/{pool}/keys',
        'GET /pools/{pool}/accounts',
        'PATCH /pools/{pool}/keys/{keyId}',
        'DELETE /pools/{pool}/keys/{keyId}',
        'POST /pools/{pool}/keys/{keyId}/usage',
        'POST /pools/{pool}/leases',
        'POST /pools/{pool}/leases/{leaseId}/complete',
        'POST /pools/{pool}/proxy/{path}',
        'GET /pools/{pool}/proxy/{path}',
      ].sort(),
    );
    const putBody = doc.paths['/pools/{pool}']?.put?.requestBody?.content['application/json']?.schema.$ref ?? '';
    expect(putBody).toBe('#/components/schemas/PoolSettings');
    expect(doc.components.schemas.PoolSettings).toMatchObject({
      additionalProperties: false,
      properties: {
        maxUses: { type: 'integer', minimum: 0, maximum: 1000 },
        leaseTtlSeconds: { type: 'integer', minimum: 1, maximum: 3600 },
        cooldownSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
        provider: { $ref: '#/components/schemas/Provider' },
        minCredits: { minimum: 0 },
        shards: { type: 'integer', minimum: 1, maximum: 64 },
      },
    });
    expect(doc.components.schemas.Provider).toMatchObject({ enum: ['stability', 'none'] });
    expect(doc.paths['/pools/{pool}/keys']?.post?.responses).toHaveProperty('201');
    expect(doc.paths['/pools/{pool}']?.get?.responses).toHaveProperty('404');
    expect(doc.paths['/pools/{pool}/leases']?.post?.responses).toHaveProperty('409');
    const access = Object.fromEntries(
      routes.map((r) => [
        r,
        doc.paths[r.split(' ')[1] ?? '']?.[r.split(' ')[0]?.toLowerCase() ?? '']?.['x-keypool-access'],
      ]),
    );
    expect(access).toMatchObject({
      'GET /health': 'public',
      'GET /pools': 'admin',
      'POST /pools/{pool}/keys': 'admin',
      'POST /pools/{pool}/leases': 'client',
      'POST /pools/{pool}/leases/{leaseId}/complete': 'client',
      'POST /pools/{pool}/keys/{keyId}/usage': 'client',
    });
  });

  it('the old routes are gone: /keys, /leases and /keys/{keyId} answer 404 not_found', async () => {
    // Act
    const answers = await Promise.all([
      api.call('POST', '/keys', { keys: [{ apiKey: fakeKey() }] }),
      api.call('GET', '/keys'),
      api.call('POST', '/leases', {}),
      api.call('PATCH', '/keys/k_000000000000000000000000', { status: 'active' }),
    ]);
    // Assess
    for (const answer of answers) expectError(answer, 404, 'not_found');
  });
});

describe('PUT /pools/{pool}, GET /pools/{pool}, GET /pools', () => {
  it('PUT creates a pool with the defaults for what it leaves out and answers 200 PoolView', async () => {
    // Prepare
    const pool = uniqueName('put');
    const before = Date.now();
    // Act
    const empty = await api.call('PUT', `/pools/${pool}`);
    const given = await api.call('PUT', `/pools/${uniqueName('put')}`, { maxUses: 7, provider: 'none' });
    // Assess
    expect(empty.status).toBe(200);
    const view = empty.body as PoolViewBody;
    expect(Object.keys(view).sort()).toEqual(POOL_VIEW_FIELDS);
    expect(view).toMatchObject({ pool, ...DEFAULTS });
    expect(Date.parse(view.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(view.updatedAt).toBe(view.createdAt);
    expect(given.status).toBe(200);
    expect(given.body).toMatchObject({ ...DEFAULTS, maxUses: 7, provider: 'none' });
  });

  it('a second PUT changes only what it gives, keeps createdAt and moves updatedAt', async () => {
    // Prepare
    const pool = uniqueName('put2');
    const first = await api.putPool(pool, {
      maxUses: 5,
      leaseTtlSeconds: 120,
      cooldownSeconds: 30,
      provider: 'none',
      minCredits: 0.5,
      maxClientCooldownSeconds: 30,
      maxClientReportsPerMinute: 5,
      proxyAttempts: 3,
      proxyTimeoutSeconds: 300,
    });
    await new Promise((r) => setTimeout(r, 5));
    // Act
    const second = await api.call('PUT', `/pools/${pool}`, { cooldownSeconds: 900 });
    const read = await api.call('GET', `/pools/${pool}`);
    // Assess
    expect(second.status).toBe(200);
    expect(second.body).toEqual({
      pool,
      maxUses: 5,
      leaseTtlSeconds: 120,
      cooldownSeconds: 900,
      provider: 'none',
      minCredits: 0.5,
      shards: 1,
      maxClientCooldownSeconds: 30,
      maxClientReportsPerMinute: 5,
      rateLimitScope: 'key',
      proxyAttempts: 3,
      proxyTimeoutSeconds: 300,
      createdAt: first.createdAt,
      updatedAt: (second.body as PoolViewBody).updatedAt,
    });
    expect(Date.parse((second.body as PoolViewBody).updatedAt)).toBeGreaterThan(Date.parse(first.updatedAt));
    expect(read).toMatchObject({ status: 200, body: second.body as object });
  });

  it('PUT {"shards"} spreads the pool over that many shards; a change shows the layout being left until a reshard ends it', async () => {
    // Prepare
    const pool = uniqueName('shards');
    const created = await api.call('PUT', `/pools/${pool}`, { shards: 8 });
    // Act
    const changed = await api.call('PUT', `/pools/${pool}`, { shards: 16 });
    const read = await api.call('GET', `/pools/${pool}`);
    // Assess
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ pool, shards: 8 });
    expect(created.body).not.toHaveProperty('previousShards');
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      pool,
      shards: 16,
      previousShards: 8,
      shardsChangedAt: (changed.body as PoolViewBody).updatedAt,
    });
    expect(read.body).toEqual(changed.body);
  });

  it('GET /pools/{pool} answers 200 PoolView, and 404 pool_not_found for a pool that does not exist', async () => {
    // Prepare
    const pool = uniqueName('get');
    await api.putPool(pool, { minCredits: 10 });
    // Act
    const found = await api.call('GET', `/pools/${pool}`);
    const missing = await api.call('GET', `/pools/${uniqueName('nope')}`);
    // Assess
    expect(found.status).toBe(200);
    expect(Object.keys(found.body as object).sort()).toEqual(POOL_VIEW_FIELDS);
    expect(found.body).toMatchObject({ pool, ...DEFAULTS, minCredits: 10 });
    expectError(missing, 404, 'pool_not_found');
  });

  it('GET /pools answers 200 {"pools":[PoolView]} with every pool, by name', async () => {
    // Prepare
    const names = [uniqueName('ls-b'), uniqueName('ls-a')];
    await api.putPool(names[0] ?? '', { maxUses: 9 });
    await api.importKeys(names[1] ?? '', 1);
    // Act
    const answer = await api.call('GET', '/pools');
    // Assess
    expect(answer.status).toBe(200);
    const pools = (answer.body as { pools: PoolViewBody[] }).pools;
    expect(Object.keys(answer.body as object)).toEqual(['pools']);
    // A pool being resharded (another test's) also shows previousShards and shardsChangedAt.
    for (const view of pools)
      expect(
        Object.keys(view)
          .filter((k) => k !== 'previousShards' && k !== 'shardsChangedAt')
          .sort(),
      ).toEqual(POOL_VIEW_FIELDS);
    expect(pools.find((p) => p.pool === names[0])).toMatchObject({ ...DEFAULTS, maxUses: 9 });
    expect(pools.find((p) => p.pool === names[1])).toMatchObject(DEFAULTS);
    const listed = pools.map((p) => p.pool);
    expect(listed).toEqual([...listed].sort((a, b) => a.localeCompare(b)));
  });

  it.each([
    ['maxUses above 1000', { maxUses: 1001 }, 'body.maxUses'],
    ['maxUses below 0', { maxUses: -1 }, 'body.maxUses'],
    ['maxUses a fraction', { maxUses: 1.5 }, 'body.maxUses'],
    ['maxUses a string (no coercion)', { maxUses: '3' }, 'body.maxUses'],
    ['leaseTtlSeconds 0', { leaseTtlSeconds: 0 }, 'body.leaseTtlSeconds'],
    ['leaseTtlSeconds above 3600', { leaseTtlSeconds: 3601 }, 'body.leaseTtlSeconds'],
    ['cooldownSeconds 0', { cooldownSeconds: 0 }, 'body.cooldownSeconds'],
    ['cooldownSeconds above 86400', { cooldownSeconds: 86_401 }, 'body.cooldownSeconds'],
    ['minCredits below 0', { minCredits: -1 }, 'body.minCredits'],
    ['a provider keypool does not know', { provider: 'openai' }, 'body.provider'],
    ['shards 0', { shards: 0 }, 'body.shards'],
    ['shards above 64', { shards: 65 }, 'body.shards'],
    ['shards a fraction', { shards: 2.5 }, 'body.shards'],
    ['proxyAttempts 0', { proxyAttempts: 0 }, 'body.proxyAttempts'],
    ['proxyAttempts above 5', { proxyAttempts: 6 }, 'body.proxyAttempts'],
    ['proxyTimeoutSeconds 0', { proxyTimeoutSeconds: 0 }, 'body.proxyTimeoutSeconds'],
    ['proxyTimeoutSeconds above 600', { proxyTimeoutSeconds: 601 }, 'body.proxyTimeoutSeconds'],
    ['an unknown field', { maxUses: 3, colour: 'blue' }, 'body'],
  ])('PUT with %s is 400 invalid_request naming the field, and creates nothing', async (_what, body, path) => {
    // Prepare
    const pool = uniqueName('bad');
    // Act
    const answer = await api.call('PUT', `/pools/${pool}`, body);
    // Assess
    const error = expectError(answer, 400, 'invalid_request');
    expect(error.details?.map((d) => d.path)).toContain(path);
    expectError(await api.call('GET', `/pools/${pool}`), 404, 'pool_not_found');
  });

  it('PUT with malformed JSON or a bad pool name is 400 invalid_request', async () => {
    // Act
    const malformed = await api.call('PUT', `/pools/${uniqueName('bad')}`, '{"maxUses":');
    const badName = await api.call('PUT', '/pools/no%20spaces', {});
    const longName = await api.call('PUT', `/pools/${'p'.repeat(65)}`, {});
    // Assess
    expectError(malformed, 400, 'invalid_request');
    expect(expectError(badName, 400, 'invalid_request').details?.[0]?.path).toBe('path.pool');
    expectError(longName, 400, 'invalid_request');
  });
});

describe('POST /pools/{pool}/keys', () => {
  it('imports, dedupes and answers 201 with a masked KeyView for every key sent', async () => {
    // Prepare
    const pool = uniqueName('imp');
    const secret = fakeKey();
    // Act
    const first = await api.call('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secret, label: 'main' }] });
    const again = await api.call('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secret }, { apiKey: fakeKey() }] });
    // Assess
    expect(first.status).toBe(201);
    expect(Object.keys(first.body as object).sort()).toEqual(['duplicates', 'imported', 'keys', 'retired', 'revived']);
    expect(first.body).toMatchObject({
      imported: 1,
      duplicates: 0,
      keys: [
        {
          pool,
          label: 'main',
          usageCount: 0,
          status: 'active',
          lastUsedAt: null,
          credits: null,
          creditsCheckedAt: null,
          statusBy: null,
          statusReason: null,
          statusAt: null,
          cooldownUntil: null,
        },
      ],
    });
    const view = (first.body as { keys: KeyViewBody[] }).keys[0];
    expect(Object.keys(view ?? {}).sort()).toEqual([...KEY_VIEW_FIELDS, 'label'].sort());
    expect(view?.maskedKey).toBe(`${secret.slice(0, 3)}...${secret.slice(-4)}`);
    expect(view?.keyId).toMatch(/^k_[0-9a-f]{24}$/);
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ imported: 1, duplicates: 1 });
    expect((again.body as { keys: unknown[] }).keys).toHaveLength(2);
    expect(first.text + again.text).not.toContain(secret);
  });

  it('creates the pool with the defaults if it does not exist', async () => {
    // Prepare
    const pool = uniqueName('auto');
    expectError(await api.call('GET', `/pools/${pool}`), 404, 'pool_not_found');
    // Act
    const answer = await api.call('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: fakeKey() }] });
    // Assess
    expect(answer.status).toBe(201);
    expect(await api.call('GET', `/pools/${pool}`)).toMatchObject({ status: 200, body: { pool, ...DEFAULTS } });
  });

  it("leaves an existing pool's policy as the operator set it", async () => {
    // Prepare
    const pool = uniqueName('keep');
    const set = await api.putPool(pool, { maxUses: 12, provider: 'none' });
    // Act
    await api.importKeys(pool, 2);
    // Assess
    expect(await api.call('GET', `/pools/${pool}`)).toMatchObject({ status: 200, body: set });
  });

  it('a secret already in another pool is a duplicate and stays in its pool', async () => {
    // Prepare
    const [a, b] = [uniqueName('dup-a'), uniqueName('dup-b')];
    const secret = fakeKey();
    const { keys } = await api.importKeys(a, [secret]);
    // Act
    const answer = await api.call('POST', `/pools/${b}/keys`, { keys: [{ apiKey: secret }] });
    // Assess
    expect(answer).toMatchObject({ status: 201, body: { imported: 0, duplicates: 1 } });
    expect(await api.listAll(b)).toEqual([]);
    expect((await api.listAll(a)).map((k) => k.keyId)).toEqual([keys[0]?.keyId]);
  });

  it.each([
    ['an empty key list', { keys: [] }],
    ['more than 500 keys', { keys: Array.from({ length: 501 }, (_, i) => ({ apiKey: `sk-test-${i}aaaaaaaa` })) }],
    ['a key with spaces', { keys: [{ apiKey: 'sk test with spaces' }] }],
    ['a key too short', { keys: [{ apiKey: 'sk-1' }] }],
    ['a pool field (the pool is in the path now)', { keys: [{ apiKey: fakeKey(), pool: 'other' }] }],
    ['a label with a control character', { keys: [{ apiKey: fakeKey(), label: 'a\u0007b' }] }],
    ['no keys field', {}],
  ])('400 invalid_request for %s, and no pool is created', async (_what, body) => {
    // Prepare
    const pool = uniqueName('bad-imp');
    // Act
    const answer = await api.call('POST', `/pools/${pool}/keys`, body);
    // Assess
    expectError(answer, 400, 'invalid_request');
    expectError(await api.call('GET', `/pools/${pool}`), 404, 'pool_not_found');
  });

  it(`400 invalid_request naming the limit for more than ${MAX_VERIFY_BATCH} keys with verify=true, before the provider is asked about any`, async () => {
    // Prepare: each key of an import with verify may wait for the provider up to its timeout.
    const pool = uniqueName('verify-many');
    const keys = Array.from({ length: MAX_VERIFY_BATCH + 1 }, () => ({ apiKey: fakeKey() }));
    // Act
    const answer = await api.call('POST', `/pools/${pool}/keys?verify=true`, { keys });
    // Assess
    expectError(answer, 400, 'invalid_request');
    expect(answer.body).toMatchObject({
      message: expect.stringContaining(`at most ${MAX_VERIFY_BATCH} keys`) as unknown,
      details: [{ path: 'body.keys' }],
    });
    expectError(await api.call('GET', `/pools/${pool}`), 404, 'pool_not_found');
    // The same keys without verify are one import.
    expect(await api.call('POST', `/pools/${pool}/keys?verify=false`, { keys })).toMatchObject({
      status: 201,
      body: { imported: MAX_VERIFY_BATCH + 1 },
    });
  });
});

describe('GET /pools/{pool}/keys', () => {
  const POOL_SIZE = 250;
  let pool: string;
  let ids: string[];
  let secrets: string[];

  beforeAll(async () => {
    pool = uniqueName('walk');
    const imported = await api.importKeys(pool, POOL_SIZE);
    ids = imported.keys.map((k) => k.keyId);
    secrets = imported.secrets;
    // A neighbour pool whose keys must never show up in this one's pages.
    await api.importKeys(uniqueName('walk-nb'), 30);
  });

  it(`walks a pool of ${POOL_SIZE} keys with ?limit and ?cursor: every key once, in id order, never a secret`, async () => {
    // Act
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    let texts = '';
    do {
      const answer = await api.call(
        'GET',
        `/pools/${pool}/keys?limit=60${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(answer.status, answer.text).toBe(200);
      const page = answer.body as { keys: KeyViewBody[]; cursor: string | null };
      expect(Object.keys(page).sort()).toEqual(['cursor', 'keys']);
      for (const key of page.keys) expect(Object.keys(key).sort()).toEqual(KEY_VIEW_FIELDS);
      seen.push(...page.keys.map((k) => k.keyId));
      sizes.push(page.keys.length);
      texts += answer.text;
      cursor = page.cursor;
    } while (cursor);
    // Assess
    expect(sizes.slice(0, 4)).toEqual([60, 60, 60, 60]);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(POOL_SIZE);
    expect(seen).toEqual([...ids].sort());
    for (const secret of secrets) expect(texts).not.toContain(secret);
  });

  it('without ?limit answers a page of 100 and a cursor', async () => {
    // Act
    const answer = await api.call('GET', `/pools/${pool}/keys`);
    // Assess
    expect(answer.status).toBe(200);
    const page = answer.body as { keys: KeyViewBody[]; cursor: string | null };
    expect(page.keys).toHaveLength(100);
    expect(page.cursor).toEqual(expect.any(String));
  });

  it('?status filters across pages: only the keys of that status, each once', async () => {
    // Prepare: disable 7 keys spread over the id order.
    const sorted = [...ids].sort();
    const disabled = [3, 40, 77, 120, 161, 200, 249].map((i) => sorted[i] ?? '');
    for (const keyId of disabled)
      expect((await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'disabled' })).status).toBe(200);
    // Act
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const answer = await api.call(
        'GET',
        `/pools/${pool}/keys?status=disabled&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(answer.status).toBe(200);
      const page = answer.body as { keys: KeyViewBody[]; cursor: string | null };
      expect(page.keys.every((k) => k.status === 'disabled')).toBe(true);
      seen.push(...page.keys.map((k) => k.keyId));
      cursor = page.cursor;
    } while (cursor);
    const active = await api.listAll(pool, '&status=active');
    // Assess
    expect(seen).toEqual(disabled);
    expect(active).toHaveLength(POOL_SIZE - disabled.length);
  });

  it('404 pool_not_found for a pool that does not exist; 400 for a bad query', async () => {
    // Act / Assess
    expectError(await api.call('GET', `/pools/${uniqueName('nope')}/keys`), 404, 'pool_not_found');
    for (const query of [
      'limit=0',
      'limit=1001',
      'limit=abc',
      'limit=1.5',
      'status=gone',
      'cursor=not-a-cursor',
      'colour=blue',
    ]) {
      expectError(await api.call('GET', `/pools/${pool}/keys?${query}`), 400, 'invalid_request');
    }
  });
});

describe('PATCH /pools/{pool}/keys/{keyId}', () => {
  it('disables and enables a key, answering 200 KeyView; a disabled key is never leased', async () => {
    // Prepare
    const pool = uniqueName('patch');
    const { keys } = await api.importKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    // Act
    const off = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'disabled' });
    const refused = await api.lease(pool);
    const on = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'active' });
    const leased = await api.lease(pool);
    // Assess
    expect(off).toMatchObject({
      status: 200,
      body: { keyId, pool, status: 'disabled', statusBy: 'operator', statusReason: 'operator', cooldownUntil: null },
    });
    expect(Date.parse((off.body as { statusAt: string }).statusAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(Object.keys(off.body as object).sort()).toEqual(KEY_VIEW_FIELDS);
    expectError(refused, 409, 'no_usable_key');
    expect(on).toMatchObject({
      status: 200,
      body: { keyId, status: 'active', statusBy: null, statusReason: null, statusAt: null },
    });
    expect(leased).toMatchObject({ status: 200, body: { keyId } });
  });

  it('resets the count: the key is leasable again and goes to its place in the usage order', async () => {
    // Prepare: cap 1; the first key used to the cap, the second once.
    const pool = uniqueName('reset');
    await api.putPool(pool, { maxUses: 1 });
    const { keys } = await api.importKeys(pool, 2);
    const [first = '', second = ''] = keys.map((k) => k.keyId);
    for (let i = 0; i < 2; i++) await api.call('POST', `/pools/${pool}/keys/${first}/usage`);
    await api.call('POST', `/pools/${pool}/keys/${second}/usage`);
    // Act
    const reset = await api.call('PATCH', `/pools/${pool}/keys/${first}`, { usageCount: 0 });
    const next = await api.grant(pool);
    // Assess
    expect(reset).toMatchObject({ status: 200, body: { keyId: first, usageCount: 0, status: 'active' } });
    expect(next).toMatchObject({ keyId: first, usageCount: 0 });
  });

  it('sets status and count in one request', async () => {
    // Prepare
    const pool = uniqueName('both');
    const { keys } = await api.importKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`);
    // Act
    const answer = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'disabled', usageCount: 5 });
    // Assess
    expect(answer).toMatchObject({ status: 200, body: { keyId, status: 'disabled', usageCount: 5 } });
  });

  it('resets a count the usage route pushed past 9,007, where the sort key passes 2^53 (the way back from lease-less increments)', async () => {
    // Prepare: a count of 9,009, reached through the usage route (no cap there).
    const pool = uniqueName('deep');
    const { keys } = await api.importKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    expect((await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount: 9000 })).status).toBe(200);
    for (let i = 0; i < 9; i++) expect((await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`)).status).toBe(200);
    // Act
    const reset = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount: 0 });
    const lease = await api.lease(pool);
    // Assess
    expect(reset.status, reset.text).toBe(200);
    expect(reset.body).toMatchObject({ keyId, usageCount: 0 });
    expect(lease).toMatchObject({ status: 200, body: { keyId, usageCount: 0 } });
  });

  it.each([9_008, 100_000, 1_000_000_000])(
    'PATCH usageCount %i (within the schema) is never a 500',
    async (usageCount) => {
      // Prepare
      const pool = uniqueName('high');
      const { keys } = await api.importKeys(pool, 1);
      const keyId = keys[0]?.keyId ?? '';
      // Act
      const answer = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount });
      // Assess: either set as asked, or refused as a bad request, but never an internal error.
      expect([200, 400], answer.text).toContain(answer.status);
      if (answer.status === 200) expect(answer.body).toMatchObject({ keyId, usageCount });
      else expectError(answer, 400, 'invalid_request');
    },
  );

  it.each([
    ['an empty change {}', {}],
    ['a status operators cannot set (exhausted)', { status: 'exhausted' }],
    ['a status operators cannot set (suspect)', { status: 'suspect' }],
    ['a negative count', { usageCount: -1 }],
    ['a fractional count', { usageCount: 0.5 }],
    ['an unknown field', { status: 'active', note: 'x' }],
  ])('400 invalid_request for %s, and the key is unchanged', async (_what, body) => {
    // Prepare
    const pool = uniqueName('patch-bad');
    const { keys } = await api.importKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    // Act
    const answer = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, body);
    // Assess
    expectError(answer, 400, 'invalid_request');
    expect(await api.view(pool, keyId)).toMatchObject({ status: 'active', usageCount: 0 });
  });

  it('404 key_not_found for an unknown or malformed key id in an existing pool', async () => {
    // Prepare
    const pool = uniqueName('patch-404');
    await api.putPool(pool);
    // Act / Assess
    expectError(
      await api.call('PATCH', `/pools/${pool}/keys/k_000000000000000000000000`, { status: 'active' }),
      404,
      'key_not_found',
    );
    expectError(
      await api.call('PATCH', `/pools/${pool}/keys/k_000000000000000000000000`, { usageCount: 0 }),
      404,
      'key_not_found',
    );
    expectError(await api.call('PATCH', `/pools/${pool}/keys/garbage`, { status: 'active' }), 404, 'key_not_found');
  });
});

describe('POST /pools/{pool}/keys/{keyId}/usage', () => {
  it('adds one, answering 200 {"keyId","usageCount"}, with no cap', async () => {
    // Prepare
    const pool = uniqueName('usage');
    await api.putPool(pool, { maxUses: 0 });
    const { keys } = await api.importKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    // Act
    const one = await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`);
    const two = await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`);
    // Assess
    expect(one).toMatchObject({ status: 200, body: { keyId, usageCount: 1 } });
    expect(two.body).toEqual({ keyId, usageCount: 2 });
  });

  it('404 key_not_found for an unknown key; 400 for a body', async () => {
    // Prepare
    const pool = uniqueName('usage-bad');
    const { keys } = await api.importKeys(pool, 1);
    // Act / Assess
    expectError(await api.call('POST', `/pools/${pool}/keys/k_000000000000000000000000/usage`), 404, 'key_not_found');
    expectError(
      await api.call('POST', `/pools/${pool}/keys/${keys[0]?.keyId ?? ''}/usage`, { n: 1 }),
      400,
      'invalid_request',
    );
  });
});

describe('POST /pools/{pool}/leases and .../complete', () => {
  it("with no body: the pool's cap and TTL; answers exactly leaseId, keyId, apiKey, pool, usageCount, expiresAt", async () => {
    // Prepare
    const pool = uniqueName('lease');
    const { keys, secrets } = await api.importKeys(pool, 1);
    // Act
    const answer = await api.lease(pool);
    // Assess
    expect(answer.status).toBe(200);
    const grant = answer.body as LeaseGrantBody;
    expect(Object.keys(grant).sort()).toEqual(['apiKey', 'expiresAt', 'keyId', 'leaseId', 'pool', 'usageCount']);
    expect(grant).toMatchObject({ keyId: keys[0]?.keyId, apiKey: secrets[0], pool, usageCount: 0 });
    expect(grant.leaseId).toMatch(new RegExp(`^${grant.keyId}\\.[0-7]\\.[0-9a-z]+\\.[0-9a-f]{16}$`));
    const ttl = Date.parse(grant.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(290_000);
    expect(ttl).toBeLessThanOrEqual(300_000);
  });

  it('takes the least used key first, then the least recently used', async () => {
    // Prepare
    const pool = uniqueName('lru');
    await api.putPool(pool, { maxUses: 10 });
    const { keys } = await api.importKeys(pool, 3);
    // Act
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const grant = await api.grant(pool);
      order.push(grant.keyId);
      expect((await api.complete(pool, grant.leaseId)).status).toBe(200);
    }
    // Assess: import order, twice.
    const ids = keys.map((k) => k.keyId);
    expect(order).toEqual([...ids, ...ids]);
  });

  it.each([
    ['success', 1, 'active'],
    ['failure', 0, 'active'],
    ['invalid_key', 0, 'suspect'],
    ['out_of_credits', 0, 'exhausted'],
    ['rate_limited', 0, 'cooling'],
  ])('complete %s answers 200 {"keyId","usageCount","status"}: count %i, status %s', async (outcome, count, status) => {
    // Prepare
    const pool = uniqueName('cycle');
    await api.importKeys(pool, 1);
    const grant = await api.grant(pool, { maxUses: 2, ttlSeconds: 60 });
    // Act
    const done = await api.complete(pool, grant.leaseId, { outcome });
    const again = await api.complete(pool, grant.leaseId, { outcome });
    // Assess
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ keyId: grant.keyId, usageCount: count, status });
    expect(again).toMatchObject({ status: 200, body: { keyId: grant.keyId, usageCount: count } });
  });

  it('complete with no body is success', async () => {
    // Prepare
    const pool = uniqueName('nobody');
    await api.importKeys(pool, 1);
    const grant = await api.grant(pool);
    // Act
    const done = await api.complete(pool, grant.leaseId);
    // Assess
    expect(done).toMatchObject({ status: 200, body: { keyId: grant.keyId, usageCount: 1, status: 'active' } });
  });

  it.each([
    ['malformed JSON', '{"maxUses":'],
    ['a string where an integer belongs (no coercion)', { maxUses: '3' }],
    ['a fraction', { maxUses: 1.5 }],
    ['maxUses out of range', { maxUses: 1001 }],
    ['ttlSeconds out of range', { ttlSeconds: 0 }],
    ['a pool field (the pool is in the path now)', { pool: 'stability' }],
    ['a JSON array body', [1, 2]],
  ])('lease: 400 invalid_request for %s', async (_what, body) => {
    // Prepare
    const pool = uniqueName('bad-lease');
    await api.importKeys(pool, 1);
    // Act
    const answer = await api.call('POST', `/pools/${pool}/leases`, body);
    // Assess
    expectError(answer, 400, 'invalid_request');
    expect(await api.listAll(pool)).toMatchObject([{ usageCount: 0 }]);
  });

  it('lease: a 400 names the field and the reason', async () => {
    // Act
    const answer = await api.call('POST', `/pools/${uniqueName('x')}/leases`, { maxUses: '3' });
    // Assess
    const body = expectError(answer, 400, 'invalid_request');
    expect(body.details?.[0]).toEqual({ path: 'body.maxUses', message: 'expected number' });
  });

  it.each([
    ['an outcome keypool does not know', { outcome: 'great' }],
    ['retryAfterSeconds 0', { outcome: 'rate_limited', retryAfterSeconds: 0 }],
    ['retryAfterSeconds above 3600', { outcome: 'rate_limited', retryAfterSeconds: 3601 }],
    ['retryAfterSeconds without rate_limited', { outcome: 'failure', retryAfterSeconds: 5 }],
    ['an unknown field', { outcome: 'success', extra: 1 }],
  ])('complete: 400 invalid_request for %s, and the lease stays open', async (_what, body) => {
    // Prepare
    const pool = uniqueName('bad-done');
    await api.importKeys(pool, 1);
    const grant = await api.grant(pool);
    // Act
    const answer = await api.complete(pool, grant.leaseId, body);
    // Assess
    expectError(answer, 400, 'invalid_request');
    expect(await api.complete(pool, grant.leaseId, { outcome: 'failure' })).toMatchObject({
      status: 200,
      body: { usageCount: 0 },
    });
  });

  it('complete: 404 lease_not_found for a malformed or unknown lease id', async () => {
    // Prepare
    const pool = uniqueName('done-404');
    await api.putPool(pool);
    // Act / Assess
    expectError(await api.complete(pool, 'garbage'), 404, 'lease_not_found');
    expectError(
      await api.complete(pool, 'k_000000000000000000000000.1.zzzzz.0000000000000000'),
      404,
      'lease_not_found',
    );
  });
});

describe('errors', () => {
  it('404 not_found for an unknown route, as JSON', async () => {
    // Act / Assess
    expectError(await api.call('GET', '/nowhere'), 404, 'not_found');
    expectError(await api.call('GET', '/pools/a/b/c/d/e'), 404, 'not_found');
  });

  it.each([
    ['DELETE', '/pools', 'GET'],
    ['POST', '/pools/p', 'PUT, GET, DELETE'],
    ['PUT', '/pools/p/keys', 'POST, GET'],
    ['GET', '/pools/p/leases', 'POST'],
    ['PUT', '/pools/p/keys/k_000000000000000000000000', 'PATCH, DELETE'],
    ['GET', '/pools/p/keys/k_000000000000000000000000/usage', 'POST'],
    ['POST', '/health', 'GET'],
  ])('405 method_not_allowed for %s %s, with an allow header (%s)', async (method, path, allow) => {
    // Act
    const answer = await api.call(method, path);
    // Assess
    expectError(answer, 405, 'method_not_allowed');
    expect(answer.headers.get('allow')).toBe(allow);
  });

  it('409 no_usable_key for a pool with no key, with neither retryAfterSeconds nor a Retry-After header; every count 0', async () => {
    // Prepare
    const pool = uniqueName('empty');
    await api.putPool(pool);
    // Act
    const answer = await api.countedRefusal(pool);
    // Assess
    const body = expectError(answer, 409, 'no_usable_key');
    expect(body).not.toHaveProperty('retryAfterSeconds');
    expect(body).not.toHaveProperty('nextReturnAt');
    expect(answer.headers.get('retry-after')).toBeNull();
    expect(body).toMatchObject({
      unusable: {
        overCap: 0,
        cooling: 0,
        suspect: 0,
        exhausted: 0,
        disabled: 0,
        undecryptable: 0,
        accountExhausted: 0,
      },
      countedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
    });
    expect(body.message).toContain('not usable: no keys');
  });

  it('410 lease_expired for a completion after the lease expired; the use stays counted', async () => {
    // Prepare
    const pool = uniqueName('late');
    await api.importKeys(pool, 1);
    const grant = await api.grant(pool, { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1_100));
    // Act
    const late = await api.complete(pool, grant.leaseId, { outcome: 'failure' });
    // Assess
    expectError(late, 410, 'lease_expired');
    expect(await api.view(pool, grant.keyId)).toMatchObject({ usageCount: 1 });
  });

  it('413 payload_too_large over 256 KB on every route that takes a body, and nothing is imported', async () => {
    // Prepare
    const pool = uniqueName('big');
    const keys = Array.from({ length: 500 }, () => ({ apiKey: `sk-test-${'x'.repeat(520)}` }));
    const big = JSON.stringify({ keys });
    expect(Buffer.byteLength(big)).toBeGreaterThan(256 * 1024);
    // Act
    const answers = await Promise.all([
      api.call('POST', `/pools/${pool}/keys`, big),
      api.call('PUT', `/pools/${pool}`, big),
      api.call('POST', `/pools/${pool}/leases`, big),
      api.call('PATCH', `/pools/${pool}/keys/k_000000000000000000000000`, big),
    ]);
    // Assess
    for (const answer of answers) expectError(answer, 413, 'payload_too_large');
    expectError(await api.call('GET', `/pools/${pool}`), 404, 'pool_not_found');
  });

  it('a body just under 256 KB is read (and judged by its schema)', async () => {
    // Prepare: a valid import of 400 long keys, under the limit.
    const pool = uniqueName('under');
    const keys = Array.from({ length: 400 }, (_, i) => ({
      apiKey: `sk-test-${String(i).padStart(4, '0')}-${'y'.repeat(490)}`,
    }));
    expect(Buffer.byteLength(JSON.stringify({ keys }))).toBeLessThan(256 * 1024);
    // Act
    const answer = await api.call('POST', `/pools/${pool}/keys`, { keys });
    // Assess
    expect(answer).toMatchObject({ status: 201, body: { imported: 400 } });
  });

  it("every error is JSON {error, message} (plus details, retryAfterSeconds or a dry pool's counts) and nothing else", async () => {
    // Prepare
    const pool = uniqueName('shape');
    await api.putPool(pool);
    // Act
    const answers = await Promise.all([
      api.call('POST', `/pools/${pool}/leases`, { maxUses: -1 }),
      api.call('GET', `/pools/${uniqueName('nope')}`),
      api.call('DELETE', '/pools'),
      api.lease(pool),
      api.call('GET', '/nowhere'),
    ]);
    // Assess
    for (const answer of answers) {
      expect(answer.headers.get('content-type')).toBe('application/json');
      const body = answer.body as ErrorBodyShape;
      expect(typeof body.error).toBe('string');
      expect(typeof body.message).toBe('string');
      const known = ['error', 'message', 'details', 'retryAfterSeconds', 'unusable', 'countedAt', 'nextReturnAt'];
      expect(Object.keys(body).every((k) => known.includes(k))).toBe(true);
    }
    expect(answers.map((a) => a.status)).toEqual([400, 404, 405, 409, 404]);
  });
});
