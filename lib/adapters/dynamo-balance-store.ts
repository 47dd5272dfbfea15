/**
 * Maintenance's writes to the key table. Each is one conditional UpdateItem that touches only
 * the balance attributes, the status and the index partition attribute `upk`: never
 * usageCount, the sort key `usk` or the lease slots `L`, so it cannot lose a count a
 * concurrent lease or completion makes.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { KeyStatus } from '../domain/types.js';
import type { BalanceStore, BalanceWrite, BalanceWriteResult, MaintainedKey } from '../maintenance/ports.js';
import { TABLE } from '../table.js';

type Item = Record<string, unknown>;

export interface DynamoBalanceStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
}

/** The secret-free state of an item (the item itself may hold the secret: it is dropped here). */
function toState(item: Item | undefined): MaintainedKey | undefined {
  if (!item || typeof item[TABLE.partitionKey] !== 'string') return undefined;
  return {
    keyId: item[TABLE.partitionKey] as string,
    pool: item.pool as string,
    status: item.status as KeyStatus,
    usageCount: item.usageCount as number,
    ...(typeof item.cooldownUntil === 'number' ? { cooldownUntil: item.cooldownUntil } : {}),
    ...(typeof item.credits === 'number' ? { credits: item.credits } : {}),
    ...(typeof item.creditsCheckedAt === 'string' ? { creditsCheckedAt: item.creditsCheckedAt } : {}),
  };
}

export class DynamoBalanceStore implements BalanceStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;

  constructor(options: DynamoBalanceStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  async write(write: BalanceWrite): Promise<BalanceWriteResult> {
    const set: string[] = [];
    const remove: string[] = [];
    const names: Record<string, string> = { '#key': TABLE.partitionKey };
    const values: Item = {};
    if (write.credits !== undefined) {
      set.push('credits = :credits', 'creditsCheckedAt = :at');
      values[':credits'] = write.credits;
      values[':at'] = write.checkedAt;
    }
    // Invariant: the key exists. A key deleted meanwhile is not recreated as a bare balance item.
    let condition = 'attribute_exists(#key)';
    if (write.change !== 'none') {
      names['#status'] = 'status';
      names['#upk'] = TABLE.usageIndex.partitionKey;
      values[':seen'] = write.seenStatus;
      // Invariant: a status change never undoes a concurrent one. It applies only while the key
      // still has the status the decision was made from; a lease keeps "active" (and may turn
      // "cooling" into "active"), so a changed status means someone else decided first.
      condition += ' AND #status = :seen';
      if (write.change === 'exhaust') {
        // Out of the sparse index: an exhausted key costs leases no reads.
        set.push('#status = :exhausted');
        values[':exhausted'] = 'exhausted';
        remove.push('#upk');
      } else if (write.change === 'disable') {
        set.push('#status = :disabled');
        values[':disabled'] = 'disabled';
        remove.push('#upk');
      } else {
        // Back into the pool's index partition; its sort key still holds its count and last use.
        set.push('#status = :active', '#upk = #pool');
        names['#pool'] = 'pool';
        values[':active'] = 'active';
        remove.push('cooldownUntil');
      }
    }
    if (set.length === 0 && remove.length === 0) throw new Error('a balance write with nothing to write');
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { [TABLE.partitionKey]: write.keyId },
          UpdateExpression: `${set.length ? `SET ${set.join(', ')}` : ''}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const key = toState(out.Attributes);
      return key ? { applied: true, key } : { applied: false, current: undefined };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // The old item (secret included) is read here and never rethrown.
      return { applied: false, current: toState(error.Item ? unmarshall(error.Item) : undefined) };
    }
  }
}
