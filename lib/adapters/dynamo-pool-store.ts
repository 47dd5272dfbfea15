/**
 * The DynamoDB implementation of PoolStore: one item per pool in keypool's table (keyId
 * `pool#<name>`), listed through the pool-keys index under POOL_DIRECTORY (lib/table.ts).
 */
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { PoolStore } from '../domain/key-store.js';
import { POOL_DEFAULTS, type PoolPolicy, type PoolSettings, PROVIDERS, type Provider } from '../domain/types.js';
import { POOL_DIRECTORY, POOL_RECORD_PREFIX, TABLE } from '../table.js';
import { DynamoTable } from './dynamo-table.js';
import type { Item } from './key-item.js';

const { partitionKey: KEY, poolIndex: POOL_INDEX } = TABLE;
const SETTINGS = Object.keys(POOL_DEFAULTS) as (keyof PoolSettings)[];

const recordId = (pool: string): string => `${POOL_RECORD_PREFIX}${pool}`;

/** The policy an item holds; a setting an older item lacks reads as its default. */
function toPolicy(item: Item | undefined): PoolPolicy | undefined {
  if (!item || typeof item.name !== 'string') return undefined;
  const number = (field: keyof PoolSettings): number => (typeof item[field] === 'number' ? item[field] : (POOL_DEFAULTS[field] as number));
  const provider = (PROVIDERS as readonly string[]).includes(String(item.provider)) ? (item.provider as Provider) : POOL_DEFAULTS.provider;
  return {
    pool: item.name,
    maxUses: number('maxUses'),
    leaseTtlSeconds: number('leaseTtlSeconds'),
    cooldownSeconds: number('cooldownSeconds'),
    provider,
    minCredits: number('minCredits'),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
  };
}

export class DynamoPoolStore extends DynamoTable implements PoolStore {
  async get(pool: string): Promise<PoolPolicy | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { [KEY]: recordId(pool) }, ConsistentRead: true, ...this.capacity }));
    this.meter?.record('pool', out.ConsumedCapacity);
    return toPolicy(out.Item);
  }

  put(pool: string, settings: Partial<PoolSettings>, nowIso: string): Promise<PoolPolicy> {
    return this.upsert(pool, settings, nowIso, true);
  }

  ensure(pool: string, nowIso: string): Promise<PoolPolicy> {
    return this.upsert(pool, {}, nowIso, false);
  }

  /**
   * One UpdateItem, no read: what is given is set, what is not is set to its default only if
   * the item has none (if_not_exists), so it creates a pool and changes an existing one alike.
   * Two operators changing different settings at once both land.
   */
  private async upsert(pool: string, settings: Partial<PoolSettings>, nowIso: string, touch: boolean): Promise<PoolPolicy> {
    const names: Record<string, string> = { '#pool': POOL_INDEX.partitionKey };
    const values: Item = { ':directory': POOL_DIRECTORY, ':name': pool, ':now': nowIso };
    const set = ['#pool = :directory', '#name = :name', 'createdAt = if_not_exists(createdAt, :now)'];
    names['#name'] = 'name';
    set.push(touch ? 'updatedAt = :now' : 'updatedAt = if_not_exists(updatedAt, :now)');
    SETTINGS.forEach((field, i) => {
      names[`#s${i}`] = field;
      const given = settings[field];
      values[`:s${i}`] = given ?? POOL_DEFAULTS[field];
      set.push(given === undefined ? `#s${i} = if_not_exists(#s${i}, :s${i})` : `#s${i} = :s${i}`);
    });
    const result = await this.conditionalUpdate('pool-put', {
      Key: { [KEY]: recordId(pool) },
      UpdateExpression: `SET ${set.join(', ')}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    const policy = toPolicy(result.item);
    if (!policy) throw new Error(`pool record for "${pool}" was not written`);
    return policy;
  }

  async list(): Promise<PoolPolicy[]> {
    const ids: string[] = [];
    let start: Item | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: POOL_INDEX.name,
          KeyConditionExpression: '#pool = :directory',
          ExpressionAttributeNames: { '#pool': POOL_INDEX.partitionKey },
          ExpressionAttributeValues: { ':directory': POOL_DIRECTORY },
          ExclusiveStartKey: start,
          ...this.capacity,
        }),
      );
      this.meter?.record('pools', out.ConsumedCapacity);
      ids.push(...(out.Items ?? []).map((item) => item[KEY] as string));
      start = out.LastEvaluatedKey;
    } while (start);
    const items = await this.batchGet('pool-items', ids);
    return items
      .map(toPolicy)
      .filter((policy): policy is PoolPolicy => policy !== undefined)
      .sort((a, b) => a.pool.localeCompare(b.pool));
  }
}
