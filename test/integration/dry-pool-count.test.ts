/**
 * A refusal in a large pool on DynamoDB Local: the count of why the pool is dry is one page of
 * 100 keys after another, so a refusal waits for it only a bounded time (DRY_POOL_WAIT_MS) and
 * answers a clean 409 without counts meanwhile; the count goes on, and a later refusal of the
 * same process carries it. Each batch read of the count is slowed here, as a pool of tens of
 * thousands of keys would be, so that the read outlasts the wait whatever the machine.
 */
import { describe, expect, it } from 'vitest';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import type { DynamoCalls } from '../../lib/adapters/dynamo-wire.js';
import { DynamoKeyStore } from '../../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { Broker } from '../../lib/use-cases/broker.js';
import { DRY_POOL_WAIT_MS } from '../../lib/use-cases/dry-pool-counts.js';
import { createTestTable, uniqueName } from '../support/dynamo.js';
import { refusal } from '../support/refusal.js';
import { testSealer } from '../support/sealing.js';
import { seedKeys } from '../support/seed.js';

/** A broker over `tableName` whose batch reads each take at least `delayMs` more; it counts them. */
function slowBroker(endpoint: string, tableName: string, delayMs: number) {
  const inner = documentClient({ endpoint, region: undefined });
  const reads = { batches: 0 };
  const client: DynamoCalls = {
    destroy: () => inner.destroy(),
    send: async (command) => {
      if (command.operation === 'BatchGetItem') {
        reads.batches++;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      return inner.send(command);
    },
  };
  const broker = new Broker({
    store: new DynamoKeyStore({ client, tableName }),
    poolStore: new DynamoPoolStore({ client, tableName }),
    sealer: testSealer(),
  });
  return { broker, reads };
}

describe('a refusal in a pool whose count takes longer than the wait', () => {
  it('is a 409 without counts at once; the count goes on once, and a later refusal carries it', async () => {
    // Prepare: 250 keys over the cap (3 pages of the count), each page's batch read slowed to
    // the whole wait, so the count takes at least three waits.
    const table = await createTestTable('dry-count');
    const pool = uniqueName('dry');
    await seedKeys({
      client: table.store.client,
      tableName: table.tableName,
      pool,
      count: 250,
      sealer: testSealer(),
      usageCount: 4,
    });
    const { broker, reads } = slowBroker(table.endpoint, table.tableName, DRY_POOL_WAIT_MS);
    // Act
    const first = await refusal(broker.lease(pool));
    const pagesWhenAnswered = reads.batches;
    let later = await refusal(broker.lease(pool));
    for (let i = 0; i < 100 && later.dry === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      later = await refusal(broker.lease(pool));
    }
    // Assess
    expect(first.dry).toBeUndefined();
    expect(pagesWhenAnswered).toBeLessThan(3);
    expect(later.dry?.unusable).toMatchObject({ overCap: 250, cooling: 0, disabled: 0 });
    expect(reads.batches).toBe(3);
  });
});
