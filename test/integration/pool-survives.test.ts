/**
 * A pool survives signals that are wrong, repeated or hostile, on DynamoDB Local with the fake
 * provider: one client sending 100 negative reports, a provider-wide 402 reported by clients in
 * a pool no provider checks, and a firewall's page in place of every balance. Each ends with
 * every key back in service within the documented time (the pool's maxClientCooldownSeconds; a
 * page that is not the provider's takes none out). And an operator's disable outlasts them all.
 * A fake clock moves time; DynamoDB's conditions are judged with it, as every store method is
 * handed its moment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBalanceStore } from '../../lib/adapters/dynamo-balance-store.js';
import { StabilityClient } from '../../lib/adapters/stability-client.js';
import { NoUsableKey } from '../../lib/domain/errors.js';
import type { Outcome, PoolSettings } from '../../lib/domain/types.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { maintain } from '../../lib/use-cases/maintenance/maintain.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { testSealer } from '../support/sealing.js';

let table: TestTable;
let provider: FakeProvider;

beforeAll(async () => {
  table = await createTestTable('survives');
  provider = await startFakeProvider();
});

afterAll(async () => {
  await provider.close();
});

/** What a firewall in front of the provider answers, whatever the key. */
const WAF_PAGE = { status: 403, contentType: 'text/html', body: 'Access denied (WAF)' };

/** One maintenance run over `pool` on the fake clock (its pacing waits move it), asking the fake provider. */
function maintainPool(pool: string, clock: { now: () => number; advance: (ms: number) => number }) {
  return maintain(
    {
      pools: table.pools,
      keys: table.store,
      sealer: testSealer(),
      balances: new DynamoBalanceStore({ client: table.store.client, tableName: table.tableName }),
      provider: new StabilityClient({ baseUrl: provider.url }),
      clock: clock.now,
      sleep: (ms) => {
        clock.advance(ms);
        return Promise.resolve();
      },
    },
    { pool, rate: 50, concurrency: 4 },
  );
}

/** A fake clock starting at the top of a minute, and a broker and pool over it. */
async function world(keys: number, settings: Partial<PoolSettings>) {
  let now = Date.UTC(2031, 0, 1);
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const broker = table.broker({ clock: clock.now });
  const pool = uniqueName('survive');
  await broker.setPool(pool, settings);
  const secrets = Array.from({ length: keys }, () => fakeKey());
  const imported = await broker.importKeys(
    pool,
    secrets.map((apiKey) => ({ apiKey })),
  );
  return { clock, broker, pool, secrets, ids: imported.keys.map((k) => k.keyId) };
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
    const asked = provider.requests.length;
    const report = await maintainPool(pool, clock);
    clock.advance(120_000);
    const back = await leaseAll(broker, pool, 10);
    // Assess
    expect(dry).toBeInstanceOf(NoUsableKey);
    expect((dry as NoUsableKey).retryAfterSeconds).toBe(120);
    expect(report.summary).toMatchObject({ checked: 0, exhausted: 5 });
    expect(provider.requests.length).toBe(asked);
    expect([...back].sort()).toEqual([...ids].sort());
  });

  it('a WAF page (403 text/html "Access denied (WAF)") in place of every balance: no key changes, every key is leased', async () => {
    // Prepare: six keys the provider knows, behind a firewall that refuses every balance.
    const { clock, broker, pool, secrets, ids } = await world(6, { provider: 'stability' });
    for (const secret of secrets) provider.setKey(secret, { credits: 50 });
    provider.balancePage = WAF_PAGE;
    // Act
    const report = await maintainPool(pool, clock).finally(() => (provider.balancePage = undefined));
    const keys = await broker.listAll(pool);
    const back = await leaseAll(broker, pool, 10);
    // Assess
    expect(report.summary).toMatchObject({
      checked: 6,
      active: 6,
      disabled: 0,
      providerAuthBreaker: { open: false, refusals: 0, answers: 0 },
    });
    expect(report.summary.errors).toHaveLength(6);
    expect(keys.map((k) => [k.status, k.statusBy])).toEqual(ids.map(() => ['active', null]));
    expect([...back].sort()).toEqual([...ids].sort());
  });

  it("an operator's disabled key stays disabled through every path: reports, maintenance (a balance, a documented 401, a WAF page, a none pool), a bulk enable of the provider's disables", async () => {
    // Prepare: one of four keys disabled by the operator; the provider would take it back.
    const { clock, broker, pool, secrets, ids } = await world(4, { provider: 'stability' });
    const [disabled = '', ...others] = ids;
    for (const secret of secrets) provider.setKey(secret, { credits: 50 });
    await broker.updateKey(pool, disabled, { status: 'disabled' });
    const stillDisabled = async (): Promise<void> => {
      const key = (await broker.listAll(pool)).find((k) => k.keyId === disabled);
      expect(key).toMatchObject({ status: 'disabled', statusBy: 'operator', statusReason: 'operator' });
    };
    // Act / Assess: each path in turn.
    for (let i = 0; i < 3; i++) {
      const grant = await broker.lease(pool);
      await broker.complete(pool, grant.leaseId, { outcome: 'invalid_key' }, { by: 'client', caller: 'app' });
    }
    await stillDisabled();
    await maintainPool(pool, clock);
    await stillDisabled();
    provider.setKey(secrets[0] ?? '', { balanceStatus: 401 });
    await maintainPool(pool, clock);
    await stillDisabled();
    provider.balancePage = WAF_PAGE;
    await maintainPool(pool, clock).finally(() => (provider.balancePage = undefined));
    await stillDisabled();
    expect(await broker.enableDisabledBy(pool, 'provider')).toEqual({ pool, enabled: 0 });
    await stillDisabled();
    await broker.setPool(pool, { provider: 'none' });
    await maintainPool(pool, clock);
    await stillDisabled();
    clock.advance(3_600_000);
    const leased = await leaseAll(broker, pool, 10);
    expect([...leased].sort()).toEqual([...others].sort());
    expect(provider.requests.filter((r) => r.apiKey === secrets[0])).toEqual([]);
  });
});
