/**
 * The pool rules of issue 10 (and issue 11's first finding) over HTTP, through the real local
 * server on DynamoDB Local: the pool's cap and TTL are the limits, an unknown pool is a 404
 * that publishes no metric, a key or lease of one pool is not found under another, invalid_key
 * makes a key suspect, completions are counted by outcome, a reset never breaks the cap under
 * concurrent leases, Retry-After travels both ways, and expiry is judged from the stored slot,
 * not from the lease id.
 * Each test isolates itself by pool name; the file has one table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES, type StoredKey } from '../../lib/domain/types.js';
import { COMPLETION_METRIC } from '../../lib/observability/metric-names.js';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { type Answer, startTestServer } from '../support/server.js';
import {
  captureEmf,
  expectError,
  type KeyViewBody,
  type LeaseGrantBody,
  poolApi,
  withExpiry,
} from '../support/pool-api.js';

let server: LocalServer;
let table: TestTable;
let api: ReturnType<typeof poolApi>;

beforeAll(async () => {
  table = await createTestTable('rules');
  server = await startTestServer(table.tableName);
  api = poolApi(server.url);
});

afterAll(async () => {
  await server.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A new pool with the given policy and `count` keys; answers the pool's name and its key ids. */
async function poolWith(
  prefix: string,
  count: number,
  settings: Record<string, unknown> = {},
): Promise<{ pool: string; ids: string[] }> {
  const pool = uniqueName(prefix);
  await api.putPool(pool, settings);
  const ids = count === 0 ? [] : (await api.importKeys(pool, count)).keys.map((k) => k.keyId);
  return { pool, ids };
}

/** The key as stored (count, status, cooldownUntil, slots), read consistently from the table. */
async function stored(keyId: string): Promise<StoredKey> {
  const key = await table.store.get(keyId);
  if (!key) throw new Error(`key ${keyId} is not in the table`);
  return key;
}

