/**
 * The benchmark's partition heat (bench/heat.ts) on DynamoDB Local: what each operation of a use
 * writes to the usage index and to the key's item, counted per partition value.
 */
import { describe, expect, it } from 'vitest';
import { documentClient } from '../../../lib/adapters/dynamo-client.js';
import { shardOf } from '../../../lib/domain/shards.js';
import { ensureTable } from '../../../lib/local/dynamodb-local.js';
import { usagePartition } from '../../../lib/table.js';
import { dynamoEndpoint, uniqueName } from '../../support/dynamo.js';
import { seedKeys } from '../../support/seed.js';
import { benchSealer, contender, CostMeter } from '../../../bench/contenders.js';
import { PartitionHeat, watchWrites } from '../../../bench/heat.js';

describe('partition heat', () => {
  it("counts 2 index WCU per lease on the key's own partition, none per success completion, and 1 table WCU per refused write", async () => {
    // Prepare: one pool at 8 shards, one caller, heat counted while it makes 40 uses.
    const endpoint = dynamoEndpoint();
    const tableName = uniqueName('heat');
    await ensureTable(endpoint, tableName);
    const heat = new PartitionHeat();
    const client = watchWrites(documentClient({ endpoint, region: undefined }), (name) =>
      name === tableName ? heat : undefined,
    );
    const pool = 'heat';
    const ids = await seedKeys({
      client,
      tableName,
      pool,
      count: 40,
      sealer: benchSealer('keypool-sharded'),
      policy: { maxUses: 3, shards: 8 },
    });
    for (const keyId of ids) heat.place(keyId, usagePartition(pool, shardOf(keyId, 8)));
    const meter = new CostMeter();
    const use = contender('keypool-sharded', { client, tableName, pool, maxUses: 3, meter, pageSize: 25 }, 1);
    // Act
    heat.start(0);
    const uses = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const keyId = (await use(0)) ?? 'none';
      uses.set(keyId, (uses.get(keyId) ?? 0) + 1);
    }
    const refused = ids[0] ?? '';
    heat.write(refused, undefined);
    heat.stop(10_000);
    const figures = heat.figures();
    client.destroy();
    // Assess: 40 leases x 2 index WCU over the 10 s measured, spread over several partitions;
    // each use writes its item twice (lease, completion), the refused write once more. Which key
    // is hottest depends on the shards the broker happened to read (an unread shard ranks level
    // with the best one seen, so a key may serve twice while another shard still holds unused
    // ones): the hottest item's writes follow from the uses the run actually made.
    expect(uses.has('none')).toBe(false);
    const itemWrites = (keyId: string): number => 2 * (uses.get(keyId) ?? 0) + (keyId === refused ? 1 : 0);
    const hottestWrites = Math.max(itemWrites(refused), ...[...uses.keys()].map(itemWrites));
    expect(figures.indexWcu).toBe(80);
    expect(figures.indexWcuPerSec).toBe(8);
    expect(figures.partitions).toBeGreaterThan(3);
    expect(figures.hottestIndexWcuPerSec).toBeLessThan(8);
    expect(figures.hottestItemWcuPerSec).toBeCloseTo(hottestWrites / 10, 9);
  });
});
