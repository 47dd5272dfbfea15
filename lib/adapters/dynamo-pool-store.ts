/**
 * The DynamoDB implementation of PoolStore: one item per pool in keypool's table (keyId
 * `pool#<name>`), listed through the pool-keys index under POOL_DIRECTORY (lib/table.ts).
 */
import { DeleteCommand, GetCommand } from './dynamo-wire.js';
import type { PoolStore } from '../ports/pool-store.js';
import {
  DEFAULT_SHARDS,
  POOL_DEFAULTS,
  type PoolPolicy,
  type PoolSettings,
  type Provider,
  PROVIDERS,
  RATE_LIMIT_SCOPES,
  type RateLimitScope,
} from '../domain/types.js';
import { shardSpan } from '../domain/shards.js';
import { POOL_DIRECTORY, POOL_RECORD_PREFIX, TABLE } from '../table.js';
import { DynamoTable, isConditionFailure } from './dynamo-table.js';
import type { Item } from './key-item.js';

const { partitionKey: KEY, poolIndex: POOL_INDEX } = TABLE;
const SETTINGS = Object.keys(POOL_DEFAULTS) as (keyof PoolSettings)[];

const recordId = (pool: string): string => `${POOL_RECORD_PREFIX}${pool}`;

/** The policy an item holds; a setting an older item lacks reads as its default. */
function toPolicy(item: Item | undefined): PoolPolicy | undefined {
  if (!item || typeof item.name !== 'string') return undefined;
  const number = (field: keyof PoolSettings): number =>
    typeof item[field] === 'number' ? item[field] : (POOL_DEFAULTS[field] as number);
  const provider = (PROVIDERS as readonly string[]).includes(String(item.provider))
    ? (item.provider as Provider)
    : POOL_DEFAULTS.provider;
  return {
    pool: item.name,
    maxUses: number('maxUses'),
    leaseTtlSeconds: number('leaseTtlSeconds'),
    cooldownSeconds: number('cooldownSeconds'),
    provider,
    minCredits: number('minCredits'),
    shards: number('shards'),
    maxClientCooldownSeconds: number('maxClientCooldownSeconds'),
    maxClientReportsPerMinute: number('maxClientReportsPerMinute'),
    rateLimitScope: (RATE_LIMIT_SCOPES as readonly string[]).includes(String(item.rateLimitScope))
      ? (item.rateLimitScope as RateLimitScope)
      : POOL_DEFAULTS.rateLimitScope,
    proxyAttempts: number('proxyAttempts'),
    proxyTimeoutSeconds: number('proxyTimeoutSeconds'),
    ...(typeof item.previousShards === 'number' ? { previousShards: item.previousShards } : {}),
    ...(typeof item.shardsChangedAt === 'string' ? { shardsChangedAt: item.shardsChangedAt } : {}),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
  };
}

/** How often a change of shards is tried again when another operator's write came between the read and the write. */
const SHARD_CHANGE_TRIES = 5;

/** A condition on the stored shard count, a pool record from before sharding (none) reading as the default. */
function shardsAre(value: string, shards: number): string {
  return shards === DEFAULT_SHARDS ? `(attribute_not_exists(#shards) OR #shards = ${value})` : `#shards = ${value}`;
}

