/**
 * Maintenance against DynamoDB Local and the fake provider: every balance answer and the
 * status change it makes, top-up, 429 back-off, the request rate, and a run concurrent with
 * leases and completions.
 */
import { createServer } from 'node:http';
import { GetCommand, UpdateCommand } from '../../lib/adapters/dynamo-wire.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBalanceStore } from '../../lib/adapters/dynamo-balance-store.js';
import { StabilityClient } from '../../lib/adapters/stability-client.js';
import type { BalanceProvider } from '../../lib/ports/balance-provider.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { NoUsableKey, PoolNotFound } from '../../lib/domain/errors.js';
import type { Outcome, PoolSettings } from '../../lib/domain/types.js';
import { maintain, type MaintenanceOptions } from '../../lib/use-cases/maintenance/maintain.js';
import { shardOf } from '../../lib/domain/shards.js';
import { TABLE, USAGE_TIER, usagePartition } from '../../lib/table.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { MemoryMaintenanceRunStore } from '../support/memory-maintenance-runs.js';
import { testSealer } from '../support/sealing.js';

let table: TestTable;
let provider: FakeProvider;
let balances: DynamoBalanceStore;
/** Where every run of this file leaves its record. */
const runs = new MemoryMaintenanceRunStore();

beforeAll(async () => {
  table = await createTestTable('maintain');
  provider = await startFakeProvider();
  balances = new DynamoBalanceStore({ client: table.store.client, tableName: table.tableName });
});

afterAll(async () => {
  await provider.close();
});

function run(pool: string, options: Partial<MaintenanceOptions> = {}, timeoutMs = 10_000) {
  const client = new StabilityClient({ baseUrl: provider.url, timeoutMs });
  return maintain(
    { pools: table.pools, keys: table.store, sealer: testSealer(), balances, provider: client, runs },
    { pool, rate: 10, concurrency: 4, ...options },
  );
}

/**
 * Imports keys into a new pool (minCredits 3, provider stability, a cap high enough that a
 * caller leases whichever key is usable) and registers them with the fake provider.
 */
async function seed(
  pool: string,
  specs: { credits?: number; unknown?: boolean }[],
  settings: Partial<PoolSettings> = {},
): Promise<{ keyId: string; apiKey: string }[]> {
  const secrets = specs.map((_, i) => fakeKey(`${i}-`));
  const broker = table.broker();
  await broker.setPool(pool, { maxUses: 1000, minCredits: 3, ...settings });
  const result = await broker.importKeys(
    pool,
    secrets.map((apiKey) => ({ apiKey })),
  );
  specs.forEach((spec, i) => {
    if (!spec.unknown) provider.setKey(secrets[i] ?? '', { credits: spec.credits ?? 100 });
  });
  return result.keys.map((k, i) => ({ keyId: k.keyId, apiKey: secrets[i] ?? '' }));
}

/** A new pool of `count` keys with 50 credits each, and each key's id by its secret (as the provider sees requests). */
async function creditedPool(prefix: string, count: number) {
  const pool = uniqueName(prefix);
  const keys = await seed(
    pool,
    Array.from({ length: count }, () => ({ credits: 50 })),
  );
  return { pool, keys, keyIdOf: new Map(keys.map((k) => [k.apiKey, k.keyId])) };
}

async function rawItem(keyId: string): Promise<Record<string, unknown> | undefined> {
  const out = await table.store.client.send(
    new GetCommand({ TableName: table.tableName, Key: { [TABLE.partitionKey]: keyId }, ConsistentRead: true }),
  );
  return out.Item;
}

async function view(keyId: string) {
  const key = await table.store.get(keyId);
  if (!key) throw new Error(`no key ${keyId}`);
  return key;
}

/** Leases the given key (it must be the only usable one) and completes it with `outcome`. */
async function reportOutcome(pool: string, outcome: Outcome): Promise<void> {
  const broker = table.broker();
  const grant = await broker.lease(pool);
  await broker.complete(pool, grant.leaseId, { outcome });
}

