import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CapacityMeter, READ_OPERATIONS } from '../../lib/adapters/dynamo-table.js';
import { NoUsableKey } from '../../lib/domain/errors.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { seedKeys } from '../support/seed.js';
import { testSealer } from '../support/sealing.js';

/**
 * Sums requests and capacity units as DynamoDB reports them. DynamoDB Local reports only
 * `CapacityUnits` (not read and write apart), so the operation tells which one it is.
 */
class Meter implements CapacityMeter {
  requests = 0;
  rcu = 0;
  wcu = 0;
  indexWcu = 0;
  record(operation: string, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    this.requests += 1;
    for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      const units = c.CapacityUnits ?? 0;
      if (READ_OPERATIONS.has(operation)) this.rcu += units;
      else this.wcu += units;
      if (!READ_OPERATIONS.has(operation))
        for (const index of Object.values(c.GlobalSecondaryIndexes ?? {})) this.indexWcu += index.CapacityUnits ?? 0;
    }
  }
  reset(): void {
    this.requests = this.rcu = this.wcu = this.indexWcu = 0;
  }
  snapshot(): { requests: number; rcu: number; wcu: number; indexWcu: number } {
    return { requests: this.requests, rcu: this.rcu, wcu: this.wcu, indexWcu: this.indexWcu };
  }
}

/** The large pool; KEYPOOL_CAPACITY_POOL=10000 for the figure in docs/scaling.md (slower to seed). */
const LARGE = Number(process.env.KEYPOOL_CAPACITY_POOL ?? 2000);
/** Keys elsewhere in the table for the listing test; KEYPOOL_CAPACITY_TABLE=100000 for the figure in docs/scaling.md. */
const TABLE_KEYS = Number(process.env.KEYPOOL_CAPACITY_TABLE ?? 2000);

const meter = new Meter();
let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('capacity', meter);
});

async function seed(pool: string, count: number, shards = 1): Promise<void> {
  await seedKeys({
    client: table.store.client,
    tableName: table.tableName,
    pool,
    count,
    concurrency: 8,
    sealer: testSealer(),
    policy: { shards },
  });
}

/**
 * What one lease that reads the index costs on a broker that has already read the pool's policy
 * (a warm Lambda): the first lease of a page (a page read serves the broker's next leases for
 * PAGE_REUSE_MS, test below), or any under contention.
 */
async function leaseCost(pool: string): Promise<ReturnType<Meter['snapshot']>> {
  const broker = table.broker({ pageReuseMs: 0 });
  await broker.lease(pool);
  meter.reset();
  await broker.lease(pool);
  return meter.snapshot();
}

describe('DynamoDB work per lease', () => {
  it('one lease-to-completion cycle is one query and two conditional writes', async () => {
    // Prepare
    const pool = uniqueName('cycle');
    await seed(pool, 10);
    const broker = table.broker({ pageReuseMs: 0 });
    await broker.complete(pool, (await broker.lease(pool)).leaseId);
    // Act
    meter.reset();
    const grant = await broker.lease(pool);
    const leaseOnly = meter.snapshot();
    await broker.complete(pool, grant.leaseId, { outcome: 'success' });
    const cycle = meter.snapshot();
    // Assess: the pool's policy is cached (no read per lease); the pool-keys index is not
    // written by a lease or a completion (neither changes its key or projection).
    console.info('capacity: lease-to-completion', JSON.stringify({ lease: leaseOnly, cycle }));
    expect(cycle).toEqual({ requests: 3, rcu: 0.5, wcu: 4, indexWcu: 2 });
  });

  it("a cold process reads the pool's policy once, then not again within the cache period", async () => {
    // Prepare
    const pool = uniqueName('cold');
    await seed(pool, 10);
    const broker = table.broker();
    // Act
    meter.reset();
    await broker.lease(pool);
    const cold = meter.snapshot();
    meter.reset();
    for (let i = 0; i < 5; i++) await broker.lease(pool);
    const warm = meter.snapshot();
    // Assess: one GetItem of the small pool record (1 RCU, strongly consistent) on the first
    // lease only; the next five take from the page the first one read (within PAGE_REUSE_MS):
    // one conditional write each, no query.
    console.info('capacity: policy read', JSON.stringify({ cold, warmFive: warm }));
    expect(cold).toEqual({ requests: 3, rcu: 1.5, wcu: 3, indexWcu: 2 });
    expect(warm).toEqual({ requests: 5, rcu: 0, wcu: 15, indexWcu: 10 });
  });

  it(`a lease costs the same with 100 and ${LARGE} keys in the pool`, async () => {
    // Prepare
    const small = uniqueName('p100');
    const large = uniqueName('large');
    await seed(small, 100);
    await seed(large, LARGE);
    // Act
    const atSmall = await leaseCost(small);
    const atLarge = await leaseCost(large);
    // Assess
    console.info('capacity: lease by pool size', JSON.stringify({ 100: atSmall, [LARGE]: atLarge }));
    expect(atSmall).toEqual({ requests: 2, rcu: 0.5, wcu: 3, indexWcu: 2 });
    expect(atLarge).toEqual(atSmall);
  });
});

