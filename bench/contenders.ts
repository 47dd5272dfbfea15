/**
 * The contenders of the benchmark, over the same table shape and the same callers: keypool
 * (the library, lease + complete, one shard), keypool-sharded (the same over S shards,
 * `--shards`, default 8), keypool-unsealed (keypool without sealing), baseline (the old
 * query-then-increment) and floor (one index query + one conditional write, nothing else);
 * then the proxied ones (./proxied.ts): keypool's proxy use case without and with an
 * Idempotency-Key, and the floor making the same provider call, each at one shard and at S.
 */
import { randomBytes } from 'node:crypto';
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { QueryCommand, UpdateCommand } from '../lib/adapters/dynamo-wire.js';
import { type CapacityMeter, DynamoKeyStore } from '../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../lib/adapters/dynamo-pool-store.js';
import { isConditionFailure, READ_OPERATIONS } from '../lib/adapters/dynamo-table.js';
import { createEsdkSealer } from '../lib/adapters/esdk-sealer.js';
import { Broker } from '../lib/use-cases/broker.js';
import { NoUsableKey } from '../lib/domain/errors.js';
import type { SecretSealer } from '../lib/ports/secret-sealer.js';
import { TABLE, usagePartition, usageSortKey, usageSortKeyBound } from '../lib/table.js';
import type { ContenderSetup, ProxySetup, UseFn } from './contender-setup.js';
import { floorProxiedContender, keypoolProxiedContender } from './proxied.js';

/** The client-lease contenders: the caller gets the key. */
export const LEASE_CONTENDERS = ['keypool', 'keypool-sharded', 'keypool-unsealed', 'baseline', 'floor'] as const;
/** The proxied contenders: the provider is called with the key, which the caller never sees. */
export const PROXIED_CONTENDERS = [
  'keypool-proxied',
  'keypool-proxied-sharded',
  'keypool-proxied-idem',
  'keypool-proxied-idem-sharded',
  'floor-proxied',
  'floor-proxied-sharded',
] as const;
export const CONTENDERS = [...LEASE_CONTENDERS, ...PROXIED_CONTENDERS] as const;
export type ContenderName = (typeof CONTENDERS)[number];
export type ProxiedContenderName = (typeof PROXIED_CONTENDERS)[number];

/** The sharded keypool's shard count unless `--shards` says otherwise. */
export const DEFAULT_BENCH_SHARDS = 8;

/** The shard count a contender's pools get: `shards` for the `-sharded` ones, one for every other (the baseline and the floor query one partition). */
export function contenderShards(name: ContenderName, shards: number): number {
  return name.endsWith('-sharded') ? shards : 1;
}

/** True for a contender that calls the provider (its pool needs a provider, its keys the stub's counting). */
export function isProxied(name: ContenderName): name is ProxiedContenderName {
  return (PROXIED_CONTENDERS as readonly string[]).includes(name);
}

/** The benchmark's local wrapping key (a fresh one per run). */
const BENCH_KEY = randomBytes(32);

/**
 * Stores and opens secrets as they are: the "without sealing" side of the sealed-vs-plain
 * comparison (keypool-unsealed). Only the benchmark has it; keypool itself always seals.
 */
const IDENTITY_SEALER: SecretSealer = {
  seal: (secret) => Promise.resolve(secret),
  open: (sealed) => Promise.resolve(sealed),
  resealNeeded: () => Promise.resolve(false),
};

/**
 * A sealer as a container of `name` would have one: keypool's the real one (local AES key, its
 * own opened-secret cache per call, as each Lambda container has), keypool-unsealed's none.
 */
export function benchSealer(name: ContenderName): SecretSealer {
  return name === 'keypool-unsealed'
    ? IDENTITY_SEALER
    : createEsdkSealer({ current: { kind: 'local', key: BENCH_KEY } });
}

/** The adapters' reads, and the baseline's and the floor's own index query. */
const READS = new Set([...READ_OPERATIONS, 'query']);

/**
 * Counts requests and consumed capacity. A refused conditional write returns no
 * ConsumedCapacity but DynamoDB still charges it (1 WCU per KB of the item; ours are under
 * 1 KB), so it is counted as 1 WCU.
 */
export class CostMeter implements CapacityMeter {
  requests = 0;
  rcu = 0;
  wcu = 0;
  refusedWrites = 0;

  record(operation: string, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    this.requests++;
    const read = READS.has(operation);
    if (consumed === undefined) {
      if (!read) {
        this.refusedWrites++;
        this.wcu += 1;
      }
      return;
    }
    const units = (Array.isArray(consumed) ? consumed : [consumed]).reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
    if (read) this.rcu += units;
    else this.wcu += units;
  }

  snapshot(): { requests: number; rcu: number; wcu: number; refusedWrites: number } {
    return { requests: this.requests, rcu: this.rcu, wcu: this.wcu, refusedWrites: this.refusedWrites };
  }
}

export type { ContenderSetup, ProxySetup, UseFn };

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;

/**
 * keypool: lease + complete(success) through the library; each caller its own Broker, like
 * separate Lambda containers. The pool's policy says how many shards (keypool-sharded's has S).
 */