describe("the pool's cap and lease TTL are the limits", () => {
  it("a lease asking for more than the pool's cap is 400 invalid_request naming the cap, and counts nothing", async () => {
    // Prepare
    const { pool, ids } = await poolWith('cap', 1, { maxUses: 2 });
    // Act
    const answer = await api.lease(pool, { maxUses: 3 });
    const wayAbove = await api.lease(pool, { maxUses: 1000 });
    // Assess
    const body = expectError(answer, 400, 'invalid_request');
    expect(body.message).toMatch(/cap of 2/);
    expect(body.details).toEqual([{ path: 'body.maxUses', message: expect.stringMatching(/at most 2/) as string }]);
    expectError(wayAbove, 400, 'invalid_request');
    expect((await stored(ids[0] ?? '')).usageCount).toBe(0);
  });

  it("a lower cap than the pool's is honoured", async () => {
    // Prepare: the key's count is 2 under a pool cap of 3.
    const { pool, ids } = await poolWith('lower', 1, { maxUses: 3 });
    const keyId = ids[0] ?? '';
    for (let i = 0; i < 2; i++) await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`);
    // Act
    const below = await api.lease(pool, { maxUses: 1 });
    const zero = await api.lease(pool, { maxUses: 0 });
    const at = await api.lease(pool, { maxUses: 2 });
    // Assess
    expectError(below, 409, 'no_usable_key');
    expectError(zero, 409, 'no_usable_key');
    expect(at).toMatchObject({ status: 200, body: { keyId, usageCount: 2 } });
  });

  it("a key at the pool's cap is not leased even when the caller asks nothing", async () => {
    // Prepare: cap 1 means counts 0 and 1 are usable: two uses.
    const { pool, ids } = await poolWith('atcap', 1, { maxUses: 1 });
    // Act
    const counts: number[] = [];
    for (let i = 0; i < 2; i++) {
      const grant = await api.grant(pool);
      counts.push(grant.usageCount);
      expect((await api.complete(pool, grant.leaseId)).status).toBe(200);
    }
    const third = await api.lease(pool);
    const emptyBody = await api.lease(pool, {});
    // Assess
    expect(counts).toEqual([0, 1]);
    expect(expectError(third, 409, 'no_usable_key').message).toMatch(/usageCount <= 1/);
    expectError(emptyBody, 409, 'no_usable_key');
    expect((await stored(ids[0] ?? '')).usageCount).toBe(2);
  });

  it('30 concurrent leases on 2 keys under cap 2 get exactly 6 grants, each count once, and 24 refusals', async () => {
    // Prepare
    const { pool, ids } = await poolWith('burst', 2, { maxUses: 2 });
    // Act
    const answers = await Promise.all(Array.from({ length: 30 }, () => api.lease(pool)));
    // Assess
    const grants = answers.filter((a) => a.status === 200).map((a) => a.body as LeaseGrantBody);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(24);
    expect(grants.map((g) => `${g.keyId}:${g.usageCount}`).sort()).toEqual(
      ids.flatMap((id) => [0, 1, 2].map((n) => `${id}:${n}`)).sort(),
    );
    for (const id of ids) expect((await stored(id)).usageCount).toBe(3);
  });

  it('a pool with cap 0 gives each key exactly one use', async () => {
    // Prepare
    const { pool } = await poolWith('zero', 2, { maxUses: 0 });
    // Act
    const grants = [await api.grant(pool), await api.grant(pool)];
    const third = await api.lease(pool);
    // Assess
    expect(grants.map((g) => g.usageCount)).toEqual([0, 0]);
    expect(new Set(grants.map((g) => g.keyId)).size).toBe(2);
    expectError(third, 409, 'no_usable_key');
  });

  it("a PUT that lowers the cap applies to the next lease (the local server shares the process's policy cache)", async () => {
    // Prepare: the key's count is 2.
    const { pool, ids } = await poolWith('policy', 1, { maxUses: 5 });
    for (let i = 0; i < 2; i++) await api.call('POST', `/pools/${pool}/keys/${ids[0] ?? ''}/usage`);
    // Act
    await api.putPool(pool, { maxUses: 1 });
    const lowered = await api.lease(pool);
    const askOld = await api.lease(pool, { maxUses: 5 });
    await api.putPool(pool, { maxUses: 2 });
    const raised = await api.lease(pool);
    // Assess
    expectError(lowered, 409, 'no_usable_key');
    expect(expectError(askOld, 400, 'invalid_request').message).toMatch(/cap of 1/);
    expect(raised).toMatchObject({ status: 200, body: { usageCount: 2 } });
  });

  it("ttlSeconds above the pool's leaseTtlSeconds is 400 invalid_request naming it; the default TTL is the pool's", async () => {
    // Prepare
    const { pool, ids } = await poolWith('ttl', 1, { leaseTtlSeconds: 30, maxUses: 10 });
    // Act
    const above = await api.lease(pool, { ttlSeconds: 31 });
    const before = Date.now();
    const byDefault = await api.grant(pool);
    const shorter = await api.grant(pool, { ttlSeconds: 10 });
    // Assess
    const body = expectError(above, 400, 'invalid_request');
    expect(body.message).toMatch(/leaseTtlSeconds of 30/);
    expect(body.details?.[0]?.path).toBe('body.ttlSeconds');
    const ttl = Date.parse(byDefault.expiresAt) - before;
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(31_000);
    expect(Date.parse(shorter.expiresAt) - before).toBeLessThanOrEqual(11_000);
    expect((await stored(ids[0] ?? '')).usageCount).toBe(2);
  });
});

describe('an unknown pool', () => {
  it('lease, complete, usage, list and PATCH answer 404 pool_not_found, and no metric names the pool', async () => {
    // Prepare: real ids from an existing pool, used under a pool that does not exist.
    const { pool: real, ids } = await poolWith('real', 1);
    const grant = await api.grant(real);
    const ghost = uniqueName('ghost');
    const keyId = ids[0] ?? '';
    // Act
    const {
      result: answers,
      records,
      text,
    } = await captureEmf(async () => [
      await api.lease(ghost),
      await api.lease(ghost, { maxUses: 1, ttlSeconds: 10 }),
      await api.complete(ghost, grant.leaseId, { outcome: 'failure' }),
      await api.call('POST', `/pools/${ghost}/keys/${keyId}/usage`),
      await api.call('GET', `/pools/${ghost}/keys`),
      await api.call('GET', `/pools/${ghost}/keys?status=active&limit=5`),
      await api.call('PATCH', `/pools/${ghost}/keys/${keyId}`, { status: 'disabled' }),
      await api.call('PATCH', `/pools/${ghost}/keys/${keyId}`, { usageCount: 0 }),
      await api.call('GET', `/pools/${ghost}`),
    ]);
    // Assess
    for (const answer of answers) expectError(answer, 404, 'pool_not_found');
    expect(records.filter((r) => JSON.stringify(r).includes(ghost))).toEqual([]);
    expect(text.split('\n').filter((line) => line.includes('"_aws"') && line.includes(ghost))).toEqual([]);
    expect(await stored(keyId)).toMatchObject({ usageCount: 1, status: 'active' });
    expect((await api.call('GET', `/pools/${ghost}`)).status).toBe(404);
  });

  it('a known pool does publish: LeasesGranted on a grant, NoUsableKey on a refusal (the capture works)', async () => {
    // Prepare
    const { pool } = await poolWith('metric', 1, { maxUses: 0 });
    // Act
    const { result, records } = await captureEmf(async () => [await api.lease(pool), await api.lease(pool)]);
    // Assess
    expect(result.map((a) => a.status)).toEqual([200, 409]);
    const mine = records.filter((r) => r.pool === pool);
    expect(mine.map((r) => ({ granted: r.LeasesGranted, refused: r.NoUsableKey }))).toEqual([
      { granted: 1, refused: undefined },
      { granted: undefined, refused: 1 },
    ]);
  });
});

describe('completions are counted by outcome', () => {
  it("each completion answered publishes one count under its outcome's name, for its pool; a refused one publishes none", async () => {
    // Prepare: one open lease per outcome, each on its own key, and a lease id nobody was granted.
    const { pool } = await poolWith('done', OUTCOMES.length, { maxUses: 10 });
    const grants: LeaseGrantBody[] = [];
    for (const _ of OUTCOMES) grants.push(await api.grant(pool));
    const parts = (grants[0]?.leaseId ?? '').split('.');
    const foreign = [...parts.slice(0, 3), '0123456789abcdef'].join('.');
    // Act
    const { result, records } = await captureEmf(async () => {
      const answers = [];
      for (const [i, outcome] of OUTCOMES.entries())
        answers.push(await api.complete(pool, grants[i]?.leaseId ?? '', { outcome }));
      answers.push(await api.complete(pool, foreign, { outcome: 'failure' }));
      return answers;
    });
    // Assess
    expect(result.map((a) => a.status)).toEqual([...OUTCOMES.map(() => 200), 404]);
    const mine = records.filter((r) => r.pool === pool);
    expect(mine.map(({ _aws, pool: _, ...values }) => values)).toEqual(
      OUTCOMES.map((outcome) => ({ [COMPLETION_METRIC[outcome]]: 1 })),
    );
    for (const record of mine)
      expect(record._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: 'keypool', Dimensions: [['pool']] }] });
  });
});

describe('a key belongs to one pool', () => {
  it("a key id or lease id of pool A under pool B's path is 404 key_not_found / lease_not_found, and the key is unchanged", async () => {
    // Prepare
    const { pool: a, ids } = await poolWith('pa', 1, { maxUses: 5 });
    const { pool: b } = await poolWith('pb', 1, { maxUses: 5 });
    const keyId = ids[0] ?? '';
    const grant = await api.grant(a);
    const before = await stored(keyId);
    // Act
    const answers = {
      complete: await api.complete(b, grant.leaseId, { outcome: 'failure' }),
      invalid: await api.complete(b, grant.leaseId, { outcome: 'invalid_key' }),
      usage: await api.call('POST', `/pools/${b}/keys/${keyId}/usage`),
      disable: await api.call('PATCH', `/pools/${b}/keys/${keyId}`, { status: 'disabled' }),
      reset: await api.call('PATCH', `/pools/${b}/keys/${keyId}`, { usageCount: 0 }),
      both: await api.call('PATCH', `/pools/${b}/keys/${keyId}`, { status: 'active', usageCount: 3 }),
    };
    const after = await stored(keyId);
    const listedInB = await api.listAll(b);
    // Assess
    expectError(answers.complete, 404, 'lease_not_found');
    expectError(answers.invalid, 404, 'lease_not_found');
    expectError(answers.usage, 404, 'key_not_found');
    expectError(answers.disable, 404, 'key_not_found');
    expectError(answers.reset, 404, 'key_not_found');
    expectError(answers.both, 404, 'key_not_found');
    expect(after).toEqual(before);
    expect(after).toMatchObject({ pool: a, usageCount: 1, status: 'active' });
    expect(listedInB.map((k) => k.keyId)).not.toContain(keyId);
    // The lease is still open in its own pool.
    expect(await api.complete(a, grant.leaseId, { outcome: 'success' })).toMatchObject({
      status: 200,
      body: { keyId, usageCount: 1, status: 'active' },
    });
  });
});

describe('no client report takes a key away for good', () => {
  it("invalid_key makes the key suspect by the client: refunded, shown in the list, resting until the pool's maxClientCooldownSeconds", async () => {
    // Prepare
    const { pool, ids } = await poolWith('suspect', 1, { maxClientCooldownSeconds: 120 });
    const keyId = ids[0] ?? '';
    const grant = await api.grant(pool);
    // Act
    const done = await api.complete(pool, grant.leaseId, { outcome: 'invalid_key' });
    const refused = await api.lease(pool);
    const suspects = await api.call('GET', `/pools/${pool}/keys?status=suspect`);
    // Assess
    expect(done).toMatchObject({ status: 200, body: { keyId, usageCount: 0, status: 'suspect' } });
    const body = expectError(refused, 409, 'no_usable_key');
    expect(body.retryAfterSeconds).toBeGreaterThanOrEqual(118);
    expect(body.retryAfterSeconds).toBeLessThanOrEqual(120);
    expect((suspects.body as { keys: KeyViewBody[] }).keys).toMatchObject([
      { keyId, status: 'suspect', usageCount: 0, statusBy: 'client', statusReason: 'invalid_key' },
    ]);
    expect(await api.view(pool, keyId)).toMatchObject({ status: 'suspect' });
    expect((await stored(keyId)).status).toBe('suspect');
  });

  it("an operator brings a suspect key back with PATCH active; an operator's disabled outranks a later invalid_key", async () => {
    // Prepare
    const { pool, ids } = await poolWith('revive', 1, { maxUses: 5 });
    const keyId = ids[0] ?? '';
    await api.complete(pool, (await api.grant(pool)).leaseId, { outcome: 'invalid_key' });
    // Act
    const revived = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'active' });
    const grant = await api.grant(pool);
    await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'disabled' });
    const report = await api.complete(pool, grant.leaseId, { outcome: 'invalid_key' });
    // Assess
    expect(revived).toMatchObject({ status: 200, body: { status: 'active' } });
    expect(report).toMatchObject({ status: 200, body: { keyId, status: 'disabled' } });
    expect((await stored(keyId)).status).toBe('disabled');
  });
});

describe("a caller's report budget", () => {
  it('past maxClientReportsPerMinute a report answers 200 reportIgnored and changes no status; /usage answers 429 report_budget_exceeded and counts nothing; each publishes ClientReportsOverBudget', async () => {
    // Prepare: a budget of 2 a minute; two reports spend it, early in a minute so all fall in one.
    const { pool, ids } = await poolWith('budget', 4, { maxClientReportsPerMinute: 2, maxUses: 10 });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await sleep(60_000 - intoMinute);
    for (let i = 0; i < 2; i++)
      await api.complete(pool, (await api.grant(pool)).leaseId, { outcome: 'rate_limited', retryAfterSeconds: 1 });
    const grant = await api.grant(pool);
    // Act
    const { result, records } = await captureEmf(async () => ({
      report: await api.complete(pool, grant.leaseId, { outcome: 'invalid_key' }),
      usage: await api.call('POST', `/pools/${pool}/keys/${grant.keyId}/usage`),
    }));
    // Assess
    expect(result.report).toMatchObject({
      status: 200,
      body: { keyId: grant.keyId, usageCount: 0, status: 'active', reportIgnored: 'over_budget' },
    });
    const refused = expectError(result.usage, 429, 'report_budget_exceeded');
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(result.usage.headers.get('retry-after')).toBe(String(refused.retryAfterSeconds));
    expect((await stored(grant.keyId)).usageCount).toBe(0);
    expect(ids).toContain(grant.keyId);
    const overBudget = records.filter((r) => r.pool === pool && r.ClientReportsOverBudget === 1);
    expect(overBudget).toHaveLength(2);
  });
});

describe("the operator's reset", () => {
  it('under a concurrent lease loop never breaks the cap: every grant <= maxUses, the stored count <= maxUses + 1, nothing 500s', async () => {
    // Prepare: 2 keys, cap 2, three lease loops: the cap binds (some 409s) while resets land.
    const MAX = 2;
    const { pool, ids } = await poolWith('race', 2, { maxUses: MAX });
    const grants: number[] = [];
    const statuses = new Map<string, number>();
    const seenCounts: number[] = [];
    const note = (what: string, answer: Answer): void => {
      statuses.set(`${what} ${answer.status}`, (statuses.get(`${what} ${answer.status}`) ?? 0) + 1);
    };
    let leasing = true;
    const leaseLoop = async (): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const answer = await api.lease(pool);
        note('lease', answer);
        if (answer.status !== 200) continue;
        const grant = answer.body as LeaseGrantBody;
        grants.push(grant.usageCount);
        note('complete', await api.complete(pool, grant.leaseId, { outcome: 'success' }));
      }
    };
    const resetLoop = async (): Promise<void> => {
      while (leasing) {
        for (const keyId of ids) {
          note('reset', await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount: 0 }));
          seenCounts.push((await stored(keyId)).usageCount);
        }
      }
    };
    // Act
    const resets = resetLoop();
    await Promise.all([leaseLoop(), leaseLoop(), leaseLoop()]);
    leasing = false;
    await resets;
    const final = await Promise.all(ids.map((id) => stored(id)));
    // Assess
    const byCount = grants.reduce<Record<number, number>>(
      (all, count) => ({ ...all, [count]: (all[count] ?? 0) + 1 }),
      {},
    );
    console.info(
      `reset race: grants by count ${JSON.stringify(byCount)}, ${seenCounts.length} count samples, answers ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect(grants.length).toBeGreaterThan(60);
    expect(Math.max(...grants)).toBeLessThanOrEqual(MAX);
    expect(Math.max(...seenCounts, ...final.map((k) => k.usageCount))).toBeLessThanOrEqual(MAX + 1);
    expect([...statuses.keys()].filter((k) => k.endsWith(' 500'))).toEqual([]);
    // A completion after a reset of its key answers 404: the reset ended that lease.
    expect([...statuses.keys()].every((k) => /^(lease (200|409)|complete (200|404)|reset 200)$/.test(k))).toBe(true);
    expect(statuses.get('reset 200') ?? 0).toBeGreaterThan(0);
  });
});