describe('maintenance: each balance answer and its status change', () => {
  it('records balances, exhausts below the minimum, revives a topped-up exhausted key, disables on 401, leaves 5xx and timeouts alone, skips disabled keys', async () => {
    // Prepare
    const pool = uniqueName('answers');
    const [rich, poor, invalid, broken, slow, revived, stillPoor, disabled] = await seed(pool, [
      { credits: 50.5 },
      { credits: 2.9 },
      { unknown: true },
      { credits: 100 },
      { credits: 100 },
      { credits: 10 },
      { credits: 1 },
      { credits: 100 },
    ]);
    if (!rich || !poor || !invalid || !broken || !slow || !revived || !stillPoor || !disabled) throw new Error('seed');
    provider.setKey(broken.apiKey, { balanceStatus: 500 });
    provider.setKey(slow.apiKey, { delayMs: 1500 });
    // Callers report `revived` and `stillPoor` out of credits (the others are set aside so the
    // leases land on those two); `disabled` stays disabled by the operator.
    const others = [rich, poor, invalid, broken, slow];
    for (const other of [...others, disabled])
      await table.broker().updateKey(pool, other.keyId, { status: 'disabled' });
    await reportOutcome(pool, 'out_of_credits');
    await reportOutcome(pool, 'out_of_credits');
    for (const other of others) await table.broker().updateKey(pool, other.keyId, { status: 'active' });
    expect((await view(revived.keyId)).status).toBe('exhausted');
    expect((await view(stillPoor.keyId)).status).toBe('exhausted');
    const before = provider.requests.length;
    // Act
    const report = await run(pool, {}, 300);
    // Assess
    expect(report.summary).toEqual({
      checked: 7,
      active: 4, // rich, broken, slow, revived
      exhausted: 2, // poor, stillPoor
      disabled: 2, // invalid, disabled
      cooling: 0,
      suspect: 0,
      undecryptable: 0,
      errors: expect.arrayContaining([
        { keyId: broken.keyId, reason: 'provider answered 500 server_error' },
        { keyId: slow.keyId, reason: 'timeout after 300 ms' },
      ]) as unknown,
      // One refusal among the run's answers: applied, the breaker stays closed.
      providerAuthBreaker: expect.objectContaining({ open: false, refusals: 1 }) as unknown,
    });
    expect(report.summary.errors).toHaveLength(2);
    expect(await view(rich.keyId)).toMatchObject({ status: 'active', credits: 50.5 });
    expect(await view(poor.keyId)).toMatchObject({ status: 'exhausted', credits: 2.9 });
    expect(await view(invalid.keyId)).toMatchObject({ status: 'disabled' });
    expect((await view(invalid.keyId)).credits).toBeUndefined();
    expect(await view(broken.keyId)).toMatchObject({ status: 'active' });
    expect((await view(broken.keyId)).creditsCheckedAt).toBeUndefined();
    expect((await view(slow.keyId)).creditsCheckedAt).toBeUndefined();
    expect(await view(revived.keyId)).toMatchObject({ status: 'active', credits: 10 });
    expect(await view(stillPoor.keyId)).toMatchObject({ status: 'exhausted', credits: 1 });
    expect(await view(disabled.keyId)).toMatchObject({ status: 'disabled' });
    // The sparse index holds exactly the leasable keys; counts and sort keys are untouched.
    expect((await rawItem(poor.keyId))?.[TABLE.usageIndex.partitionKey]).toBeUndefined();
    expect((await rawItem(invalid.keyId))?.[TABLE.usageIndex.partitionKey]).toBeUndefined();
    expect((await rawItem(revived.keyId))?.[TABLE.usageIndex.partitionKey]).toBe(pool);
    const asked = provider.requests.slice(before).map((r) => r.apiKey);
    expect(asked).not.toContain(disabled.apiKey);
    expect(new Set(asked).size).toBe(asked.length); // each key asked once
    expect(JSON.stringify(report)).not.toMatch(/sk-test-/);
    const usable = report.pools.find((p) => p.pool === pool);
    expect(usable).toMatchObject({ usable: 4, exhausted: 2, disabled: 2, cooling: 0, balanceErrors: 2 });
    // The run's record: poor exhausted, invalid disabled, revived active again; the two errors.
    expect(runs.runs.at(-1)).toMatchObject({ pool, checked: 7, changed: 3, errors: 2 });
    expect(runs.runs.at(-1)?.firstErrors).toHaveLength(2);
  });

  it('a topped-up key comes back: exhausted on one run, active and leasable again on the next', async () => {
    // Prepare
    const pool = uniqueName('topup');
    const [key] = await seed(pool, [{ credits: 1 }]);
    if (!key) throw new Error('seed');
    const broker = table.broker();
    await run(pool);
    await expect(broker.lease(pool)).rejects.toBeInstanceOf(NoUsableKey);
    // Act
    provider.setKey(key.apiKey, { credits: 3 });
    const report = await run(pool);
    // Assess
    expect(report.summary).toEqual({
      checked: 1,
      active: 1,
      exhausted: 0,
      disabled: 0,
      cooling: 0,
      suspect: 0,
      undecryptable: 0,
      errors: [],
      providerAuthBreaker: { open: false, refusals: 0, answers: 1 },
    });
    await expect(broker.lease(pool)).resolves.toMatchObject({ keyId: key.keyId });
  });

  it('a cooling key with too few credits becomes exhausted; a cooling key with credits stays cooling', async () => {
    // Prepare
    const pool = uniqueName('cool');
    const keys = await seed(pool, [{ credits: 0 }, { credits: 40 }], { cooldownSeconds: 600 });
    const broker = table.broker();
    for (let i = 0; i < 2; i++)
      await broker.complete(pool, (await broker.lease(pool)).leaseId, { outcome: 'rate_limited' });
    // Act
    const report = await run(pool);
    // Assess
    expect(report.summary).toMatchObject({ checked: 2, active: 0, cooling: 1, exhausted: 1, errors: [] });
    expect(await view(keys[0]?.keyId ?? '')).toMatchObject({ status: 'exhausted', credits: 0 });
    expect(await view(keys[1]?.keyId ?? '')).toMatchObject({ status: 'cooling', credits: 40 });
  });
});