describe('DynamoDB work per lease over shards', () => {
  it('a lease at 8 shards costs what it costs at one: one query and one conditional write', async () => {
    // Prepare
    const pool = uniqueName('eight');
    await seed(pool, 100, 8);
    // Act
    const cost = await leaseCost(pool);
    // Assess
    console.info('capacity: lease at 8 shards', JSON.stringify(cost));
    expect(cost).toEqual({ requests: 2, rcu: 0.5, wcu: 3, indexWcu: 2 });
  });

  it('a dry pool costs one query per shard and no write before its 409, at 1, 8 and 64 shards', async () => {
    // Prepare: each pool's keys all used to the cap (in the index, above the range a lease reads).
    const costs: Record<number, ReturnType<Meter['snapshot']>> = {};
    for (const shards of [1, 8, 64]) {
      const pool = uniqueName(`dry${shards}`);
      await seed(pool, 16, shards);
      const broker = table.broker();
      for (let i = 0; i < 16; i++) await broker.lease(pool, { maxUses: 0 });
      await broker.lease(pool, { maxUses: 0 }).catch(() => undefined);
      // Act
      meter.reset();
      const refused = await broker.lease(pool, { maxUses: 0 }).catch((error: unknown) => error);
      costs[shards] = meter.snapshot();
      // Assess
      expect(refused).toBeInstanceOf(NoUsableKey);
    }
    // DynamoDB Local reports 0 RCU for an empty page; DynamoDB charges a Query that finds
    // nothing all the same ("even if no data exists", developerguide/read-write-operations.html):
    // 0.5 RCU each, eventually consistent, so S x 0.5 RCU per 409 there.
    console.info('capacity: dry pool per 409', JSON.stringify(costs));
    for (const [shards, cost] of Object.entries(costs)) {
      expect(cost).toMatchObject({ requests: Number(shards), wcu: 0, indexWcu: 0 });
      expect(cost.rcu).toBeLessThanOrEqual(0.5 * Number(shards));
    }
  });
});

describe('DynamoDB work per list page', () => {
  it(`a 100-key page costs the same with 100 and ${TABLE_KEYS} other keys in the table`, async () => {
    // Prepare: the listed pool, then other pools filling the table.
    const listed = uniqueName('listed');
    await seed(listed, 150);
    const broker = table.broker();
    const pageCost = async (): Promise<ReturnType<Meter['snapshot']>> => {
      // The pool's policy is read at most once per cache period; read it now, not in the measure.
      await broker.list(listed, { limit: 1 });
      meter.reset();
      const page = await broker.list(listed, { limit: 100 });
      expect(page.keys).toHaveLength(100);
      return meter.snapshot();
    };
    await seed(uniqueName('filler'), 100);
    const beside100 = await pageCost();
    await seed(uniqueName('filler'), TABLE_KEYS);
    const besideMany = await pageCost();
    // Assess: one Query of the keys-only pool index and one BatchGetItem of the page's items
    // (0.5 RCU an item, eventually consistent); nothing scales with the table.
    console.info('capacity: list page', JSON.stringify({ beside100, [`beside${TABLE_KEYS}`]: besideMany }));
    expect(besideMany).toEqual(beside100);
    expect(beside100.requests).toBe(2);
    expect(beside100.rcu).toBeLessThan(60);
  });
});

describe('DynamoDB work per refusal', () => {
  it("a dry pool's keys are counted once a minute per process: the first refusal reads them, the next ones only the index", async () => {
    // Prepare: 250 keys, each used once, and refusals under a cap of 0.
    const pool = uniqueName('dry');
    await seed(pool, 250);
    const broker = table.broker();
    for (let i = 0; i < 250; i++) await broker.lease(pool, { maxUses: 0 });
    const refuse = () => expect(broker.lease(pool, { maxUses: 0 })).rejects.toBeInstanceOf(NoUsableKey);
    // Act
    meter.reset();
    await refuse();
    const first = meter.snapshot();
    meter.reset();
    for (let i = 0; i < 10; i++) await refuse();
    const nextTen = meter.snapshot();
    // Assess: the first reads the index (one query) and the pool's keys (3 pool-keys pages of
    // 100 and 3 batch reads, projected); the next ten within the minute one query each.
    console.info('capacity: dry pool refusals', JSON.stringify({ first, nextTen }));
    expect(first.requests).toBe(7);
    expect(nextTen).toMatchObject({ requests: 10, wcu: 0 });
    expect(nextTen.rcu).toBeLessThan(first.rcu);
  });
});
