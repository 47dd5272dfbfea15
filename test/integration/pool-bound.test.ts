/**
 * The pool is part of every condition: one table write that moves a key's index entry (`upk`)
 * or an idempotency record's key into another pool never hands that pool a secret of the first.
 * A write to the table needs no sealing right, so these are what a role that may write the
 * table (and nothing else) could do; the DynamoDB conditions and the open's encryption context
 * must refuse it, whatever the item says.
 */
import { UpdateCommand } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { idempotencyId } from '../../lib/domain/idempotency.js';
import { IDEMPOTENCY_PREFIX, TABLE } from '../../lib/table.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';

let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('pool-bound');
});

/** Two pools: `a` with one key (its secret `secretA`), `b` with the keys given. */
async function twoPools(keysInB: number) {
  const broker = table.broker();
  const a = uniqueName('pool-a');
  const b = uniqueName('pool-b');
  const secretA = fakeKey('a-');
  const [keyA] = (await broker.importKeys(a, [{ apiKey: secretA }])).keys;
  await broker.setPool(b, {});
  if (keysInB > 0)
    await broker.importKeys(
      b,
      Array.from({ length: keysInB }, () => ({ apiKey: fakeKey('b-') })),
    );
  if (!keyA) throw new Error('no key imported');
  return { broker, a, b, secretA, keyIdA: keyA.keyId };
}

async function setAttribute(keyId: string, name: string, value: string): Promise<void> {
  await table.store.client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { [TABLE.partitionKey]: keyId },
      UpdateExpression: 'SET #name = :value',
      ExpressionAttributeNames: { '#name': name },
      ExpressionAttributeValues: { ':value': value },
    }),
  );
}

describe('one table write cannot move a secret across pools', () => {
  it.each([
    ['a plain lease', undefined],
    ['a lease with an Idempotency-Key', 'job-7'],
  ])("%s of pool b never answers pool a's key whose index entry was moved into b", async (_what, idempotencyKey) => {
    // Prepare: pool a's key is put into pool b's index partition; its `pool` stays a.
    const { broker, b, secretA, keyIdA } = await twoPools(0);
    await setAttribute(keyIdA, TABLE.usageIndex.partitionKey, b);
    // Act
    const answer = await broker.lease(b, {}, idempotencyKey).catch((error: unknown) => error);
    // Assess
    expect(JSON.stringify(answer)).not.toContain(secretA);
    expect(answer).toMatchObject({ code: 'no_usable_key' });
    expect((await table.store.get(keyIdA))?.usageCount).toBe(0);
  });

  it("a replay in pool b never answers pool a's key named by its idempotency record", async () => {
    // Prepare: a lease of pool b under an Idempotency-Key, whose record is then pointed at pool a's key.
    const { broker, b, secretA, keyIdA } = await twoPools(1);
    await broker.lease(b, {}, 'job-8');
    await setAttribute(`${IDEMPOTENCY_PREFIX}${idempotencyId(b, 'job-8')}`, 'leasedKeyId', keyIdA);
    // Act
    const answer = await broker.lease(b, {}, 'job-8').catch((error: unknown) => error);
    // Assess
    expect(JSON.stringify(answer)).not.toContain(secretA);
    expect(answer).not.toMatchObject({ keyId: keyIdA });
  });
});