describe('maintenance: which keys a short run checks', () => {
  it('three runs each allowed 5 checks cover 15 distinct keys, least recently checked first; a fourth starts again from the oldest', async () => {
    // Prepare
    const { pool, keys, keyIdOf } = await creditedPool('sweep', 15);
    const checkedBy = async (maxChecks: number): Promise<{ checked: number; keyIds: string[] }> => {
      const start = provider.requests.length;
      const report = await run(pool, { maxChecks });
      return {
        checked: report.summary.checked,
        keyIds: provider.requests.slice(start).map((r) => keyIdOf.get(r.apiKey ?? '') ?? 'unknown'),
      };
    };
    // Act
    const first = await checkedBy(5);
    const second = await checkedBy(5);
    const third = await checkedBy(5);
    const fourth = await checkedBy(5);
    // Assess: no run asks more than it may, and none asks a key twice.
    for (const r of [first, second, third, fourth]) {
      expect(r.checked).toBe(5);
      expect(new Set(r.keyIds).size).toBe(5);
    }
    // Three runs reach every key of the pool, not the same head of the scan three times.
    expect(new Set([...first.keyIds, ...second.keyIds, ...third.keyIds])).toEqual(new Set(keys.map((k) => k.keyId)));
    for (const k of keys) expect((await view(k.keyId)).creditsCheckedAt, k.keyId).toBeDefined();
    // Every key has been checked now: the fourth run takes the five checked longest ago.
    expect(new Set(fourth.keyIds)).toEqual(new Set(first.keyIds));
  });
});

describe('maintenance: a run against its deadline', () => {
  it('starts no request past its deadline (an injected clock), records and reports what it did, and the next run goes on with the keys checked longest ago', async () => {
    // Prepare: 12 keys; a clock that moves only while the pacer waits, so each run of 1 s at
    // 5 requests/s (one start every 202 ms) starts exactly 5 requests.
    const { pool, keys, keyIdOf } = await creditedPool('deadline', 12);
    let now = Date.parse('2026-12-07T10:00:00.000Z');
    const client = new StabilityClient({ baseUrl: provider.url });
    const timedRun = async () => {
      const start = provider.requests.length;
      const recorded = runs.runs.length;
      const report = await maintain(
        {
          pools: table.pools,
          keys: table.store,
          sealer: testSealer(),
          balances,
          provider: client,
          runs,
          clock: () => now,
          sleep: (ms) => {
            now += ms;
            return Promise.resolve();
          },
        },
        { pool, rate: 5, concurrency: 4, deadlineMs: now + 1_000 },
      );
      now += 60_000;
      return {
        report,
        record: runs.runs.slice(recorded),
        asked: provider.requests.slice(start).map((r) => keyIdOf.get(r.apiKey ?? '') ?? 'unknown'),
      };
    };
    // Act
    const first = await timedRun();
    const checkedAt = new Map(
      await Promise.all(first.asked.map(async (keyId) => [keyId, (await view(keyId)).creditsCheckedAt ?? ''] as const)),
    );
    const second = await timedRun();
    const third = await timedRun();
    // Assess: each run asks 5 keys, reports the other 7 as not checked, and leaves its record.
    for (const { report, record, asked } of [first, second, third]) {
      expect(asked).toHaveLength(5);
      expect(report.summary).toMatchObject({ checked: 5, active: 12 });
      expect(report.summary.errors).toHaveLength(7);
      for (const error of report.summary.errors) expect(error.reason).toBe('not checked: the run reached its deadline');
      expect(record).toMatchObject([{ pool, checked: 5, errors: 7 }]);
    }
    // The second run takes 5 keys the first did not; the third the 2 left, then the 3 checked longest ago.
    expect(second.asked.filter((keyId) => first.asked.includes(keyId))).toEqual([]);
    const left = keys
      .map((k) => k.keyId)
      .filter((keyId) => !first.asked.includes(keyId) && !second.asked.includes(keyId));
    expect(left).toHaveLength(2);
    // In check order: the earliest check first, then the key id in code-unit order.
    const place = (keyId: string): string => `${checkedAt.get(keyId) ?? ''} ${keyId}`;
    const oldest = [...first.asked].sort((a, b) => (place(a) < place(b) ? -1 : 1));
    expect(new Set(third.asked)).toEqual(new Set([...left, ...oldest.slice(0, 3)]));
  });
});

