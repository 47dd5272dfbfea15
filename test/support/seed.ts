/** Fast seeding for benchmarks and the reliability suite: BatchWriteItem of whole key items, in parallel. */
import { randomBytes } from 'node:crypto';
import { BatchWriteCommand, type DynamoCalls } from '../../lib/adapters/dynamo-wire.js';
import { toKeyItem } from '../../lib/adapters/dynamo-key-store.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { sealNewKey } from '../../lib/use-cases/new-key.js';
import type { SecretSealer } from '../../lib/ports/secret-sealer.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import type { PoolSettings, StoredKey } from '../../lib/domain/types.js';

export interface SeedOptions {
  client: DynamoCalls;
  tableName: string;
  pool: string;
  count: number;
  /** seals each secret, as an import would */
  sealer: Pick<SecretSealer, 'seal'>;
  /** BatchWriteItem requests in flight at once */
  concurrency?: number;
  /** the pool's policy (created, or changed, before the keys are written) */
  policy?: Partial<PoolSettings>;
  /** called with every secret written, so a secrets scan can look for it */
  onSecret?: (secret: string) => void;
  /** put the keys in accounts of this many keys each (`acct-<n>`, in seed order); none: no account */
  keysPerAccount?: number;
  /** every key's usage count (default 0): above the pool's cap, a pool of keys no lease can use */
  usageCount?: number;
}

/**
 * Writes `count` fresh active keys (fake secrets, count 0 unless `usageCount` says, distinct import stamps so LRU
 * order is the seed order) and returns their ids in that order. Unprocessed items are
 * written again until none is left.
 */
export async function seedKeys(options: SeedOptions): Promise<string[]> {
  const base = Date.now() - options.count - 1000;
  const policy = await new DynamoPoolStore({ client: options.client, tableName: options.tableName }).put(
    options.pool,
    options.policy ?? {},
    new Date().toISOString(),
  );
  const keys: StoredKey[] = await mapLimit(
    Array.from({ length: options.count }, (_, i) => i),
    16,
    (i) => {
      const apiKey = `sk-test-seed-${randomBytes(16).toString('hex')}`;
      options.onSecret?.(apiKey);
      // Homed for the pool's shard count, as an import would.
      return sealNewKey(options.sealer, apiKey, options.pool, new Date(base + i).toISOString(), {
        shards: policy.shards,
        ...(options.keysPerAccount ? { account: `acct-${Math.floor(i / options.keysPerAccount)}` } : {}),
      });
    },
  );
  const batches: StoredKey[][] = [];
  for (let i = 0; i < keys.length; i += 25) batches.push(keys.slice(i, i + 25));
  const usageCount = options.usageCount ?? 0;
  await mapLimit(batches, options.concurrency ?? 8, async (batch) => {
    let requests = batch.map((key) => ({ PutRequest: { Item: toKeyItem({ ...key, usageCount }) } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
      const out = await options.client.send(new BatchWriteCommand({ RequestItems: { [options.tableName]: requests } }));
      requests = (out.UnprocessedItems?.[options.tableName] ?? []).flatMap((r) =>
        r.PutRequest?.Item ? [{ PutRequest: { Item: r.PutRequest.Item } }] : [],
      );
    }
  });
  return keys.map((k) => k.keyId);
}

/**
 * A key as an item written before sealing holds it: its secret in plain text (`sealed: false`),
 * active, count 0. Leases set it aside; `keypool reseal` seals it.
 */
export function plainKey(pool: string, secret: string): StoredKey {
  return {
    keyId: keyIdFor(secret),
    pool,
    secret,
    sealed: false,
    maskedKey: '...',
    usageCount: 0,
    status: 'active',
    createdAt: new Date().toISOString(),
    lastUsedAt: null,
    slots: {},
  };
}
