/**
 * `npm run bench:dry-count [-- --keys N]`: what a `409 no_usable_key` refusal's count of its pool
 * costs on DynamoDB Local. A pool of N keys (default 5,000), all over the cap, is counted three
 * times from a cold cache (the read's time, and per 1,000 keys), then refused by a fresh broker
 * (the first refusal of a process: how long it took, and whether it carried the counts).
 * Figures, not a timed test. Uses KEYPOOL_DYNAMODB_ENDPOINT if set, else starts an in-memory
 * DynamoDB Local.
 */
import { parseArgs } from 'node:util';
import { documentClient } from '../lib/adapters/dynamo-client.js';
import { DynamoKeyStore } from '../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../lib/adapters/dynamo-pool-store.js';
import { ensureTable, freePort, startDynamoLocal } from '../lib/local/dynamodb-local.js';
import { Broker } from '../lib/use-cases/broker.js';
import { DryPoolCounts } from '../lib/use-cases/dry-pool-counts.js';
import { refusal } from '../test/support/refusal.js';
import { seedKeys } from '../test/support/seed.js';
import { benchSealer } from './contenders.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keys: { type: 'string' } } });
  const keys = Number(values.keys ?? 5_000);
  const given = process.env.KEYPOOL_DYNAMODB_ENDPOINT;
  const local = given ? undefined : await startDynamoLocal({ port: await freePort() });
  const endpoint = given ?? local?.endpoint ?? '';
  try {
    const tableName = `bench-dry-${Date.now()}`;
    await ensureTable(endpoint, tableName);
    const client = documentClient({ endpoint, region: undefined });
    const sealer = benchSealer('keypool');
    const pool = 'dry';
    await seedKeys({ client, tableName, pool, count: keys, sealer, usageCount: 4 });
    const store = new DynamoKeyStore({ client, tableName });
    for (let run = 1; run <= 3; run++) {
      // A wait longer than any read: the read's own time.
      const counts = new DryPoolCounts({ store, waitMs: 600_000 });
      const started = performance.now();
      await counts.dry(pool, 3);
      const ms = performance.now() - started;
      console.log(
        `count ${run}: ${keys.toLocaleString('en-US')} keys in ${ms.toFixed(0)} ms = ${((ms / keys) * 1000).toFixed(0)} ms per 1,000 keys`,
      );
    }
    const broker = new Broker({ store, poolStore: new DynamoPoolStore({ client, tableName }), sealer });
    const started = performance.now();
    const refused = await refusal(broker.lease(pool));
    const ms = performance.now() - started;
    console.log(`first refusal of a process: ${ms.toFixed(0)} ms, ${refused.dry ? 'with' : 'without'} counts`);
  } finally {
    await local?.stop();
  }
}

await main();