describe('maintenance: what the provider client refuses', () => {
  it('a 302 from the balance endpoint is not followed: the key keeps its status and credits, and the run reports it', async () => {
    // Prepare: an exhausted key, and elsewhere a server that would revive it with 99 credits.
    const pool = uniqueName('redirect');
    const [key] = await seed(pool, [{ credits: 1 }]);
    if (!key) throw new Error('seed');
    await run(pool);
    const elsewhere: string[] = [];
    const lure = createServer((request, response) => {
      elsewhere.push(request.url ?? '');
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"credits":99}');
    });
    await new Promise<void>((done) => lure.listen(0, '127.0.0.1', () => done()));
    const address = lure.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    provider.setKey(key.apiKey, { balanceRedirect: `http://127.0.0.1:${port}/v1/user/balance` });
    try {
      // Act
      const report = await run(pool);
      // Assess
      expect(report.summary).toMatchObject({
        checked: 1,
        active: 0,
        exhausted: 1,
        errors: [{ keyId: key.keyId, reason: 'provider answered 302 (redirects are refused)' }],
      });
      expect(elsewhere).toEqual([]);
      expect(await view(key.keyId)).toMatchObject({ status: 'exhausted', credits: 1 });
    } finally {
      provider.setKey(key.apiKey, { balanceRedirect: undefined });
      lure.closeAllConnections();
      await new Promise((done) => lure.close(done));
    }
  });

  it('an oversized balance answer is abandoned past the cap: the key keeps its status and credits, and the run reports it', async () => {
    // Prepare: an exhausted key whose provider now streams 8 MiB that would revive it.
    const pool = uniqueName('huge');
    const [key] = await seed(pool, [{ credits: 1 }]);
    if (!key) throw new Error('seed');
    await run(pool);
    provider.setKey(key.apiKey, { credits: 99, balanceBodyBytes: 8 * 1024 * 1024 });
    try {
      // Act
      const report = await run(pool);
      // Assess
      expect(report.summary).toMatchObject({
        checked: 1,
        exhausted: 1,
        errors: [{ keyId: key.keyId, reason: 'provider answer too large (over 65536 bytes)' }],
      });
      expect(await view(key.keyId)).toMatchObject({ status: 'exhausted', credits: 1 });
    } finally {
      provider.setKey(key.apiKey, { balanceBodyBytes: undefined });
    }
  });
});

describe('maintenance: rate and back-off', () => {
  it('the provider never sees more balance requests per second than the configured rate', async () => {
    // Prepare
    const pool = uniqueName('rate');
    await seed(
      pool,
      Array.from({ length: 12 }, () => ({ credits: 50 })),
    );
    const start = provider.requests.length;
    // Act
    const began = Date.now();
    const report = await run(pool, { rate: 5, concurrency: 4 });
    const took = Date.now() - began;
    // Assess
    const most = provider.maxInWindow(1000, '/v1/user/balance', start);
    expect(report.summary.checked).toBe(12);
    expect(most).toBeLessThanOrEqual(5);
    expect(most).toBeGreaterThanOrEqual(4); // paced, not serialised into a crawl
    expect(took).toBeGreaterThanOrEqual(11 * 200);
  });

  it('429: the key is left unchanged and reported, never asked again in the run, and the run rate halves each time', async () => {
    // Prepare
    const pool = uniqueName('throttle');
    const keys = await seed(
      pool,
      Array.from({ length: 6 }, () => ({ credits: 50 })),
    );
    const start = provider.requests.length;
    // Stability: more than `max` requests in the window, then 429 for a long timeout.
    provider.rateLimit = { max: provider.requests.length + 3, windowMs: 600_000, timeoutMs: 60_000 };
    try {
      // Act
      const began = Date.now();
      const report = await run(pool, { rate: 10, concurrency: 1 });
      const took = Date.now() - began;
      // Assess
      const seen = provider.requests.slice(start);
      expect(seen).toHaveLength(6);
      expect(new Set(seen.map((r) => r.apiKey)).size).toBe(6);
      expect(seen.filter((r) => r.status === 429)).toHaveLength(3);
      expect(report.summary.checked).toBe(6);
      expect(report.summary.active).toBe(6);
      expect(report.summary.errors).toHaveLength(3);
      expect(report.summary.errors[0]?.reason).toMatch(/^rate limited \(429\)/);
      const limited = new Set(report.summary.errors.map((e) => e.keyId));
      for (const key of keys.filter((k) => limited.has(k.keyId))) {
        expect((await view(key.keyId)).creditsCheckedAt).toBeUndefined();
      }
      // Gaps: ~100 ms before the first 429, then ~200, ~400: each 429 halves the rate.
      const gaps = seen.slice(1).map((r, i) => r.at - (seen[i]?.at ?? 0));
      expect(gaps[3]).toBeGreaterThanOrEqual(195);
      expect(gaps[4]).toBeGreaterThanOrEqual(395);
      expect(took).toBeLessThan(5_000); // finishes: never waits out the provider's 60 s timeout
    } finally {
      provider.rateLimit = undefined;
    }
  });
});

