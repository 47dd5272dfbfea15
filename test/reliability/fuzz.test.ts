/**
 * Fuzz: property-based requests against every route of the local server (the same Lambda
 * handlers as on AWS). Every request here is invalid by construction: each must get a 4xx
 * JSON error (never a 5xx, never a hang), no answer may contain a secret, and the table must
 * be byte-for-byte what it was.
 *
 * Size: KEYPOOL_RELIABILITY=full sends 10,000 requests; the default is a short run.
 */
import { registerSecret, scanForSecrets } from './log-capture.js';
import { request as httpRequest, Agent } from 'node:http';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import * as schemas from '../../lib/http/schemas.js';
import { ROUTE_KEYS, ROUTES } from '../../lib/http/routes.js';
import { loadHandlers } from '../../lib/local/handlers.js';
import { type LocalServer, startServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';

const FULL = process.env.KEYPOOL_RELIABILITY === 'full';
const REQUESTS = Number(process.env.KEYPOOL_FUZZ_REQUESTS ?? (FULL ? 10_000 : 600));

let server: LocalServer;
let snapshot: () => Promise<string>;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const secrets: string[] = [];
const ids = { keys: [] as string[], openLease: '', doneLease: '' };

interface Answer {
  status: number;
  body: string;
}

function send(method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = httpRequest(`${server.url}${path}`, { method, agent, timeout: 10_000 }, (res) => {
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
  const pool = uniqueName('fz');
  for (let i = 0; i < 6; i++) secrets.push(fakeKey(`${i}-`));
  secrets.forEach(registerSecret);
  const broker = table.broker();
  const imported = await broker.importKeys(secrets.map((apiKey) => ({ apiKey, pool })));
  ids.keys = imported.keys.map((k) => k.keyId);
  const done = await broker.lease({ pool });
  await broker.complete(done.leaseId);
  ids.doneLease = done.leaseId;
  ids.openLease = (await broker.lease({ pool, ttlSeconds: 3600 })).leaseId;
  const client = documentClient({ endpoint: table.endpoint, region: undefined });
  snapshot = async () => {
    const out = await client.send(new ScanCommand({ TableName: table.tableName, ConsistentRead: true }));
    const items = (out.Items ?? []).map((item) => JSON.stringify(Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))));
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
const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constantFrom('', ' ', '\u0000', '💥'.repeat(40)));
const huge = fc.constantFrom('x'.repeat(300 * 1024), 'é'.repeat(140 * 1024), 'a'.repeat(5000));
const segment = fc.oneof(
  text.map((s) => encodeURIComponent(s)),
  fc.constantFrom('%E0%A4%A', '%', '%00', '..', 'k_000000000000000000000000', 'k_' + 'f'.repeat(300)),
);
const anyJson = fc.oneof(fc.jsonValue(), fc.object(), fc.array(fc.anything()).map((a) => a as unknown));
const secretish = fc.constantFrom(...Array.from({ length: 6 }, (_, i) => i)).map((i) => secrets[i] ?? '');

/** A body that the route's schema refuses (or no JSON at all), optionally mentioning a secret. */
function invalidBody(schema: { safeParse(v: unknown): { success: boolean } }, emptyIsValid: boolean): fc.Arbitrary<string> {
  const shaped = fc.oneof(
    anyJson,
    fc.record({ keys: fc.array(fc.record({ apiKey: fc.oneof(text, secretish, fc.integer()), bogus: fc.anything() }, { requiredKeys: ['apiKey'] })) }),
    fc.record({ pool: fc.oneof(text, fc.integer()), maxUses: fc.oneof(fc.double(), fc.string(), fc.integer({ min: -5, max: 5000 })), ttlSeconds: fc.anything(), extra: text }, { requiredKeys: [] }),
    fc.record({ status: fc.oneof(text, fc.constantFrom('exhausted', 'cooling', 'ACTIVE')), outcome: fc.oneof(text, fc.constantFrom('SUCCESS', 'succes')) }, { requiredKeys: [] }),
  );
  // Judge what is sent, not the generated value: JSON.stringify drops `undefined` fields, which
  // once turned an invalid value (an unknown field set to undefined) into a valid import.
  const json = shaped.map((v) => String(JSON.stringify(v) as string | undefined)).filter((raw) => {
    try {
      return !schema.safeParse(JSON.parse(raw)).success;
    } catch {
      return true;
    }
  });
  const malformed = fc.oneof(text, huge, fc.constantFrom('{', '{"keys":[', '[1,2', '{"a":1}}', 'nul', '{"pool": "x",}', '\uFEFF{}')).filter((raw) => {
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
}

const realKey = fc.constantFrom(0, 1, 2).map((i) => ids.keys[i] ?? '');
const leaseIds = fc.oneof(
  fc.constantFrom(0, 1).map((i) => (i === 0 ? ids.openLease : ids.doneLease)),
  segment,
  fc.constantFrom('k_000000000000000000000000.1.zzzzz.0000000000000000'),
);

const requests: fc.Arbitrary<FuzzRequest> = fc.oneof(
  // Wrong methods on every known path.
  fc.tuple(fc.constantFrom(...ROUTE_KEYS), fc.constantFrom(...METHODS), realKey).filter(([key, method]) => !ROUTE_KEYS.some((k) => k === `${method} ${ROUTES[key].path}`)).map(([key, method, id]) => ({
    kind: 'method',
    method,
    path: ROUTES[key].path.replace('{keyId}', id).replace('{leaseId}', ids.openLease),
  })),
  // Unknown paths.
  fc.array(segment, { minLength: 1, maxLength: 4 }).map((segs) => ({ kind: 'path', method: 'GET', path: `/${segs.join('/')}x` })),
  // Bad bodies on every route that takes one, against real ids.
  fc.tuple(invalidBody(schemas.ImportBody, false)).map(([body]) => ({ kind: 'import', method: 'POST', path: '/keys', body })),
  fc.tuple(realKey, invalidBody(schemas.SetStatusBody, false)).map(([id, body]) => ({ kind: 'status', method: 'PATCH', path: `/keys/${id}`, body })),
  fc.tuple(invalidBody(schemas.LeaseBody, true)).map(([body]) => ({ kind: 'lease', method: 'POST', path: '/leases', body })),
  fc.tuple(leaseIds, invalidBody(schemas.CompleteBody, true)).map(([id, body]) => ({ kind: 'complete', method: 'POST', path: `/leases/${id}/complete`, body })),
  // Valid bodies aimed at nothing: unknown ids, a pool with no keys.
  fc.tuple(segment, fc.constantFrom('active', 'disabled')).map(([id, status]) => ({ kind: 'unknown-key', method: 'PATCH', path: `/keys/${id}`, body: JSON.stringify({ status }) })),
  segment.map((id) => ({ kind: 'unknown-usage', method: 'POST', path: `/keys/${id}/usage` })),
  segment.map((id) => ({ kind: 'unknown-lease', method: 'POST', path: `/leases/${id}/complete`, body: '{"outcome":"failure"}' })),
  fc.record({ pool: fc.stringMatching(/^[a-z]{1,20}$/), maxUses: fc.integer({ min: 0, max: 1000 }) }).map((b) => ({ kind: 'empty-pool', method: 'POST', path: '/leases', body: JSON.stringify({ ...b, pool: `none-${b.pool}` }) })),
  // Bad queries, and bodies where none belongs.
  fc.dictionary(fc.oneof(fc.constantFrom('limit', 'pool', 'status', 'cursor'), fc.string({ minLength: 1 })), text).filter((q) => !schemas.ListQuery.safeParse(q).success).map((q) => ({ kind: 'query', method: 'GET', path: `/keys?${new URLSearchParams(q).toString()}` })),
  fc.tuple(fc.constantFrom('/health', '/openapi.json'), text.filter((t) => t.trim() !== '')).map(([path, body]) => ({ kind: 'bodyless', method: 'GET', path, body })),
  fc.tuple(realKey, text.filter((t) => t.trim() !== '')).map(([id, body]) => ({ kind: 'usage-body', method: 'POST', path: `/keys/${id}/usage`, body })),
);

describe('fuzz', () => {
  it(`${REQUESTS} invalid requests across every route: each a 4xx JSON error, no secret in any answer, the table unchanged`, async () => {
    // Prepare
    const before = await snapshot();
    const kinds = new Map<string, number>();
    let sent = 0;
    // Act + Assess (per request)
    await fc.assert(
      fc.asyncProperty(requests, async (r) => {
        const answer = await send(r.method, r.path, r.body);
        sent++;
        kinds.set(`${r.kind} ${answer.status}`, (kinds.get(`${r.kind} ${answer.status}`) ?? 0) + 1);
        expect(answer.status, `${r.kind} ${r.method} ${r.path.slice(0, 80)}`).toBeGreaterThanOrEqual(400);
        expect(answer.status).toBeLessThan(500);
        if (r.method === 'HEAD') return;
        const parsed = JSON.parse(answer.body) as { error?: unknown; message?: unknown };
        expect(typeof parsed.error).toBe('string');
        expect(typeof parsed.message).toBe('string');
        for (const secret of secrets) expect(answer.body.includes(secret)).toBe(false);
      }),
      { numRuns: REQUESTS, endOnFailure: true },
    );
    // Assess (whole run)
    console.info(`fuzz answers ${JSON.stringify(Object.fromEntries([...kinds].sort()))}`);
    expect(sent).toBe(REQUESTS);
    expect(await snapshot()).toBe(before);
  }, FULL ? 1_800_000 : 300_000);

  it('no captured output line of this file contains a secret it used', () => {
    const scan = scanForSecrets();
    expect(scan.secrets).toBe(6);
    expect(scan.chunks).toBeGreaterThan(0);
    expect(scan.hits).toBe(0);
  });
});