export function keypoolContender(
  setup: ContenderSetup,
  callers: number,
  sealing: 'keypool' | 'keypool-sharded' | 'keypool-unsealed' = 'keypool',
): UseFn {
  const store = new DynamoKeyStore({ client: setup.client, tableName: setup.tableName, meter: setup.meter });
  const poolStore = new DynamoPoolStore({ client: setup.client, tableName: setup.tableName, meter: setup.meter });
  const brokers = Array.from(
    { length: callers },
    () => new Broker({ store, poolStore, sealer: benchSealer(sealing), candidateLimit: setup.pageSize }),
  );
  return async (caller) => {
    const broker = brokers[caller % brokers.length] as Broker;
    try {
      const grant = await broker.lease(setup.pool, { maxUses: setup.maxUses });
      await broker.complete(setup.pool, grant.leaseId, { outcome: 'success' });
      return grant.keyId;
    } catch (error) {
      if (error instanceof NoUsableKey) return undefined;
      throw error;
    }
  };
}

async function queryIndex(
  setup: ContenderSetup,
  limit: number,
  partition: string = setup.pool,
): Promise<{ keyId: string; usageCount: number }[]> {
  const out = await setup.client.send(
    new QueryCommand({
      TableName: setup.tableName,
      IndexName: INDEX.name,
      KeyConditionExpression: '#upk = :pool AND #usk < :bound',
      ProjectionExpression: '#key, usageCount',
      ExpressionAttributeNames: { '#upk': INDEX.partitionKey, '#usk': INDEX.sortKey, '#key': KEY },
      ExpressionAttributeValues: { ':pool': partition, ':bound': usageSortKeyBound(setup.maxUses) },
      Limit: limit,
      ReturnConsumedCapacity: 'INDEXES',
    }),
  );
  setup.meter.record('query', out.ConsumedCapacity);
  return (out.Items ?? []).map((item) => ({ keyId: item[KEY] as string, usageCount: item.usageCount as number }));
}

/**
 * baseline: the old algorithm, faithfully: read the least recently used key with
 * count <= cap, then increment it in a separate write with no condition.
 */
export function baselineContender(setup: ContenderSetup): UseFn {
  return async () => {
    const [head] = await queryIndex(setup, 1);
    if (!head) return undefined;
    const nowMs = Date.now();
    const out = await setup.client.send(
      new UpdateCommand({
        TableName: setup.tableName,
        Key: { [KEY]: head.keyId },
        // No condition: this is the race the broker exists to close.
        UpdateExpression: 'ADD usageCount :one SET #usk = :usk, lastUsedAt = :iso',
        ExpressionAttributeNames: { '#usk': INDEX.sortKey },
        ExpressionAttributeValues: {
          ':one': 1,
          ':usk': usageSortKey(head.usageCount + 1, nowMs),
          ':iso': new Date(nowMs).toISOString(),
        },
        ReturnConsumedCapacity: 'INDEXES',
      }),
    );
    setup.meter.record('increment', out.ConsumedCapacity);
    return head.keyId;
  };
}

/**
 * floor: the least DynamoDB work one counted use needs: one index query, one conditional
 * write. Caller i takes candidate i mod n of the page so callers do not pile on one key; a
 * lost condition starts over with a fresh query. Over S shards each query reads a shard picked
 * at random, the next one when it is empty (a use is refused only when every shard is).
 */
export function floorContender(setup: ContenderSetup): UseFn {
  const shards = setup.shards ?? 1;
  return async (caller) => {
    const start = Math.floor(Math.random() * shards);
    let dry = 0;
    for (let attempt = 0; attempt < 50 && dry < shards; attempt++) {
      const page = await queryIndex(setup, setup.pageSize, usagePartition(setup.pool, (start + dry) % shards));
      if (page.length === 0) {
        dry++;
        continue;
      }
      const pick = page[(caller + attempt) % page.length] as { keyId: string; usageCount: number };
      const nowMs = Date.now();
      try {
        const out = await setup.client.send(
          new UpdateCommand({
            TableName: setup.tableName,
            Key: { [KEY]: pick.keyId },
            UpdateExpression: 'SET usageCount = :next, #usk = :usk, lastUsedAt = :iso',
            // Invariants: the cap, and counting on top of the count this caller saw.
            ConditionExpression: 'usageCount = :seen AND usageCount <= :max',
            ExpressionAttributeNames: { '#usk': INDEX.sortKey },
            ExpressionAttributeValues: {
              ':seen': pick.usageCount,
              ':max': setup.maxUses,
              ':next': pick.usageCount + 1,
              ':usk': usageSortKey(pick.usageCount + 1, nowMs),
              ':iso': new Date(nowMs).toISOString(),
            },
            ReturnConsumedCapacity: 'INDEXES',
          }),
        );
        setup.meter.record('write', out.ConsumedCapacity);
        return pick.keyId;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        setup.meter.record('write', undefined);
      }
    }
    return undefined;
  };
}

/** The use function of a contender by name. */
export function contender(name: ContenderName, setup: ContenderSetup, callers: number): UseFn {
  switch (name) {
    case 'keypool':
    case 'keypool-sharded':
    case 'keypool-unsealed':
      return keypoolContender(setup, callers, name);
    case 'baseline':
      return baselineContender(setup);
    case 'floor':
      return floorContender(setup);
    case 'keypool-proxied':
    case 'keypool-proxied-sharded':
      return keypoolProxiedContender(setup, callers, { idempotent: false, sealer: () => benchSealer(name) });
    case 'keypool-proxied-idem':
    case 'keypool-proxied-idem-sharded':
      return keypoolProxiedContender(setup, callers, { idempotent: true, sealer: () => benchSealer(name) });
    case 'floor-proxied':
    case 'floor-proxied-sharded':
      return floorProxiedContender(setup, callers, floorContender(setup));
  }
}