describe('maintenance under concurrency', () => {
  it('a run concurrent with leases and completions loses no count, undoes no status and keeps the index consistent', async () => {
    // Prepare: a consistent world. Keys with credits serve; poor keys are reported
    // out_of_credits by callers; unknown keys are reported invalid_key.
    const pool = uniqueName('race');
    const specs = [
      ...Array.from({ length: 8 }, () => ({ credits: 100 })),
      ...Array.from({ length: 4 }, () => ({ credits: 1 })),
      ...Array.from({ length: 3 }, () => ({ unknown: true })),
    ];
    const keys = await seed(pool, specs);
    const poor = new Set(keys.slice(8, 12).map((k) => k.keyId));
    const invalid = new Set(keys.slice(12).map((k) => k.keyId));
    const successes = new Map<string, number>();
    const broker = table.broker();
    let stop = false;
    const caller = async (): Promise<void> => {
      let n = 0;
      while (!stop) {
        let grant;
        try {
          grant = await broker.lease(pool);
        } catch (error) {
          if (error instanceof NoUsableKey) return;
          throw error;
        }
        const outcome: Outcome = invalid.has(grant.keyId)
          ? 'invalid_key'
          : poor.has(grant.keyId)
            ? 'out_of_credits'
            : n++ % 5 === 4
              ? 'failure'
              : 'success';
        await broker.complete(pool, grant.leaseId, { outcome });
        if (outcome === 'success') successes.set(grant.keyId, (successes.get(grant.keyId) ?? 0) + 1);
      }
    };
    // Act
    const callers = Array.from({ length: 6 }, caller);
    const report = await run(pool, { rate: 10, concurrency: 4 });
    stop = true;
    await Promise.all(callers);
    // Assess
    expect(report.summary.checked).toBe(15);
    const states = await mapLimit(keys, 8, async (k) => ({ key: await view(k.keyId), item: await rawItem(k.keyId) }));
    let total = 0;
    for (const { key, item } of states) {
      // No count lost or doubled: the count is exactly the successes callers saw.
      expect(key.usageCount).toBe(successes.get(key.keyId) ?? 0);
      total += key.usageCount;
      expect(Math.floor(Number(item?.usk) / USAGE_TIER)).toBe(key.usageCount);
      // No status undone: each ends where its truth puts it, whoever wrote last.
      const expected = invalid.has(key.keyId) ? 'disabled' : poor.has(key.keyId) ? 'exhausted' : 'active';
      expect(key.status).toBe(expected);
      expect(item?.[TABLE.usageIndex.partitionKey]).toBe(expected === 'active' ? pool : undefined);
      // No lease slot left open.
      expect(Object.values(key.slots).every((slot) => slot.outcome !== undefined)).toBe(true);
    }
    expect(total).toBeGreaterThan(20);
  });
});

describe("maintenance: the provider's verdicts, only in its documented shape", () => {
  it('a WAF page in place of every balance (403 text/html) changes no key: each is reported provider_unavailable', async () => {
    // Prepare
    const pool = uniqueName('waf');
    const keys = await seed(
      pool,
      Array.from({ length: 6 }, () => ({ credits: 50 })),
    );
    provider.balancePage = { status: 403, contentType: 'text/html', body: '<html>Access denied (WAF)</html>' };
    // Act
    const report = await run(pool).finally(() => (provider.balancePage = undefined));
    // Assess
    expect(report.summary).toMatchObject({ checked: 6, active: 6, disabled: 0 });
    expect(report.summary.errors.map((e) => e.reason)).toEqual(
      Array.from({ length: 6 }, () => 'provider answered 403 outside its documented error shape'),
    );
    for (const key of keys) expect(await view(key.keyId)).toMatchObject({ status: 'active' });
  });

  it("a gateway's own JSON 401 (a name and a message, no error id) does not confirm a suspect key: it stays suspect", async () => {
    // Prepare: the first key imported, the one a lease takes first, reported invalid by a caller;
    // five more the provider knows (the breaker stays closed: only the answer's shape decides).
    const pool = uniqueName('gateway-json');
    const [suspect] = await seed(
      pool,
      Array.from({ length: 6 }, () => ({ credits: 50 })),
    );
    if (!suspect) throw new Error('seed');
    const grant = await table.broker().lease(pool);
    await table.broker().complete(pool, grant.leaseId, { outcome: 'invalid_key' });
    expect(grant.keyId).toBe(suspect.keyId);
    // An authorization middleware in front of the provider answers for this key (express-jwt's
    // UnauthorizedError, serialized).
    const body = JSON.stringify({
      name: 'UnauthorizedError',
      message: 'No authorization token was found',
      code: 'credentials_required',
      status: 401,
    });
    provider.setKey(suspect.apiKey, { balancePage: { status: 401, contentType: 'application/json', body } });
    // Act
    const report = await run(pool);
    // Assess
    expect(report.summary).toMatchObject({ checked: 6, active: 5, disabled: 0, suspect: 1 });
    expect(report.summary.providerAuthBreaker).toMatchObject({ open: false, refusals: 0 });
    expect(report.summary.errors).toEqual([
      { keyId: suspect.keyId, reason: 'provider answered 401 outside its documented error shape' },
    ]);
    expect(await view(suspect.keyId)).toMatchObject({ status: 'suspect', statusBy: 'client' });
  });

  it('when most answers of a run are documented 401/403 (at least 5), the breaker opens and no key is disabled', async () => {
    // Prepare: six keys the provider refuses (documented 401), two it knows.
    const pool = uniqueName('breaker');
    const keys = await seed(pool, [
      ...Array.from({ length: 6 }, () => ({ unknown: true })),
      { credits: 50 },
      { credits: 50 },
    ]);
    // Act
    const report = await run(pool);
    // Assess
    expect(report.summary).toMatchObject({
      checked: 8,
      active: 8,
      disabled: 0,
      providerAuthBreaker: { open: true, refusals: 6, answers: 8 },
    });
    for (const key of keys) expect(await view(key.keyId)).toMatchObject({ status: 'active' });
  });

  it('a few documented refusals among many balances disable their keys, by the provider; a later run re-checks them and brings back one the provider accepts again', async () => {
    // Prepare: two keys refused (401), six known.
    const pool = uniqueName('recheck');
    const [refused, alsoRefused, ...known] = await seed(pool, [
      { unknown: true },
      { unknown: true },
      ...Array.from({ length: 6 }, () => ({ credits: 50 })),
    ]);
    if (!refused || !alsoRefused) throw new Error('seed');
    const operators = known[0];
    if (!operators) throw new Error('seed');
    await table.broker().updateKey(pool, operators.keyId, { status: 'disabled' });
    const first = await run(pool);
    provider.setKey(refused.apiKey, { credits: 40 });
    const asked = provider.requests.length;
    // Act
    const second = await run(pool);
    // Assess
    expect(first.summary).toMatchObject({
      disabled: 3,
      providerAuthBreaker: { open: false, refusals: 2, answers: 7 },
    });
    expect(second.summary).toMatchObject({ checked: 7, disabled: 2 });
    expect(await view(refused.keyId)).toMatchObject({ status: 'active', credits: 40 });
    expect(await view(alsoRefused.keyId)).toMatchObject({
      status: 'disabled',
      statusBy: 'provider',
      statusReason: 'provider_rejected',
    });
    expect(await view(operators.keyId)).toMatchObject({ status: 'disabled', statusBy: 'operator' });
    // The provider-disabled keys come last in the check order; the operator's key is never asked about.
    const order = provider.requests.slice(asked).map((r) => r.apiKey);
    expect(order.slice(-2).sort()).toEqual([refused.apiKey, alsoRefused.apiKey].sort());
    expect(order).not.toContain(operators.apiKey);
  });
});

