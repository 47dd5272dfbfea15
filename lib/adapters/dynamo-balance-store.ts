/**
 * Maintenance's writes to the key table. Each is one conditional UpdateItem that touches only
 * the balance attributes, the status (with who set it, why, when: STATUS_ATTRIBUTES) and the
 * index partition attribute `upk` (set from the key's home `ush`): never usageCount, the sort
 * key `usk` or the lease slots `L`, so it cannot lose a count a concurrent lease or completion
 * makes.
 */
import { balanceStamp } from '../domain/rules.js';
import type { BalanceStore, BalanceWrite, BalanceWriteResult } from '../ports/balance-store.js';
import { TABLE } from '../table.js';
import { keyWrite, OPERATOR_STATUS, operatorStatusTerms, stampClauses } from './dynamo-key-table.js';
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
    const stamp = balanceStamp(write.change, write.checkedAt);
    if (stamp) {
      // Invariants: a status change never undoes a concurrent one. It applies only while the
      // key still has the status, and the setter, the decision was made from; a lease keeps
      // "active" (and may turn an ended rest into "active"), so a changed status or setter
      // means someone else decided first. And an operator's disabled or retired is never
      // maintenance's to change, whatever was seen (isOperatorStatus): a key retired while its
      // balance was read stays retired.
      stampClauses(stamp, { set, remove, names, values });
      operatorStatusTerms(names, values);
      values[':seen'] = write.seenStatus;
      condition += ` AND #status = :seen AND NOT ${OPERATOR_STATUS} AND `;
      if (write.seenBy === undefined) condition += 'attribute_not_exists(#stBy)';
      else {
        values[':seenBy'] = write.seenBy;
        condition += '#stBy = :seenBy';
      }
      names['#upk'] = TABLE.usageIndex.partitionKey;
      if (stamp.status === 'active') {
        // Invariant: a read never brings back a key from a status set after its request went
        // out (`checkedAt`): a caller's report made again while the balance was read has the
        // same status and setter, and is newer than the read (a status with a setter always
        // has its moment). A verdict against the key still applies over it.
        values[':askedAt'] = write.checkedAt;
        condition += ' AND (attribute_not_exists(#stAt) OR #stAt <= :askedAt)';
        // Back into the index partition of its home shard (`ush`, absent for shard 0: the
        // pool), whatever the pool's shard count now: no read of the pool, no stale count. Its
        // sort key still holds its count and last use.
        names['#pool'] = 'pool';
        names['#ush'] = TABLE.usageIndex.home;
        set.push(BACK_INTO_INDEX);
      } else {
        // Out of the sparse index: an exhausted or disabled key costs leases no reads.
        remove.push('#upk');
      }
    }
    if (set.length === 0) throw new Error('a balance write with nothing to write');
    const result = await this.conditionalUpdate(
      'balance',
      keyWrite(write.keyId, { set, remove, condition, names, values }),
    );
    // The item (secret included) is turned into its record here; the secret goes no further.
    const key = toKeyRecord(result.item);
    return result.ok && key ? { applied: true, key } : { applied: false, current: key };
  }
}
