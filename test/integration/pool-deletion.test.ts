/**
 * Deleting a pool with its keys is bounded from its start: past its deadline a deletion reads
 * no page and starts no retirement, whether or not it has retired a key, answers how many keys
 * it retired and how many remain, and leaves the pool; the same deletion again goes on from
 * there until the pool is gone. On DynamoDB Local, with a clock the test holds.
 */
import { GetCommand } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyNotSealed, PoolNotFound } from '../../lib/domain/errors.js';
import type { Retirement as RetirementWrite } from '../../lib/ports/key-admin-store.js';
import { PoolDirectory } from '../../lib/use-cases/pool-directory.js';
import { Retirement } from '../../lib/use-cases/retirement.js';
import { createTestTable, fakeKey, seedPool, type TestTable, uniqueName } from '../support/dynamo.js';
import { plainKey } from '../support/seed.js';

let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('pool-deletion');
});

/** The key's item as the table holds it. */
async function item(keyId: string): Promise<Record<string, unknown> | undefined> {
  const out = await table.store.client.send(
    new GetCommand({ TableName: table.tableName, Key: { keyId }, ConsistentRead: true }),
  );
  return out.Item;
}

const AT = Date.parse('2026-12-07T12:00:00.000Z');
/** What one retirement takes on the test's clock, landed or refused. */
const STEP_MS = 1_000;

/**
 * Pool deletions over the table on a clock that moves only as retirements end (STEP_MS each):
 * a deadline `3 * STEP_MS` ahead lets the 8 retirements started at once and the 2 started
 * after the first two ended begin, and no other. `tried`: each key a retirement was tried on.
 */
function steppedDeletions() {
  let now = AT;
  const tried: string[] = [];
  const store = {
    poolKeys: table.store.poolKeys.bind(table.store),
    retire: async (retirement: RetirementWrite) => {
      tried.push(retirement.keyId);
      const result = await table.store.retire(retirement);
      now += STEP_MS;
      return result;
    },
  };
  const retirement = new Retirement({
    store,
    poolStore: table.pools,
    pools: new PoolDirectory({ store: table.pools }),
    clock: () => now,
  });
  /** Deletes `pool` with its keys, its deadline `aheadMs` from now (0: passed as it starts). */
  const deletePool = (pool: string, aheadMs = 3 * STEP_MS) =>
    retirement.deletePool(pool, { retireKeys: true, deadlineMs: now + aheadMs });
  return { deletePool, tried };
}

describe('deleting a pool with its keys, against a deadline', () => {
  it('past its deadline retires only what it started, counts what remains across pages, and calling again converges', async () => {
    // Prepare: more keys than one page of retirements (100), so what remains is counted on the next page too.
    const pool = uniqueName('deadline');
    const ids = await seedPool(table, pool, 120);
    const broker = table.broker();
    const { deletePool } = steppedDeletions();
    // Act
    const first = await deletePool(pool);
    const second = await deletePool(pool);
    const stillThere = await broker.getPool(pool);
    const last = await broker.deletePool(pool, { retireKeys: true });
    // Assess: the retirements started before the deadline land, no other starts.
    expect(first).toEqual({ pool, deleted: false, retiredKeys: 10, remainingKeys: 110 });
    expect(second).toEqual({ pool, deleted: false, retiredKeys: 10, remainingKeys: 100 });
    expect(stillThere.pool).toBe(pool);
    expect(last).toEqual({ pool, deleted: true, retiredKeys: 100 });
    await expect(broker.lease(pool)).rejects.toBeInstanceOf(PoolNotFound);
    for (const keyId of ids)
      expect(await item(keyId)).toMatchObject({ status: 'retired', statusReason: 'pool_deleted', pool });
  });

  it('a deadline ahead answers exactly as a deletion without one', async () => {
    // Prepare
    const pool = uniqueName('in-time');
    await seedPool(table, pool, 3);
    const { deletePool } = steppedDeletions();
    // Act
    const answer = await deletePool(pool, 20 * STEP_MS);
    // Assess
    expect(answer).toEqual({ pool, deleted: true, retiredKeys: 3 });
    await expect(table.broker().getPool(pool)).rejects.toBeInstanceOf(PoolNotFound);
  });

  it('a deadline passed before the request starts binds it too: no key tried, every key counted, the pool kept', async () => {
    // Prepare
    const pool = uniqueName('passed');
    const ids = await seedPool(table, pool, 20);
    const { deletePool, tried } = steppedDeletions();
    // Act
    const answer = await deletePool(pool, 0);
    // Assess
    expect(answer).toEqual({ pool, deleted: false, retiredKeys: 0, remainingKeys: 20 });
    expect(tried).toEqual([]);
    for (const keyId of ids) expect((await item(keyId))?.status).toBe('active');
  });

  it('a deadline passed before the request starts still deletes a pool with nothing left to retire', async () => {
    // Prepare
    const pool = uniqueName('spent');
    const ids = await seedPool(table, pool, 3);
    const broker = table.broker();
    for (const keyId of ids) await broker.retireKey(pool, keyId);
    const { deletePool, tried } = steppedDeletions();
    // Act
    const answer = await deletePool(pool, 0);
    // Assess: its count of what remains found nothing, to the end of the pool.
    expect(answer).toEqual({ pool, deleted: true, retiredKeys: 0 });
    expect(tried).toEqual([]);
    await expect(broker.getPool(pool)).rejects.toBeInstanceOf(PoolNotFound);
  });

  it('a pool whose keys are all in plain text stops trying them at its deadline, and answers key_not_sealed', async () => {
    // Prepare: keys from before sealing, which no retirement lands on; more than one page of them.
    const pool = uniqueName('plain');
    await table.broker().setPool(pool, {});
    const keys = Array.from({ length: 150 }, () => plainKey(pool, fakeKey('plain-')));
    for (const key of keys) await table.store.insert(key);
    const { deletePool, tried } = steppedDeletions();
    // Act
    const answer = deletePool(pool);
    // Assess: the retirements started before the deadline, and no other; the pool and its keys as they were.
    await expect(answer).rejects.toBeInstanceOf(KeyNotSealed);
    expect(tried).toHaveLength(10);
    expect((await table.broker().getPool(pool)).pool).toBe(pool);
    for (const key of keys) expect(await item(key.keyId)).toMatchObject({ status: 'active', apiKey: key.secret });
  });
});
