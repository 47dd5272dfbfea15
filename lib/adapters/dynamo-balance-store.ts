/**
 * Maintenance's writes to the key table. Each is one conditional UpdateItem that touches only
 * the balance attributes, the status and the index partition attribute `upk` (set from the
 * key's home `ush`): never
 * usageCount, the sort key `usk` or the lease slots `L`, so it cannot lose a count a
 * concurrent lease or completion makes.
 */
import type { BalanceStore, BalanceWrite, BalanceWriteResult } from '../ports/balance-store.js';
import { TABLE } from '../table.js';
import { DynamoTable } from './dynamo-table.js';
import { BACK_INTO_INDEX, type Item, toKeyRecord } from './key-item.js';

export class DynamoBalanceStore extends DynamoTable implements BalanceStore {
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
        // Back into the index partition of its home shard (`ush`, absent for shard 0: the pool),
        // whatever the pool's shard count now: no read of the pool, no stale count. Its sort
        // key still holds its count and last use.
        set.push('#status = :active', BACK_INTO_INDEX);
        names['#pool'] = 'pool';
        names['#ush'] = TABLE.usageIndex.home;
        values[':active'] = 'active';
        remove.push('cooldownUntil');
      }
    }
    if (set.length === 0 && remove.length === 0) throw new Error('a balance write with nothing to write');
    const result = await this.conditionalUpdate('balance', {
      Key: { [TABLE.partitionKey]: write.keyId },
      UpdateExpression: `${set.length ? `SET ${set.join(', ')}` : ''}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
    });
    // The item (secret included) is turned into its record here; the secret goes no further.
    const key = toKeyRecord(result.item);
    return result.ok && key ? { applied: true, key } : { applied: false, current: key };
  }
}
