/**
 * What keypool's two key stores share over the table (./dynamo-lease-store.ts, the lease path's;
 * ./dynamo-key-admin-store.ts, the operator's and the sweeps'): consistent reads that leave the
 * sealed secret out unless asked, and the undecryptable mark, which the lease path, reseal and
 * maintenance all write. As in both stores, every rule that must hold under concurrency is the
 * ConditionExpression of one request, named in a comment beside it after the domain rule it
 * states (lib/domain/rules.ts).
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { UndecryptableMark } from '../ports/undecryptable.js';
import { MAX_SORTED_COUNT, TABLE, USAGE_TIER } from '../table.js';
import { type ConditionalWrite, DynamoTable } from './dynamo-table.js';
import { type Item, projection, RECORD_ATTRIBUTES, SEALED_ATTRIBUTE, toKeyRecord } from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;

/**
 * The lease's own slot, still open: it holds this lease's nonce and no outcome yet. Closing it
 * in the same write is what makes a use count (or be given back) once. Needs `#slot` and `:nonce`.
 */
export const OPEN_SLOT_OF_NONCE = 'L.#slot.n = :nonce AND attribute_not_exists(L.#slot.o)';

// Every path but the lease and maintenance reads through these projections (or asks for only
// the attributes it wrote back): the sealed secret is never read where it is not opened.
export const RECORD_PROJECTION = projection(RECORD_ATTRIBUTES);
export const SLOTTED_PROJECTION = projection([...RECORD_ATTRIBUTES, 'L']);

/**
 * The sort-key part of a write that gives a use back. The tier moves down one only from a
 * count the sort key spells out (at most MAX_SORTED_COUNT); past it (lease-less increments)
 * the count sorts in the top tier before and after, so the tier stays. The condition says
 * which of the two the write expects: a refund never leaves a key sorted below its count (at
 * a cap of 1,000 that key would be a candidate every lease is refused).
 */
export function refundSortKey(
  moveTier: boolean,
  names: Record<string, string>,
  values: Item,
): { set: string[]; condition: string } {
  values[':top'] = MAX_SORTED_COUNT;
  if (!moveTier) return { set: [], condition: ' AND usageCount > :top' };
  names['#usk'] = INDEX.sortKey;
  values[':tier'] = USAGE_TIER;
  return { set: ['#usk = #usk - :tier'], condition: ' AND usageCount <= :top' };
}

/** The parts of a conditional write to one key, as the stores assemble them clause by clause. */
export interface KeyWriteParts {
  /** SET clauses (at least one) */
  set: string[];
  /** REMOVE clauses, if any */
  remove: string[];
  condition: string;
  names: Record<string, string>;
  values: Item;
}

/** The conditional UpdateItem of the key `keyId`: `SET ...` and, when there is any, ` REMOVE ...`. */
export function keyWrite(keyId: string, parts: KeyWriteParts): ConditionalWrite {
  return {
    Key: { [KEY]: keyId },
    UpdateExpression: `SET ${parts.set.join(', ')}${parts.remove.length ? ` REMOVE ${parts.remove.join(', ')}` : ''}`,
    ConditionExpression: parts.condition,
    ExpressionAttributeNames: parts.names,
    ExpressionAttributeValues: parts.values,
  };
}

/** The base of the key stores: the table, its reads by key id, and the undecryptable mark. */
export class DynamoKeyTable extends DynamoTable {
  /** A consistent read of only the projected attributes (never the secret). */
  protected readProjected(keyId: string, fields: ReturnType<typeof projection>): Promise<Item | undefined> {
    return this.readItem('record', keyId, fields);
  }

  /**
   * One consistent GetItem of the item `id`, reported to the meter as `operation`: the whole
   * item (a sealed secret included) unless `fields` projects it.
   */
  protected async readItem(
    operation: string,
    id: string,
    fields?: ReturnType<typeof projection>,
  ): Promise<Item | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [KEY]: id },
        ConsistentRead: true,
        ...fields,
        ...this.capacity,
      }),
    );
    this.meter?.record(operation, out.ConsumedCapacity);
    return out.Item;
  }

  async markUndecryptable(mark: UndecryptableMark): Promise<boolean> {
    if (await this.conditionalUpdateOk('undecryptable', this.undecryptableWrite(mark, true))) return true;
    // A lease's use refused for its count past the top tier (rare): the same write, without the tier move.
    const current = mark.lease ? toKeyRecord(await this.readProjected(mark.keyId, RECORD_PROJECTION)) : undefined;
    return (
      current !== undefined &&
      current.usageCount > MAX_SORTED_COUNT &&
      this.conditionalUpdateOk('undecryptable', this.undecryptableWrite(mark, false))
    );
  }

  protected async conditionalUpdateOk(operation: string, write: ConditionalWrite): Promise<boolean> {
    return (await this.conditionalUpdate(operation, write, 'updated')).ok;
  }

  /** markUndecryptable's conditional write; `moveTier` as refundSortKey (with a lease only). */
  private undecryptableWrite(mark: UndecryptableMark, moveTier: boolean): ConditionalWrite {
    const names: Record<string, string> = {
      '#pool': 'pool',
      '#status': 'status',
      '#upk': INDEX.partitionKey,
      '#sealed': SEALED_ATTRIBUTE,
    };
    const values: Item = { ':pool': mark.pool, ':undecryptable': 'undecryptable', ':seen': mark.sealed };
    const set = ['#status = :undecryptable'];
    // Invariant: only the ciphertext that failed to open is judged (one resealed or re-imported
    // meanwhile is not), in its own pool.
    let condition = '#pool = :pool AND #sealed = :seen';
    if (mark.lease) {
      // The lease just written for it ends here and gives its use back: counting once, as a
      // refused completion would (the slot is still this lease's and still open).
      names['#slot'] = String(mark.lease.slot);
      values[':nonce'] = mark.lease.nonce;
      values[':failure'] = 'failure';
      values[':one'] = 1;
      const sortKey = refundSortKey(moveTier, names, values);
      set.push('L.#slot.o = :failure', 'usageCount = usageCount - :one', ...sortKey.set);
      condition += ` AND ${OPEN_SLOT_OF_NONCE}${sortKey.condition}`;
    }
    return keyWrite(mark.keyId, { set, remove: ['#upk', 'cooldownUntil'], condition, names, values });
  }
}
