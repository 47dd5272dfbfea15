/**
 * Deleting a pool with its keys is bounded: past its deadline a deletion starts no retirement,
 * answers how many keys it retired and how many remain, and leaves the pool; the same deletion
 * again goes on from there until the pool is gone. On DynamoDB Local, with a clock the test holds.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { PoolNotFound } from '../../lib/domain/errors.js';
import { createTestTable, seedPool, type TestTable, uniqueName } from '../support/dynamo.js';

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

/** A clock that stands still at `at`: a deadline at `at` has passed before the deletion starts. */
const AT = Date.parse('2026-12-07T12:00:00.000Z');
const standing = (): number => AT;

describe('deleting a pool with its keys, against a deadline', () => {
  it('past its deadline retires only what it started, counts what remains across pages, and calling again converges', async () => {
    // Prepare: more keys than one page of retirements (100), so what remains is counted on the next page too.
    const pool = uniqueName('deadline');
    const ids = await seedPool(table, pool, 120);
    const broker = table.broker({ clock: standing });
    // Act
    const first = await broker.deletePool(pool, { retireKeys: true, deadlineMs: AT });
    const second = await broker.deletePool(pool, { retireKeys: true, deadlineMs: AT });
    const stillThere = await broker.getPool(pool);
    const last = await broker.deletePool(pool, { retireKeys: true });
    // Assess: the 8 retirements started at once (the default concurrency) land, no other starts.
    expect(first).toEqual({ pool, deleted: false, retiredKeys: 8, remainingKeys: 112 });
    expect(second).toEqual({ pool, deleted: false, retiredKeys: 8, remainingKeys: 104 });
    expect(stillThere.pool).toBe(pool);
    expect(last).toEqual({ pool, deleted: true, retiredKeys: 104 });
    await expect(broker.lease(pool)).rejects.toBeInstanceOf(PoolNotFound);
    for (const keyId of ids)
      expect(await item(keyId)).toMatchObject({ status: 'retired', statusReason: 'pool_deleted', pool });
  });

  it('a deadline ahead answers exactly as a deletion without one', async () => {
    // Prepare
    const pool = uniqueName('in-time');
    await seedPool(table, pool, 3);
    const broker = table.broker({ clock: standing });
    // Act
    const answer = await broker.deletePool(pool, { retireKeys: true, deadlineMs: AT + 20_000 });
    // Assess
    expect(answer).toEqual({ pool, deleted: true, retiredKeys: 3 });
    await expect(broker.getPool(pool)).rejects.toBeInstanceOf(PoolNotFound);
  });

  it('a deadline that has passed still retires keys each call, then deletes the pool once none remains', async () => {
    // Prepare
    const pool = uniqueName('progress');
    await seedPool(table, pool, 20);
    const broker = table.broker({ clock: standing });
    const answers = [];
    // Act
    for (let call = 0; call < 5; call++) {
      const answer = await broker.deletePool(pool, { retireKeys: true, deadlineMs: AT });
      answers.push(answer);
      if (answer.deleted) break;
    }
    // Assess
    expect(answers).toEqual([
      { pool, deleted: false, retiredKeys: 8, remainingKeys: 12 },
      { pool, deleted: false, retiredKeys: 8, remainingKeys: 4 },
      { pool, deleted: true, retiredKeys: 4 },
    ]);
  });
});