export class DynamoPoolStore extends DynamoTable implements PoolStore {
  async get(pool: string): Promise<PoolPolicy | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [KEY]: recordId(pool) },
        ConsistentRead: true,
        ...this.capacity,
      }),
    );
    this.meter?.record('pool', out.ConsumedCapacity);
    return toPolicy(out.Item);
  }

  /**
   * Settings other than `shards`: one UpdateItem, no read. A new shard count is first written
   * on the condition that it is the stored one already (or the pool is new): most puts leave it
   * as it is. When it differs, the refused write returns the record, and the change is written
   * on the condition that the record still holds what was read, together with previousShards
   * (the widest layout a key may still sit in, so leases keep finding every key) and
   * shardsChangedAt; a concurrent change makes it read and try again.
   */
  async put(pool: string, settings: Partial<PoolSettings>, nowIso: string): Promise<PoolPolicy> {
    const shards = settings.shards;
    if (shards === undefined) return this.written(pool, await this.upsert(pool, settings, nowIso, true));
    for (let tries = 0; tries < SHARD_CHANGE_TRIES; tries++) {
      const same = await this.upsert(pool, settings, nowIso, true, {
        condition: `attribute_not_exists(#key) OR ${shardsAre(':shards', shards)}`,
        values: { ':shards': shards },
      });
      if ('policy' in same) return same.policy;
      const seen = toPolicy(same.current);
      if (!seen) continue;
      const widest = shardSpan(seen);
      const changed = await this.upsert(pool, settings, nowIso, true, {
        condition: `${shardsAre(':seenShards', seen.shards)} AND ${seen.previousShards === undefined ? 'attribute_not_exists(#previous)' : '#previous = :seenPrevious'}`,
        values: {
          ':seenShards': seen.shards,
          ':widest': widest,
          ...(seen.previousShards === undefined ? {} : { ':seenPrevious': seen.previousShards }),
        },
        set: ['#previous = :widest', 'shardsChangedAt = :now'],
      });
      if ('policy' in changed) return changed.policy;
    }
    throw new Error(`the shards of pool "${pool}" kept changing under concurrent writes; try again`);
  }

  async finishReshard(pool: string, layout: { shards: number; previousShards: number }): Promise<boolean> {
    const result = await this.conditionalUpdate(
      'pool-reshard',
      {
        Key: { [KEY]: recordId(pool) },
        UpdateExpression: 'REMOVE #previous, shardsChangedAt',
        // Invariant: only the reshard that was swept ends: a change of shards since the sweep
        // began leaves previousShards for the next run.
        ConditionExpression: `${shardsAre(':shards', layout.shards)} AND #previous = :previous`,
        ExpressionAttributeNames: { '#shards': 'shards', '#previous': 'previousShards' },
        ExpressionAttributeValues: { ':shards': layout.shards, ':previous': layout.previousShards },
      },
      'updated',
    );
    return result.ok;
  }

  async ensure(pool: string, nowIso: string): Promise<PoolPolicy> {
    return this.written(pool, await this.upsert(pool, {}, nowIso, false));
  }

  private written(pool: string, result: { policy: PoolPolicy } | { current: Item | undefined }): PoolPolicy {
    if (!('policy' in result)) throw new Error(`pool record for "${pool}" was not written`);
    return result.policy;
  }

  /**
   * One UpdateItem, no read: what is given is set, what is not is set to its default only if
   * the item has none (if_not_exists), so it creates a pool and changes an existing one alike.
   * Two operators changing different settings at once both land.
   */
  private async upsert(
    pool: string,
    settings: Partial<PoolSettings>,
    nowIso: string,
    touch: boolean,
    shardChange?: { condition: string; values: Item; set?: string[] },
  ): Promise<{ policy: PoolPolicy } | { current: Item | undefined }> {
    const names: Record<string, string> = { '#pool': POOL_INDEX.partitionKey };
    const values: Item = { ':directory': POOL_DIRECTORY, ':name': pool, ':now': nowIso };
    const set = ['#pool = :directory', '#name = :name', 'createdAt = if_not_exists(createdAt, :now)'];
    if (shardChange) {
      Object.assign(names, { '#key': KEY, '#shards': 'shards', '#previous': 'previousShards' });
      Object.assign(values, shardChange.values);
      set.push(...(shardChange.set ?? []));
    }
    names['#name'] = 'name';
    set.push(touch ? 'updatedAt = :now' : 'updatedAt = if_not_exists(updatedAt, :now)');
    SETTINGS.forEach((field, i) => {
      names[`#s${i}`] = field;
      const given = settings[field];
      values[`:s${i}`] = given ?? POOL_DEFAULTS[field];
      set.push(given === undefined ? `#s${i} = if_not_exists(#s${i}, :s${i})` : `#s${i} = :s${i}`);
    });
    const update = `SET ${set.join(', ')}`;
    const expressions = `${update} ${shardChange?.condition ?? ''}`;
    // DynamoDB refuses names and values an expression does not use.
    const used = <T>(entries: Record<string, T>): Record<string, T> =>
      Object.fromEntries(
        Object.entries(entries).filter(([placeholder]) => new RegExp(`${placeholder}\\b`).test(expressions)),
      );
    const result = await this.conditionalUpdate('pool-put', {
      Key: { [KEY]: recordId(pool) },
      UpdateExpression: update,
      // Invariant (a change of shards only): written over exactly the shard layout read.
      ...(shardChange ? { ConditionExpression: shardChange.condition } : {}),
      ExpressionAttributeNames: used(names),
      ExpressionAttributeValues: used(values),
    });
    if (!result.ok) return { current: result.item };
    const policy = toPolicy(result.item);
    if (!policy) throw new Error(`pool record for "${pool}" was not written`);
    return { policy };
  }

  async remove(pool: string): Promise<boolean> {
    try {
      const out = await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { [KEY]: recordId(pool) },
          // Only a pool record that is there: deleting one already gone answers false.
          ConditionExpression: 'attribute_exists(#key)',
          ExpressionAttributeNames: { '#key': KEY },
          ...this.capacity,
        }),
      );
      this.meter?.record('pool-delete', out.ConsumedCapacity);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  async list(): Promise<PoolPolicy[]> {
    const ids = await this.partitionIds('pools', POOL_INDEX, POOL_DIRECTORY);
    const items = await this.batchGet('pool-items', ids);
    return items
      .map(toPolicy)
      .filter((policy): policy is PoolPolicy => policy !== undefined)
      .sort((a, b) => a.pool.localeCompare(b.pool));
  }
}