describe('maintenance: suspect keys and pools by provider', () => {
  it('a key a caller reported invalid is suspect until the provider confirms (401: disabled) or clears it (200: active)', async () => {
    // Prepare: two keys reported invalid_key by callers; the provider knows only one of them.
    const pool = uniqueName('suspect');
    const [known, unknown] = await seed(pool, [{ credits: 50 }, { unknown: true }]);
    if (!known || !unknown) throw new Error('seed');
    await reportOutcome(pool, 'invalid_key');
    await reportOutcome(pool, 'invalid_key');
    expect((await view(known.keyId)).status).toBe('suspect');
    expect((await view(unknown.keyId)).status).toBe('suspect');
    // Act
    const report = await run(pool);
    // Assess
    expect(report.summary).toMatchObject({ checked: 2, active: 1, disabled: 1, suspect: 0, errors: [] });
    expect(await view(known.keyId)).toMatchObject({ status: 'active', credits: 50 });
    expect(await view(unknown.keyId)).toMatchObject({ status: 'disabled' });
    expect((await rawItem(known.keyId))?.[TABLE.usageIndex.partitionKey]).toBe(pool);
    await expect(table.broker().lease(pool)).resolves.toMatchObject({ keyId: known.keyId });
  });

  it('a 403 from the provider confirms a suspect key too', async () => {
    // Prepare
    const pool = uniqueName('forbidden');
    const [key] = await seed(pool, [{ credits: 50 }]);
    if (!key) throw new Error('seed');
    await reportOutcome(pool, 'invalid_key');
    provider.setKey(key.apiKey, { balanceStatus: 403 });
    // Act
    await run(pool);
    // Assess
    expect((await view(key.keyId)).status).toBe('disabled');
  });

  it('suspect keys are checked first: a run allowed one check asks about the suspect key', async () => {
    // Prepare: three keys, the last one imported becomes suspect.
    const pool = uniqueName('first');
    const keys = await seed(pool, [{ credits: 50 }, { credits: 50 }, { credits: 50 }]);
    const broker = table.broker();
    const grants = [await broker.lease(pool), await broker.lease(pool), await broker.lease(pool)];
    const suspect = grants[2];
    if (!suspect) throw new Error('lease');
    for (const grant of grants.slice(0, 2)) await broker.complete(pool, grant.leaseId);
    await broker.complete(pool, suspect.leaseId, { outcome: 'invalid_key' });
    const start = provider.requests.length;
    // Act
    await run(pool, { maxChecks: 1 });
    // Assess
    const asked = provider.requests.slice(start).map((r) => keys.find((k) => k.apiKey === r.apiKey)?.keyId);
    expect(asked).toEqual([suspect.keyId]);
    expect((await view(suspect.keyId)).status).toBe('active');
  });

  it("a pool whose provider is none is never sent to Stability; a client's report ends by itself, a suspect key without an end goes back into the pool", async () => {
    // Prepare: one key reported invalid_key by a client (suspect, with an end); one suspect
    // from before reports had an end (no setter, no end, out of the index).
    const pool = uniqueName('none');
    const [reported, legacy] = await seed(pool, [{ credits: 0 }, { credits: 0 }], { provider: 'none' });
    if (!reported || !legacy) throw new Error('seed');
    await table.broker().updateKey(pool, legacy.keyId, { status: 'disabled' });
    await reportOutcome(pool, 'invalid_key');
    await table.store.client.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { [TABLE.partitionKey]: legacy.keyId },
        UpdateExpression: 'SET #status = :suspect REMOVE statusBy, statusReason, statusAt',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':suspect': 'suspect' },
      }),
    );
    const start = provider.requests.length;
    // Act
    const report = await run(pool);
    // Assess
    const sent = provider.requests
      .slice(start)
      .filter((r) => r.apiKey === reported.apiKey || r.apiKey === legacy.apiKey);
    expect(sent).toEqual([]);
    expect(report.summary).toMatchObject({ checked: 0, active: 1, suspect: 1 });
    expect(await view(legacy.keyId)).toMatchObject({ status: 'active' });
    expect((await rawItem(legacy.keyId))?.[TABLE.usageIndex.partitionKey]).toBe(pool);
    expect(await view(reported.keyId)).toMatchObject({ status: 'suspect', statusBy: 'client' });
    expect((await view(reported.keyId)).creditsCheckedAt).toBeUndefined();
  });

  it('reports every pool in scope, keys or not, with its suspect keys and its own cap', async () => {
    // Prepare: an empty pool and a pool with cap 0 whose only key has been used once.
    const empty = uniqueName('empty');
    await table.broker().setPool(empty, { maxUses: 2 });
    const capped = uniqueName('capped');
    await seed(capped, [{ credits: 50 }], { maxUses: 0 });
    await reportOutcome(capped, 'success');
    // Act
    const emptyReport = await run(empty);
    const cappedReport = await run(capped);
    // Assess
    expect(emptyReport.pools).toEqual([
      expect.objectContaining({ pool: empty, maxUses: 2, total: 0, usable: 0, suspect: 0 }),
    ]);
    expect(cappedReport.pools).toEqual([
      expect.objectContaining({ pool: capped, maxUses: 0, total: 1, active: 1, usable: 0 }),
    ]);
  });

  it('a pass moves the keys of a pool whose shard count changed to their shards and ends the change; a recent change waits for the next pass', async () => {
    // Prepare: 12 keys in one shard, then 4 asked for two minutes ago; another pool's change is a moment old.
    const pool = uniqueName('reshard');
    const keys = await seed(
      pool,
      Array.from({ length: 12 }, () => ({ credits: 50 })),
    );
    await table.pools.put(pool, { shards: 4 }, new Date(Date.now() - 120_000).toISOString());
    const recent = uniqueName('recent');
    await seed(recent, [{ credits: 50 }, { credits: 50 }]);
    await table.pools.put(recent, { shards: 4 }, new Date().toISOString());
    // Act
    const report = await run(pool);
    const early = await run(recent);
    // Assess
    expect(report.reshards).toEqual([
      expect.objectContaining({ pool, shards: 4, previousShards: 1, keys: 12, finished: true }),
    ]);
    expect(await table.pools.get(pool)).not.toHaveProperty('previousShards');
    for (const { keyId } of keys) {
      expect((await rawItem(keyId))?.[TABLE.usageIndex.partitionKey]).toBe(usagePartition(pool, shardOf(keyId, 4)));
    }
    expect(early.reshards).toEqual([expect.objectContaining({ pool: recent, keys: 0, finished: false })]);
    expect(early.reshards[0]?.notBefore).not.toBeNull();
  });

  it('a pool that does not exist is refused, not silently checked as nothing', async () => {
    await expect(run(uniqueName('missing'))).rejects.toBeInstanceOf(PoolNotFound);
  });
});

