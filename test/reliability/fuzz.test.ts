/**
 * Fuzz: property-based requests against every route of the local server (the same Lambda
 * handlers as on AWS), all under /pools/{pool}. Every request here is invalid by construction
 * (a body its route's schema refuses, a value above the pool's policy, a pool that does not
 * exist, another pool's key or lease, a dry pool): each must get a 4xx JSON error (never a
 * 5xx, never a hang), no answer may contain a secret, and the table — keys and pool records —
 * must be byte-for-byte what it was.
 *
 * Size: KEYPOOL_RELIABILITY=full sends 10,000 requests; the default is a short run.
 */
import { registerSecret, scanForSecrets } from './log-capture.js';
import { request as httpRequest, Agent } from 'node:http';
import { ScanCommand } from '../../lib/adapters/dynamo-wire.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as schemas from '../../lib/http/schemas.js';
import { matchRoute, ROUTE_KEYS, ROUTES } from '../../lib/http/routes.js';
import { POOL_NAME_PATTERN } from '../../lib/domain/primitives.js';
import { BUDGET_PREFIX, TABLE } from '../../lib/table.js';
import { loadHandlers } from '../../bin/local-handlers.js';
import { type LocalServer, startServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';

const FULL = process.env.KEYPOOL_RELIABILITY === 'full';
const REQUESTS = Number(process.env.KEYPOOL_FUZZ_REQUESTS ?? (FULL ? 10_000 : 600));

let server: LocalServer;
let snapshot: () => Promise<string>;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const secrets: string[] = [];
const ids = {
  pool: '',
  other: '',
  dry: '',
  keys: [] as string[],
  otherKey: '',
  openLease: '',
  doneLease: '',
  otherLease: '',
};
/** The fuzzed pool's policy: leases above it are refused (400) before anything is written. */
const POLICY = { maxUses: 3, leaseTtlSeconds: 600 };

interface Answer {
  status: number;
  body: string;
}

function send(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = httpRequest(`${server.url}${path}`, { method, agent, timeout: 10_000, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in 10 s: ${method} ${path.slice(0, 80)}`)));
    req.on('error', fail);
    if (body !== undefined) {
      req.setHeader('content-type', 'application/json');
      // A fixed length, as API Gateway clients send: Node's chunked GET bodies get an empty answer body back.
      req.setHeader('content-length', Buffer.byteLength(body));
    }
    req.end(body);
  });
}

beforeAll(async () => {
  const table = await createTestTable('fuzz');
  process.env.KEYPOOL_TABLE = table.tableName;
  process.env.KEYPOOL_DYNAMODB_ENDPOINT = table.endpoint;
  // Three pools: the fuzzed one (6 keys, one open and one completed lease), another with one
  // key and an open lease (for cross-pool ids), and a dry one (no key: a lease is 409).
  ids.pool = uniqueName('fz');
  ids.other = uniqueName('fz-other');
  ids.dry = uniqueName('fz-dry');
  for (let i = 0; i < 7; i++) secrets.push(fakeKey(`${i}-`));
  secrets.forEach(registerSecret);
  const broker = table.broker();
  await broker.setPool(ids.pool, POLICY);
  await broker.setPool(ids.dry, {});
  const imported = await broker.importKeys(
    ids.pool,
    secrets.slice(0, 6).map((apiKey) => ({ apiKey })),
  );
  ids.keys = imported.keys.map((k) => k.keyId);
  ids.otherKey = (await broker.importKeys(ids.other, [{ apiKey: secrets[6] ?? '' }])).keys[0]?.keyId ?? '';
  const done = await broker.lease(ids.pool);
  await broker.complete(ids.pool, done.leaseId);
  ids.doneLease = done.leaseId;
  ids.openLease = (await broker.lease(ids.pool, { ttlSeconds: POLICY.leaseTtlSeconds })).leaseId;
  ids.otherLease = (await broker.lease(ids.other)).leaseId;
  const client = table.store.client;
  snapshot = async () => {
    const items: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await client.send(
        new ScanCommand({ TableName: table.tableName, ConsistentRead: true, ExclusiveStartKey: start }),
      );
      // A caller's report budget is spent by every well-formed report or lease-less count it
      // sends, answered or not (a rate limit on attempts, with its own TTL): those counters are
      // the one thing a refused request may write, and only the budget suite asserts on them.
      items.push(
        ...(out.Items ?? [])
          .filter((item) => !String(item[TABLE.partitionKey]).startsWith(BUDGET_PREFIX))
          .map((item) =>
            JSON.stringify(Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))),
          ),
      );
      start = out.LastEvaluatedKey;
    } while (start);
    return items.sort().join('\n');
  };
  server = await startServer(await loadHandlers(), 0);
}, 120_000);

afterAll(async () => {
  agent.destroy();
  await server.close();
});

// Not invented methods: Node's HTTP parser refuses them (400, empty body) before any handler runs.
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', ' ', '\u0000', '💥'.repeat(40)),
);
const huge = fc.constantFrom('x'.repeat(300 * 1024), 'é'.repeat(140 * 1024), 'a'.repeat(5000));
const segment = fc.oneof(
  text.map((s) => encodeURIComponent(s)),
  fc.constantFrom(
    '%E0%A4%A',
    '%',
    '%00',
    '..',
    'k_000000000000000000000000',
    'k_' + 'f'.repeat(300),
    'p'.repeat(65),
    '%23pools',
    'pool%23x',
  ),
);
const decodes = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
};
/** A path segment that is not a pool name: every route answers 400 (or 404 when the path does not parse). */
const badPool = segment.filter((s) => {
  const decoded = decodes(s);
  return decoded === undefined || !POOL_NAME_PATTERN.test(decoded);
});
/** A valid pool name no pool has. */
const unknownPool = fc.stringMatching(/^[a-z0-9]{1,20}$/).map((name) => `none-${name}`);
const anyJson = fc.oneof(
  fc.jsonValue(),
  fc.object(),
  fc.array(fc.anything()).map((a) => a as unknown),
);
const secretish = fc.constantFrom(...Array.from({ length: 6 }, (_, i) => i)).map((i) => secrets[i] ?? '');
const wrongNumber = fc.oneof(
  fc.double(),
  fc.string(),
  fc.integer({ min: -5, max: 5000 }),
  fc.constant(null),
  fc.boolean(),
);

/** A body that the route's schema refuses (or no JSON at all), optionally mentioning a secret. */
function invalidBody(
  schema: { safeParse(v: unknown): { success: boolean } },
  emptyIsValid: boolean,
): fc.Arbitrary<string> {
  const shaped = fc.oneof(
    anyJson,
    fc.record({
      keys: fc.array(
        fc.record(
          {
            apiKey: fc.oneof(text, secretish, fc.integer()),
            label: fc.oneof(text, fc.integer()),
            pool: text,
            bogus: fc.anything(),
          },
          { requiredKeys: ['apiKey'] },
        ),
      ),
    }),
    fc.record(
      { pool: fc.oneof(text, fc.integer()), maxUses: wrongNumber, ttlSeconds: fc.anything(), extra: text },
      { requiredKeys: [] },
    ),
    fc.record(
      {
        status: fc.oneof(text, fc.constantFrom('exhausted', 'cooling', 'suspect', 'ACTIVE')),
        usageCount: wrongNumber,
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    ),
    fc.record(
      {
        outcome: fc.oneof(text, fc.constantFrom('SUCCESS', 'succes', 'unknown')),
        retryAfterSeconds: wrongNumber,
        extra: text,
      },
      { requiredKeys: [] },
    ),
    fc.record(
      {
        maxUses: wrongNumber,
        leaseTtlSeconds: fc.oneof(wrongNumber, fc.integer({ min: 3601, max: 100_000 })),
        cooldownSeconds: fc.oneof(wrongNumber, fc.integer({ min: 86_401, max: 1_000_000 })),
        provider: fc.oneof(text, fc.constantFrom('Stability', 'openai', 'NONE')),
        minCredits: fc.oneof(fc.double({ max: -0.001 }), fc.string(), fc.constant(null)),
        extra: text,
      },
      { requiredKeys: [] },
    ),
  );
  // Judge what is sent, not the generated value: JSON.stringify drops `undefined` fields, which
  // once turned an invalid value (an unknown field set to undefined) into a valid import.
  const json = shaped
    .map((v) => String(JSON.stringify(v) as string | undefined))
    .filter((raw) => {
      try {
        return !schema.safeParse(JSON.parse(raw)).success;
      } catch {
        return true;
      }
    });
  const malformed = fc
    .oneof(text, huge, fc.constantFrom('{', '{"keys":[', '[1,2', '{"a":1}}', 'nul', '{"pool": "x",}', '\uFEFF{}'))
    .filter((raw) => {
      if (raw.trim() === '') return !emptyIsValid;
      try {
        return !schema.safeParse(JSON.parse(raw)).success;
      } catch {
        return true;
      }
    });
  return fc.oneof(json, malformed);
}

interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

const realKey = fc.constantFrom(0, 1, 2).map((i) => ids.keys[i] ?? '');
const realPool = fc.constant(null).map(() => ids.pool);
const leaseIds = fc.oneof(
  fc.constantFrom(0, 1).map((i) => (i === 0 ? ids.openLease : ids.doneLease)),
  segment,
  fc.constantFrom('k_000000000000000000000000.1.zzzzz.0000000000000000'),
);
/** Lease ids that are not an open or completed lease of the fuzzed pool. */
const strangerLease = fc
  .oneof(segment, fc.constantFrom('k_000000000000000000000000.1.zzzzz.0000000000000000'))
  .filter((id) => id !== '' && decodes(id) !== '');
const pathOf = (template: string, pool: string, keyId: string, leaseId: string): string =>
  template.replace('{pool}', pool).replace('{keyId}', keyId).replace('{leaseId}', leaseId);
const validWrite = fc.oneof(
  fc.constant({ method: 'POST', route: '/pools/{pool}/leases', body: '{}' }),
  fc.constant({ method: 'POST', route: '/pools/{pool}/leases/{leaseId}/complete', body: '{"outcome":"failure"}' }),
  fc.constant({ method: 'POST', route: '/pools/{pool}/keys/{keyId}/usage', body: undefined }),
  fc.constant({ method: 'PATCH', route: '/pools/{pool}/keys/{keyId}', body: '{"status":"disabled"}' }),
  fc.constant({ method: 'PATCH', route: '/pools/{pool}/keys/{keyId}', body: '{"usageCount":0}' }),
  fc.constant({ method: 'GET', route: '/pools/{pool}/keys', body: undefined }),
  fc.constant({ method: 'GET', route: '/pools/{pool}', body: undefined }),
  fc.constant({ method: 'DELETE', route: '/pools/{pool}/keys/{keyId}', body: undefined }),
  fc.constant({ method: 'DELETE', route: '/pools/{pool}', body: undefined }),
);

/** The GET routes, each of which takes no body. */
const BODYLESS_GETS = [
  '/health',
  '/openapi.json',
  '/pools',
  '/pools/{pool}',
  '/pools/{pool}/keys',
  '/pools/{pool}/accounts',
] as const;

const requests: fc.Arbitrary<FuzzRequest> = fc.oneof(
  // Wrong methods on every known path.
  fc
    .tuple(fc.constantFrom(...ROUTE_KEYS), fc.constantFrom(...METHODS), realKey)
    .filter(([key, method]) => !ROUTE_KEYS.some((k) => k === `${method} ${ROUTES[key].path}`))
    .map(([key, method, id]) => ({
      kind: 'method',
      method,
      path: pathOf(ROUTES[key].path, ids.pool, id, ids.openLease),
    })),
  // Unknown paths.
  fc
    .array(segment, { minLength: 1, maxLength: 4 })
    .map((segs) => ({ kind: 'path', method: 'GET', path: `/${segs.join('/')}x` })),
  fc
    .array(segment, { minLength: 1, maxLength: 3 })
    .map((segs) => ({ kind: 'path', method: 'POST', path: `/pools/${ids.pool}/${segs.join('/')}x` })),
  // Bad bodies on every route that takes one, against the real pool and real ids.
  fc
    .tuple(fc.oneof(realPool, unknownPool), invalidBody(schemas.PoolBody, true))
    .map(([pool, body]) => ({ kind: 'pool-put', method: 'PUT', path: `/pools/${pool}`, body })),
  fc
    .tuple(fc.oneof(realPool, unknownPool), invalidBody(schemas.ImportBody, false))
    .map(([pool, body]) => ({ kind: 'import', method: 'POST', path: `/pools/${pool}/keys`, body })),
  fc
    .tuple(realKey, invalidBody(schemas.UpdateKeyBody, false))
    .map(([id, body]) => ({ kind: 'patch', method: 'PATCH', path: `/pools/${ids.pool}/keys/${id}`, body })),
  fc
    .tuple(invalidBody(schemas.LeaseBody, true))
    .map(([body]) => ({ kind: 'lease', method: 'POST', path: `/pools/${ids.pool}/leases`, body })),
  fc.tuple(leaseIds, invalidBody(schemas.CompleteBody, true)).map(([id, body]) => ({
    kind: 'complete',
    method: 'POST',
    path: `/pools/${ids.pool}/leases/${id}/complete`,
    body,
  })),
  // Bodies the schema takes but the rules refuse: an empty change, above the pool's policy,
  // retryAfterSeconds without rate_limited.
  realKey.map((id) => ({ kind: 'patch-empty', method: 'PATCH', path: `/pools/${ids.pool}/keys/${id}`, body: '{}' })),
  fc
    .record(
      { maxUses: fc.integer({ min: POLICY.maxUses + 1, max: 1000 }), ttlSeconds: fc.integer({ min: 1, max: 3600 }) },
      { requiredKeys: ['maxUses'] },
    )
    .map((b) => ({ kind: 'over-cap', method: 'POST', path: `/pools/${ids.pool}/leases`, body: JSON.stringify(b) })),
  fc
    .record(
      {
        maxUses: fc.integer({ min: 0, max: 1000 }),
        ttlSeconds: fc.integer({ min: POLICY.leaseTtlSeconds + 1, max: 3600 }),
      },
      { requiredKeys: ['ttlSeconds'] },
    )
    .map((b) => ({ kind: 'over-ttl', method: 'POST', path: `/pools/${ids.pool}/leases`, body: JSON.stringify(b) })),
  fc
    .tuple(
      fc.constantFrom('success', 'failure', 'invalid_key', 'out_of_credits', 'unknown'),
      fc.integer({ min: 1, max: 3600 }),
    )
    .map(([outcome, retryAfterSeconds]) => ({
      kind: 'retry-after',
      method: 'POST',
      path: `/pools/${ids.pool}/leases/${ids.openLease}/complete`,
      body: JSON.stringify({ outcome, retryAfterSeconds }),
    })),
  // Idempotency-Key: malformed values (400 before anything is read), and well-formed ones on a
  // lease that is refused anyway (over the cap, a dry pool): no record may be left behind.
  fc
    .string({ minLength: 0, maxLength: 300 })
    // HTTP trims a header value's ends: what must be refused is what arrives.
    .filter((value) => !/^[\x21-\x7e]{1,255}$/.test(value.trim()) && /^[\x20-\x7e]*$/.test(value))
    .map((value) => ({
      kind: 'idem-bad',
      method: 'POST',
      path: `/pools/${ids.pool}/leases`,
      body: '{}',
      headers: { 'idempotency-key': value === '' ? ' ' : value },
    })),
  fc
    .tuple(
      fc.string({ unit: fc.constantFrom(...'abcdefXYZ0123456789-_.:'.split('')), minLength: 1, maxLength: 64 }),
      fc.boolean(),
    )
    .map(([key, dry]) => ({
      kind: 'idem-refused',
      method: 'POST',
      path: `/pools/${dry ? ids.dry : ids.pool}/leases`,
      body: dry ? '{}' : JSON.stringify({ maxUses: POLICY.maxUses + 1 }),
      headers: { 'idempotency-key': key },
    })),
  // Valid bodies aimed at nothing: unknown ids, a pool with no keys.
  fc
    .tuple(segment, fc.constantFrom('{"status":"active"}', '{"status":"disabled"}', '{"usageCount":0}'))
    .map(([id, body]) => ({ kind: 'unknown-key', method: 'PATCH', path: `/pools/${ids.pool}/keys/${id}`, body })),
  segment.map((id) => ({ kind: 'unknown-usage', method: 'POST', path: `/pools/${ids.pool}/keys/${id}/usage` })),
  segment.map((id) => ({ kind: 'unknown-retire', method: 'DELETE', path: `/pools/${ids.pool}/keys/${id}` })),
  // The pool still holds keys: deleting it without retireKeys=true, or with a flag that is not one.
  fc
    .oneof(
      fc.constant(''),
      text.map((t) => `?retireKeys=${encodeURIComponent(t)}`),
    )
    .filter((q) => !/^\?retireKeys=(true|false)?$/.test(q))
    .map((q) => ({ kind: 'full-pool', method: 'DELETE', path: `/pools/${ids.pool}${q}` })),
  strangerLease.map((id) => ({
    kind: 'unknown-lease',
    method: 'POST',
    path: `/pools/${ids.pool}/leases/${id}/complete`,
    body: '{"outcome":"failure"}',
  })),
  fc.integer({ min: 0, max: 1000 }).map((maxUses) => ({
    kind: 'dry-pool',
    method: 'POST',
    path: `/pools/${ids.dry}/leases`,
    body: JSON.stringify({ maxUses: Math.min(maxUses, 3) }),
  })),
  // Another pool's key or lease under this pool's path, and this pool's under another's.
  fc
    .tuple(validWrite, fc.boolean())
    .map(([w, swap]) => ({
      kind: 'cross-pool',
      method: w.method,
      path: swap
        ? pathOf(w.route, ids.other, ids.keys[0] ?? '', ids.openLease)
        : pathOf(w.route, ids.pool, ids.otherKey, ids.otherLease),
      ...(w.body === undefined ? {} : { body: w.body }),
    }))
    .filter((r) => r.path.includes('/keys/') || r.path.includes('/complete')),
  // Valid requests to a pool that does not exist, and to paths whose pool is no pool name.
  fc.tuple(validWrite, unknownPool, realKey).map(([w, pool, id]) => ({
    kind: 'unknown-pool',
    method: w.method,
    path: pathOf(w.route, pool, id, ids.openLease),
    ...(w.body === undefined ? {} : { body: w.body }),
  })),
  fc.tuple(validWrite, badPool, realKey).map(([w, pool, id]) => ({
    kind: 'bad-pool',
    method: w.method,
    path: pathOf(w.route, pool, id, ids.openLease),
    ...(w.body === undefined ? {} : { body: w.body }),
  })),
  // Bad queries, and bodies where none belongs.
  fc
    .dictionary(fc.oneof(fc.constantFrom('limit', 'pool', 'status', 'cursor'), fc.string({ minLength: 1 })), text)
    .filter((q) => !schemas.ListQuery.safeParse(q).success)
    .map((q) => ({
      kind: 'query',
      method: 'GET',
      path: `/pools/${ids.pool}/keys?${new URLSearchParams(q).toString()}`,
    })),
  fc
    .tuple(
      fc.constantFrom(...BODYLESS_GETS),
      text.filter((t) => t.trim() !== ''),
    )
    .map(([path, body]) => ({ kind: 'bodyless', method: 'GET', path: path.replace('{pool}', ids.pool), body })),
  fc
    .tuple(
      realKey,
      text.filter((t) => t.trim() !== ''),
    )
    .map(([id, body]) => ({ kind: 'usage-body', method: 'POST', path: `/pools/${ids.pool}/keys/${id}/usage`, body })),
);

/** A GET with a body where none belongs: a 400 on every GET route. */
function bodyless(path: string): FuzzRequest {
  return { kind: 'bodyless', method: 'GET', path: path.replace('{pool}', ids.pool), body: 'x' };
}

describe('fuzz', () => {
  it(
    `${REQUESTS} invalid requests across every route: each a 4xx JSON error, no secret in any answer, the table unchanged`,
    async () => {
      // Prepare
      const before = await snapshot();
      const kinds = new Map<string, number>();
      const routesHit = new Set<string>();
      let sent = 0;
      // Act + Assess (per request)
      await fc.assert(
        fc.asyncProperty(requests, async (r) => {
          const answer = await send(r.method, r.path, r.body, r.headers);
          sent++;
          const match = matchRoute(r.method, r.path.split('?')[0] ?? '');
          if (match.found) routesHit.add(match.routeKey);
          kinds.set(`${r.kind} ${answer.status}`, (kinds.get(`${r.kind} ${answer.status}`) ?? 0) + 1);
          expect(answer.status, `${r.kind} ${r.method} ${r.path.slice(0, 80)}`).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          if (r.method === 'HEAD') return;
          const parsed = JSON.parse(answer.body) as { error?: unknown; message?: unknown };
          expect(typeof parsed.error).toBe('string');
          expect(typeof parsed.message).toBe('string');
          for (const secret of secrets) expect(answer.body.includes(secret)).toBe(false);
        }),
        // The GET routes are reached only by the bodyless kind, the DELETE routes by chance: one
        // example of each comes first (fast-check counts them in numRuns), so "every route hit"
        // does not hang on chance.
        {
          numRuns: REQUESTS,
          endOnFailure: true,
          examples: [
            ...BODYLESS_GETS.map((path): [FuzzRequest] => [bodyless(path)]),
            [{ kind: 'full-pool', method: 'DELETE', path: `/pools/${ids.pool}` }],
            [{ kind: 'unknown-retire', method: 'DELETE', path: `/pools/${ids.pool}/keys/k_000000000000000000000000` }],
          ],
        },
      );
      // Assess (whole run)
      console.info(`fuzz answers ${JSON.stringify(Object.fromEntries([...kinds].sort()))}`);
      expect(sent).toBe(REQUESTS);
      expect([...routesHit].sort()).toEqual([...ROUTE_KEYS].sort());
      expect(await snapshot()).toBe(before);
    },
    FULL ? 1_800_000 : 300_000,
  );

  it('no captured output line of this file contains a secret it used', () => {
    const scan = scanForSecrets();
    expect(scan.secrets).toBe(7);
    expect(scan.chunks).toBeGreaterThan(0);
    expect(scan.hits).toBe(0);
  });
});
