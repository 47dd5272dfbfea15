import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CapacityMeter } from '../../lib/adapters/dynamo-key-store.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';

const READS = new Set(['candidates', 'get', 'scan']);

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
      if (READS.has(operation)) this.rcu += units;
      else this.wcu += units;
      if (!READS.has(operation)) for (const index of Object.values(c.GlobalSecondaryIndexes ?? {})) this.indexWcu += index.CapacityUnits ?? 0;
    }
  }
  reset(): void {
    this.requests = this.rcu = this.wcu = this.indexWcu = 0;
  }
  snapshot(): { requests: number; rcu: number; wcu: number; indexWcu: number } {
    return { requests: this.requests, rcu: this.rcu, wcu: this.wcu, indexWcu: this.indexWcu };
  }
}

/** The large pool; KEYPOOL_CAPACITY_POOL=10000 for the figure in the README (slower to seed). */
const LARGE = Number(process.env.KEYPOOL_CAPACITY_POOL ?? 2000);

const meter = new Meter();
let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('capacity', meter);
});

async function seed(pool: string, count: number): Promise<void> {
  const broker = table.broker({ importConcurrency: 32 });
  for (let i = 0; i < count; i += 500) {
    await broker.importKeys(Array.from({ length: Math.min(500, count - i) }, () => ({ apiKey: fakeKey(), pool })));
  }
}

async function leaseCost(pool: string): Promise<ReturnType<Meter['snapshot']>> {
  const broker = table.broker();
  meter.reset();
  await broker.lease({ pool });
  return meter.snapshot();
}

describe('DynamoDB work per lease', () => {
  it('one lease-to-completion cycle is one query and two conditional writes', async () => {
    // Prepare
    const pool = uniqueName('cycle');
    await seed(pool, 10);
    const broker = table.broker();
    // Act
    meter.reset();
    const grant = await broker.lease({ pool });
    const leaseOnly = meter.snapshot();
    await broker.complete(grant.leaseId, 'success');
    const cycle = meter.snapshot();
    // Assess
    console.info('capacity: lease-to-completion', JSON.stringify({ lease: leaseOnly, cycle }));
    expect(cycle).toEqual({ requests: 3, rcu: 0.5, wcu: 4, indexWcu: 2 });
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
