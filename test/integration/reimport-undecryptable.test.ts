/**
 * The documented way back for a key whose ciphertext does not open (docs/troubleshooting.md,
 * docs/api.md `undecryptable`): import its secret again. On DynamoDB Local, through the broker.
 */
import { UpdateCommand } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyIdFor } from '../../lib/domain/keys.js';
import { NoUsableKey } from '../../lib/domain/errors.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';

let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('reimport');
});

/** Imports `secret` into `pool`, then replaces its ciphertext with one that does not open and has the key marked for it. */
async function undecryptableKey(pool: string, secret: string): Promise<string> {
  const broker = table.broker();
  await broker.importKeys(pool, [{ apiKey: secret }]);
  const keyId = keyIdFor(secret);
  const broken = Buffer.from('not an ESDK message at all').toString('base64');
  await table.store.client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { keyId },
      UpdateExpression: 'SET sealedKey = :broken',
      ExpressionAttributeValues: { ':broken': broken },
    }),
  );
  await expect(broker.lease(pool)).rejects.toBeInstanceOf(NoUsableKey);
  return keyId;
}

describe('an undecryptable key imported again', () => {
  it('is sealed anew and leased again, with the status it had', async () => {
    // Prepare
    const pool = uniqueName('reimport');
    const secret = fakeKey();
    const keyId = await undecryptableKey(pool, secret);
    const broker = table.broker();
    expect((await broker.list(pool)).keys[0]).toMatchObject({ keyId, status: 'undecryptable' });
    // Act
    const again = await broker.importKeys(pool, [{ apiKey: secret }]);
    // Assess
    expect(again.keys[0]).toMatchObject({ keyId, pool, status: 'active' });
    const grant = await broker.lease(pool);
    expect(grant).toMatchObject({ keyId, apiKey: secret });
  });

  it('into another pool is a duplicate and leaves the key as it is', async () => {
    // Prepare
    const pool = uniqueName('reimport');
    const secret = fakeKey();
    const keyId = await undecryptableKey(pool, secret);
    const broker = table.broker();
    // Act
    const again = await broker.importKeys(uniqueName('elsewhere'), [{ apiKey: secret }]);
    // Assess
    expect(again).toMatchObject({ imported: 0, duplicates: 1 });
    expect(again.keys[0]).toMatchObject({ keyId, pool, status: 'undecryptable' });
  });
});