describe('a reset and an open lease', () => {
  it.each(['failure', 'rate_limited', 'invalid_key', 'out_of_credits'])(
    'a reset ends the open lease: completing it with %s answers lease_not_found and changes nothing, so the key serves exactly maxUses + 1 uses from the reset count',
    async (outcome) => {
      // Prepare: cap 1; a lease counts a use, then the operator resets the count to 0.
      const { pool, ids } = await poolWith('refund', 1, { maxUses: 1, cooldownSeconds: 1 });
      const keyId = ids[0] ?? '';
      const grant = await api.grant(pool);
      expect((await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount: 0 })).status).toBe(200);
      // Act
      const done = await api.complete(pool, grant.leaseId, { outcome });
      const after = await stored(keyId);
      // Assess
      expect(done).toMatchObject({ status: 404, body: { error: 'lease_not_found' } });
      expect(after).toMatchObject({ usageCount: 0, status: 'active' });
      // From count 0 under cap 1 the key serves exactly two more uses.
      const uses: number[] = [];
      for (let answer = await api.lease(pool); answer.status === 200; answer = await api.lease(pool))
        uses.push((answer.body as LeaseGrantBody).usageCount);
      expect(uses).toEqual([0, 1]);
    },
  );
});

describe('Retry-After, both ways', () => {
  it.each([
    {
      given: 'with retryAfterSeconds 600',
      report: { retryAfterSeconds: 600 },
      policy: { maxClientCooldownSeconds: 3600 },
      seconds: 600,
    },
    {
      given: "with retryAfterSeconds 3600: at most the pool's maxClientCooldownSeconds (300)",
      report: { retryAfterSeconds: 3600 },
      policy: {},
      seconds: 300,
    },
    {
      given: "without retryAfterSeconds: the pool's cooldownSeconds (120)",
      report: {},
      policy: { cooldownSeconds: 120 },
      seconds: 120,
    },
  ])(
    'rate_limited $given cools the key until now + that; the 409 says so in its body and a Retry-After header',
    async ({ report, policy, seconds }) => {
      // Prepare
      const { pool, ids } = await poolWith('ra', 1, policy);
      const keyId = ids[0] ?? '';
      const grant = await api.grant(pool);
      // Act
      const t0 = Date.now();
      const done = await api.complete(pool, grant.leaseId, { outcome: 'rate_limited', ...report });
      const t1 = Date.now();
      const refused = await api.lease(pool);
      // Assess
      expect(done).toMatchObject({ status: 200, body: { keyId, usageCount: 0, status: 'cooling' } });
      const until = (await stored(keyId)).cooldownUntil ?? 0;
      expect(until).toBeGreaterThanOrEqual(t0 + seconds * 1000);
      expect(until).toBeLessThanOrEqual(t1 + seconds * 1000);
      const body = expectError(refused, 409, 'no_usable_key');
      expect(body.retryAfterSeconds).toBeGreaterThanOrEqual(seconds - 2);
      expect(body.retryAfterSeconds).toBeLessThanOrEqual(seconds);
      expect(refused.headers.get('retry-after')).toBe(String(body.retryAfterSeconds));
    },
  );

  it('a second report with a shorter value (or none) never shortens the cooldown; a longer one extends it', async () => {
    // Prepare: one key, four leases open on it at once (four slots).
    const { pool, ids } = await poolWith('max', 1, {
      maxUses: 10,
      cooldownSeconds: 60,
      maxClientCooldownSeconds: 3600,
    });
    const keyId = ids[0] ?? '';
    const [a, b, c, d] = [await api.grant(pool), await api.grant(pool), await api.grant(pool), await api.grant(pool)];
    const t0 = Date.now();
    await api.complete(pool, a.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 600 });
    const first = (await stored(keyId)).cooldownUntil ?? 0;
    // Act
    const shorter = await api.complete(pool, b.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 5 });
    const afterShorter = (await stored(keyId)).cooldownUntil;
    const byPool = await api.complete(pool, c.leaseId, { outcome: 'rate_limited' });
    const afterPool = (await stored(keyId)).cooldownUntil;
    const t1 = Date.now();
    const longer = await api.complete(pool, d.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 900 });
    const t2 = Date.now();
    const afterLonger = (await stored(keyId)).cooldownUntil ?? 0;
    // Assess: every report recorded and refunded; the cooldown only ever grew.
    expect(first).toBeGreaterThanOrEqual(t0 + 600_000);
    expect(shorter).toMatchObject({ status: 200, body: { status: 'cooling' } });
    expect(byPool).toMatchObject({ status: 200, body: { status: 'cooling' } });
    expect(afterShorter).toBe(first);
    expect(afterPool).toBe(first);
    expect(longer).toMatchObject({ status: 200, body: { usageCount: 0, status: 'cooling' } });
    expect(afterLonger).toBeGreaterThanOrEqual(t1 + 900_000);
    expect(afterLonger).toBeLessThanOrEqual(t2 + 900_000);
    const key = await stored(keyId);
    expect(key.usageCount).toBe(0);
    expect(Object.values(key.slots).map((s) => s.outcome)).toEqual([
      'rate_limited',
      'rate_limited',
      'rate_limited',
      'rate_limited',
    ]);
  });

  it('a dry pool answers with the earliest return among its cooling keys; without a cooling key, neither body field nor header', async () => {
    // Prepare: one key cooling 300 s, one 100 s, one at the cap (not cooling).
    const { pool, ids } = await poolWith('dry', 3, { maxUses: 0 });
    const grants = [await api.grant(pool), await api.grant(pool), await api.grant(pool)];
    await api.complete(pool, grants[0]?.leaseId ?? '', { outcome: 'rate_limited', retryAfterSeconds: 300 });
    await api.complete(pool, grants[1]?.leaseId ?? '', { outcome: 'rate_limited', retryAfterSeconds: 100 });
    await api.complete(pool, grants[2]?.leaseId ?? '', { outcome: 'success' });
    const { pool: capped } = await poolWith('capped', 1, { maxUses: 0 });
    await api.grant(capped);
    // Act
    const cooling = await api.lease(pool);
    const notCooling = await api.lease(capped);
    // Assess
    expect(ids).toHaveLength(3);
    const body = expectError(cooling, 409, 'no_usable_key');
    expect(body.retryAfterSeconds).toBeGreaterThanOrEqual(98);
    expect(body.retryAfterSeconds).toBeLessThanOrEqual(100);
    expect(cooling.headers.get('retry-after')).toBe(String(body.retryAfterSeconds));
    const plain = expectError(notCooling, 409, 'no_usable_key');
    expect(plain).not.toHaveProperty('retryAfterSeconds');
    expect(notCooling.headers.get('retry-after')).toBeNull();
  });

  it('a cooled key comes back by itself once its cooldown has passed', async () => {
    // Prepare
    const { pool, ids } = await poolWith('back', 1, { cooldownSeconds: 1 });
    await api.complete(pool, (await api.grant(pool)).leaseId, { outcome: 'rate_limited' });
    const refused = await api.lease(pool);
    // Act
    await sleep(1_100);
    const again = await api.lease(pool);
    // Assess
    expect(expectError(refused, 409, 'no_usable_key').retryAfterSeconds).toBe(1);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(again).toMatchObject({ status: 200, body: { keyId: ids[0] } });
  });
});