describe('maintenance: what an operator set, only an operator changes', () => {
  it('a key retired while its balance is read stays retired, whether the provider answers a low balance or a documented 401', async () => {
    // Prepare: one key below the minimum, one the provider refuses; each is retired by an
    // operator after maintenance has read it and before its answer is written.
    const pool = uniqueName('retired');
    const [low, refused] = await seed(pool, [{ credits: 1 }, { unknown: true }]);
    if (!low || !refused) throw new Error('seeded two keys');
    const broker = table.broker();
    const client = new StabilityClient({ baseUrl: provider.url });
    const keyIdOf = new Map([low, refused].map((k) => [k.apiKey, k.keyId]));
    const retiringMidRun: BalanceProvider = {
      balance: async (secret) => {
        const answer = await client.balance(secret);
        await broker.retireKey(pool, keyIdOf.get(secret) ?? '');
        return answer;
      },
    };
    // Act
    await maintain(
      { pools: table.pools, keys: table.store, sealer: testSealer(), balances, provider: retiringMidRun },
      { pool, rate: 10, concurrency: 1 },
    );
    // Assess
    for (const key of [low, refused])
      expect(await view(key.keyId)).toMatchObject({ status: 'retired', statusBy: 'operator' });
  });
});

describe('maintenance: a balance is as old as its request', () => {
  it("a caller's report made while the key's balance was being read stays: that read does not bring the key back", async () => {
    // Prepare: one key leased twice; the first caller reports it invalid (suspect), and the
    // second reports it again while maintenance is reading its balance.
    const pool = uniqueName('rereport');
    const [key] = await seed(pool, [{ credits: 50 }]);
    if (!key) throw new Error('seeded one key');
    const broker = table.broker();
    const first = await broker.lease(pool);
    const second = await broker.lease(pool);
    await broker.complete(pool, first.leaseId, { outcome: 'invalid_key' });
    const client = new StabilityClient({ baseUrl: provider.url });
    const reportedMidRead: BalanceProvider = {
      balance: async (secret) => {
        const answer = await client.balance(secret);
        await new Promise((done) => setTimeout(done, 5));
        await broker.complete(pool, second.leaseId, { outcome: 'invalid_key' });
        return answer;
      },
    };
    const reported = await view(key.keyId);
    // Act
    await maintain(
      { pools: table.pools, keys: table.store, sealer: testSealer(), balances, provider: reportedMidRead },
      { pool, rate: 10, concurrency: 1 },
    );
    // Assess: still the second caller's suspect, whose rest ends after the first's.
    const after = await view(key.keyId);
    expect(after).toMatchObject({ status: 'suspect', statusBy: 'client' });
    expect(after.cooldownUntil ?? 0).toBeGreaterThan(reported.cooldownUntil ?? 0);
  });
});

