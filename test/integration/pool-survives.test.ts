/**
 * A pool survives signals that are wrong, repeated or hostile, on DynamoDB Local: one client
 * sending 100 negative reports, and a provider-wide 402 reported by clients in a pool no
 * provider checks. Each ends with every key back in service within the documented time (the
 * pool's maxClientCooldownSeconds). A fake clock moves time; DynamoDB's conditions are judged
 * with it, as every store method is handed its moment.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoBalanceStore } from '../../lib/adapters/dynamo-balance-store.js';
import { StabilityClient } from '../../lib/adapters/stability-client.js';
import { NoUsableKey } from '../../lib/domain/errors.js';
import type { Outcome, PoolSettings } from '../../lib/domain/types.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { maintain } from '../../lib/use-cases/maintenance/maintain.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { testSealer } from '../support/sealing.js';

let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('survives');
});

/** A fake clock starting at the top of a minute, and a broker and pool over it. */
async function world(keys: number, settings: Partial<PoolSettings>) {
  let now = Date.UTC(2031, 0, 1);
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const broker = table.broker({ clock: clock.now });
  const pool = uniqueName('survive');
  await broker.setPool(pool, settings);
  const imported = await broker.importKeys(
    pool,
    Array.from({ length: keys }, () => ({ apiKey: fakeKey() })),
  );
  return { clock, broker, pool, ids: imported.keys.map((k) => k.keyId) };
}

/** Leases until the pool answers no usable key (at most `max`), and answers the distinct keys leased. */
async function leaseAll(broker: ReturnType<TestTable['broker']>, pool: string, max: number): Promise<Set<string>> {
  const keys = new Set<string>();
  for (let i = 0; i < max; i++) {
    const grant = await broker.lease(pool).catch((error: unknown) => {
      if (error instanceof NoUsableKey) return undefined;
      throw error;
    });
    if (!grant) break;
    keys.add(grant.keyId);
    await broker.complete(pool, grant.leaseId);
  }
  return keys;
}

describe('a pool survives', () => {
  it('one client sending 100 negative reports: at most maxClientReportsPerMinute take effect, every key back within maxClientCooldownSeconds', async () => {
    // Prepare: 20 keys, 100 open leases of one caller (five per key).
    const { clock, broker, pool, ids } = await world(20, {
      maxUses: 1000,
      maxClientReportsPerMinute: 30,
      maxClientCooldownSeconds: 60,
    });
    const caller = 'arn:aws:sts::111122223333:assumed-role/app/attacker';
    const grants = await mapLimit(Array.from({ length: 100 }), 8, () => broker.lease(pool));
    const outcomes: Outcome[] = ['invalid_key', 'out_of_credits', 'rate_limited'];
    // Act: the 100 reports, 8 at a time (the budget is one conditional counter, whatever the concurrency).
    const results = await mapLimit(grants, 8, (grant, i) => {
      const outcome = outcomes[i % 3] ?? 'invalid_key';
      const report = outcome === 'rate_limited' ? { outcome, retryAfterSeconds: 3600 } : { outcome };
      return broker.complete(pool, grant.leaseId, report, { by: 'client', caller });
    });
    const keys = await broker.listAll(pool);
    clock.advance(60_000);
    const back = await leaseAll(broker, pool, 40);
    // Assess
    expect(results.filter((r) => r.reportIgnored === 'over_budget')).toHaveLength(70);
    expect(keys.reduce((n, k) => n + k.usageCount, 0)).toBe(0);
    expect(keys.filter((k) => k.status !== 'active').length).toBeLessThanOrEqual(30);
    for (const key of keys.filter((k) => k.status !== 'active'))
      expect(Date.parse(key.cooldownUntil ?? '')).toBeLessThanOrEqual(clock.now());
    expect([...back].sort()).toEqual([...ids].sort());
  });

  it('a provider-wide 402 reported by clients in a `none` pool: every key back within maxClientCooldownSeconds, maintenance or not', async () => {
    // Prepare: every key of the pool reported out of credits.
    const { clock, broker, pool, ids } = await world(5, { provider: 'none', maxClientCooldownSeconds: 120 });
    for (let i = 0; i < 5; i++) {
      const grant = await broker.lease(pool);
      await broker.complete(pool, grant.leaseId, { outcome: 'out_of_credits' });
    }
    const dry = await broker.lease(pool).catch((error: unknown) => error);
    // Act: a maintenance run asks nobody (provider none) and clears nothing it should not.
    const report = await maintain(
      {
        pools: table.pools,
        keys: table.store,
        sealer: testSealer(),
        balances: new DynamoBalanceStore({ client: table.store.client, tableName: table.tableName }),
        provider: new StabilityClient({ baseUrl: 'http://127.0.0.1:9' }),
        clock: clock.now,
      },
      { pool, rate: 10, concurrency: 2 },
    );
    clock.advance(120_000);
    const back = await leaseAll(broker, pool, 10);
    // Assess
    expect(dry).toBeInstanceOf(NoUsableKey);
    expect((dry as NoUsableKey).retryAfterSeconds).toBe(120);
    expect(report.summary).toMatchObject({ checked: 0, exhausted: 5 });
    expect([...back].sort()).toEqual([...ids].sort());
  });
});