describe('expiry is judged from the stored slot, not from the lease id (issue 11, finding 1)', () => {
  it('an expired lease whose id is rewritten to a future expiry answers 410 lease_expired, and the count stays', async () => {
    // Prepare
    const { pool, ids } = await poolWith('exp', 1);
    const keyId = ids[0] ?? '';
    const grant = await api.grant(pool, { ttlSeconds: 1 });
    await sleep(1_200);
    const forged = withExpiry(grant.leaseId, Date.now() + 3_600_000);
    // Act
    const original = await api.complete(pool, grant.leaseId, { outcome: 'failure' });
    const rewritten = await api.complete(pool, forged, { outcome: 'failure' });
    const rewrittenInvalid = await api.complete(pool, forged, { outcome: 'invalid_key' });
    // Assess
    expect(forged).not.toBe(grant.leaseId);
    expectError(original, 410, 'lease_expired');
    expectError(rewritten, 410, 'lease_expired');
    expectError(rewrittenInvalid, 410, 'lease_expired');
    const key = await stored(keyId);
    expect(key).toMatchObject({ usageCount: 1, status: 'active' });
    expect(Object.values(key.slots).every((slot) => slot.outcome === undefined)).toBe(true);
    expect(await api.view(pool, keyId)).toMatchObject({ usageCount: 1, status: 'active' });
  });

  it('an open lease whose id is rewritten to a past expiry still completes: the stored slot is in time', async () => {
    // Prepare
    const { pool, ids } = await poolWith('exp2', 1);
    const grant = await api.grant(pool, { ttlSeconds: 60 });
    const backdated = withExpiry(grant.leaseId, Date.now() - 60_000);
    // Act
    const done = await api.complete(pool, backdated, { outcome: 'failure' });
    // Assess
    expect(done).toMatchObject({ status: 200, body: { keyId: ids[0], usageCount: 0, status: 'active' } });
  });

  it('a lease id with another nonce is not found', async () => {
    // Prepare
    const { pool } = await poolWith('nonce', 1);
    const grant = await api.grant(pool);
    const parts = grant.leaseId.split('.');
    const other = [...parts.slice(0, 3), '0123456789abcdef'].join('.');
    // Act
    const answer = await api.complete(pool, other, { outcome: 'failure' });
    // Assess
    expectError(answer, 404, 'lease_not_found');
    expect(await api.complete(pool, grant.leaseId)).toMatchObject({ status: 200, body: { usageCount: 1 } });
  });
});