describe('maintenance: suspect keys a run was to settle and did not', () => {
  it('a steady trickle of invalid_key reports ends each run with a new suspect key, none left unsettled', async () => {
    // Prepare: three keys, each leased once; the first is reported before the first run, and
    // each run's read of another key is met by a caller reporting that key (after the run began).
    const pool = uniqueName('trickle');
    const [first, second, third] = await seed(pool, [{ credits: 50 }, { credits: 50 }, { credits: 50 }]);
    if (!first || !second || !third) throw new Error('seeded three keys');
    const broker = table.broker();
    const grants = [await broker.lease(pool), await broker.lease(pool), await broker.lease(pool)];
    const leaseOf = new Map(grants.map((grant) => [grant.keyId, grant.leaseId]));
    expect(leaseOf.size).toBe(3);
    const report = (keyId: string) => broker.complete(pool, leaseOf.get(keyId) ?? '', { outcome: 'invalid_key' });
    const keyIdOf = new Map([first, second, third].map((k) => [k.apiKey, k.keyId]));
    await report(first.keyId);
    const client = new StabilityClient({ baseUrl: provider.url });
    let reportedDuringRun = '';
    const trickle: BalanceProvider = {
      balance: async (secret) => {
        const answer = await client.balance(secret);
        if (keyIdOf.get(secret) === reportedDuringRun) await report(reportedDuringRun);
        return answer;
      },
    };
    const runWithTrickle = (reported: string) => {
      reportedDuringRun = reported;
      return maintain(
        { pools: table.pools, keys: table.store, sealer: testSealer(), balances, provider: trickle },
        { pool, rate: 10, concurrency: 1 },
      );
    };
    // Act
    const runs = [await runWithTrickle(second.keyId), await runWithTrickle(third.keyId)];
    // Assess: SuspectKeys above 0 after both runs, each a key reported during that run; every
    // report made before a run was settled by it.
    expect(runs.map((r) => [r.pools[0]?.suspect, r.pools[0]?.unsettledSuspect])).toEqual([
      [1, 0],
      [1, 0],
    ]);
    expect((await view(first.keyId)).status).toBe('active');
    expect((await view(second.keyId)).status).toBe('active');
    expect((await view(third.keyId)).status).toBe('suspect');
  });

  it('a provider that does not answer leaves the key reported before the runs unsettled, run after run', async () => {
    // Prepare
    const pool = uniqueName('outage');
    const [key, other] = await seed(pool, [{ credits: 50 }, { credits: 50 }]);
    if (!key || !other) throw new Error('seeded two keys');
    await table.broker().updateKey(pool, other.keyId, { status: 'disabled' });
    await reportOutcome(pool, 'invalid_key');
    await table.broker().updateKey(pool, other.keyId, { status: 'active' });
    for (const k of [key, other]) provider.setKey(k.apiKey, { balanceStatus: 503 });
    // Act
    const runs = [await run(pool), await run(pool)];
    // Assess
    expect(runs.map((r) => [r.pools[0]?.suspect, r.pools[0]?.unsettledSuspect])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect((await view(key.keyId)).status).toBe('suspect');
  });
});
