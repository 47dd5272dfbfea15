/**
 * What keypool's two key stores share over the table (./dynamo-lease-store.ts, the lease path's;
 * ./dynamo-key-admin-store.ts, the operator's and the sweeps'): consistent reads that leave the
 * sealed secret out unless asked, and the undecryptable mark, which the lease path, reseal and
 * maintenance all write. As in both stores, every rule that must hold under concurrency is the
 * ConditionExpression of one request, named in a comment beside it after the domain rule it
 * states (lib/domain/rules.ts).
 */
import { GetCommand } from './dynamo-wire.js';
import { inUsageIndex, type ReportChange, statusStamp } from '../domain/rules.js';
import { type KeyRecord, PROXIED, type StatusStamp } from '../domain/types.js';
import type { KeyPageRead } from '../ports/key-pages.js';
import type { UndecryptableMark } from '../ports/undecryptable.js';
import { MAX_SORTED_COUNT, TABLE, USAGE_TIER } from '../table.js';
import { type ConditionalWrite, DynamoTable } from './dynamo-table.js';
import { reportCondition } from './report-condition.js';
import {
  type Item,
  projection,
  RECORD_ATTRIBUTES,
  SEALED_ATTRIBUTE,
  STATUS_ATTRIBUTES,
  toKeyRecord,
} from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;

/**
 * The lease's own slot, still open: it holds this lease's nonce and no outcome yet. Closing it
 * in the same write is what makes a use count (or be given back) once. Needs `#slot` and `:nonce`.
 */
export const OPEN_SLOT_OF_NONCE = 'L.#slot.n = :nonce AND attribute_not_exists(L.#slot.o)';

/**
 * The slot of a proxied use (Leasing.takeUse), not given back yet: it holds this use's nonce
 * and the PROXIED mark. Replacing the mark in the same write is what makes a refund apply once;
 * a slot leased again since holds another nonce. Needs `#slot`, `:nonce` and `:proxied`.
 */
export const PROXIED_SLOT_OF_NONCE = 'L.#slot.n = :nonce AND L.#slot.o = :proxied';

/** The lease's own slot as a write that ends it expects: open, or (`proxied`) holding the PROXIED mark. */
export function slotOfNonce(proxied: boolean | undefined, values: Item): string {
  if (!proxied) return OPEN_SLOT_OF_NONCE;
  values[':proxied'] = PROXIED;
  return PROXIED_SLOT_OF_NONCE;
}

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

/** The stamp's fields other than the status, each with its attribute and placeholder. */
const STAMP_FIELDS = [
  ['by', '#stBy'],
  ['reason', '#stReason'],
  ['at', '#stAt'],
  ['until', '#stUntil'],
] as const;

/**
 * The clauses that give a key the status `stamp`: the status, who set it, why, when and until
 * when, each removed where the stamp has none (an active key has none of them). Adds to
 * `parts`; uses `#status` and the `#st…`/`:st…` placeholders.
 */
export function stampClauses(stamp: StatusStamp, parts: Omit<KeyWriteParts, 'condition'>): void {
  parts.names['#status'] = STATUS_ATTRIBUTES.status;
  parts.values[':stStatus'] = stamp.status;
  parts.set.push('#status = :stStatus');
  for (const [field, name] of STAMP_FIELDS) {
    parts.names[name] = STATUS_ATTRIBUTES[field];
    const value = stamp[field];
    if (value === undefined) parts.remove.push(name);
    else {
      parts.values[`:${name.slice(1)}`] = value;
      parts.set.push(`${name} = :${name.slice(1)}`);
    }
  }
}

/**
 * A report's change as clauses of a key write (a completion's, a proxied refund's, an account's
 * state put on its keys): its stamp, the key out of the usage index for a verdict without an end
 * (a rest keeps it there, skipped by leases until it ends), and the condition it applies under,
 * returned — reportApplies: a report replaces only the statuses its change names (never an
 * operator's or the provider's disabled, undecryptable, retired, a more severe rest, or a rest
 * that lasts longer). Needs `:now`.
 */
export function reportClauses(change: ReportChange, parts: Omit<KeyWriteParts, 'condition'>): string {
  const condition = reportCondition(change, parts.names, parts.values);
  stampClauses(change.stamp, parts);
  if (!inUsageIndex(change.stamp.status, change.stamp.until !== undefined)) {
    parts.remove.push('#upk');
    parts.names['#upk'] = TABLE.usageIndex.partitionKey;
  }
  return condition;
}

/**
 * A condition that the key's status is still `seen` as read: the status, who set it, when and
 * until when (a writer of a status always writes when, so a status set again reads as
 * changed). Uses `#status`, the `#st…` names and `:seen…` values.
 */
export function stampAsRead(seen: StatusStamp, names: Record<string, string>, values: Item): string {
  names['#status'] = STATUS_ATTRIBUTES.status;
  values[':seenStatus'] = seen.status;
  const clauses = ['#status = :seenStatus'];
  for (const [field, name] of STAMP_FIELDS) {
    if (field === 'reason') continue;
    names[name] = STATUS_ATTRIBUTES[field];
    const value = seen[field];
    if (value === undefined) clauses.push(`attribute_not_exists(${name})`);
    else {
      values[`:seen${field}`] = value;
      clauses.push(`${name} = :seen${field}`);
    }
  }
  return clauses.join(' AND ');
}

/**
 * isOperatorStatus(...) as a condition: the key is retired, or disabled by an operator or by
 * nobody recorded (a `disabled` from before setters were kept). Every writer but an operator's
 * puts `NOT` before it. Needs `#status`, `#stBy`, `:retired`, `:disabled`, `:operator`.
 */
export const OPERATOR_STATUS =
  '(#status = :retired OR (#status = :disabled AND (attribute_not_exists(#stBy) OR #stBy = :operator)))';

/** The names and values OPERATOR_STATUS uses. */
export function operatorStatusTerms(names: Record<string, string>, values: Item): void {
  names['#status'] = STATUS_ATTRIBUTES.status;
  names['#stBy'] = STATUS_ATTRIBUTES.by;
  values[':retired'] = 'retired';
  values[':disabled'] = 'disabled';
  values[':operator'] = 'operator';
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

  /**
   * Marks the key from its status as read: the write applies only while that status still
   * holds (stampAsRead), so the status it keeps as `prior` is the one it replaces. A status
   * changed meanwhile is read again and the mark tried from it; a refusal for anything else
   * (another ciphertext, the lease no longer open, another pool) answers false.
   */
  async markUndecryptable(mark: UndecryptableMark): Promise<boolean> {
    let current = await this.markTarget(mark);
    for (let tries = 0; current && tries < 3; tries++) {
      if (await this.conditionalUpdateOk('undecryptable', this.undecryptableWrite(mark, current))) return true;
      const now = await this.markTarget(mark);
      const unchanged =
        now !== undefined &&
        JSON.stringify(statusStamp(now)) === JSON.stringify(statusStamp(current)) &&
        now.usageCount === current.usageCount;
      current = unchanged ? undefined : now;
    }
    return false;
  }

  /** The key a mark names, as it is now (without its secret), if it is in the mark's pool. */
  private async markTarget(mark: UndecryptableMark): Promise<KeyRecord | undefined> {
    const record = toKeyRecord(await this.readProjected(mark.keyId, RECORD_PROJECTION));
    return record?.pool === mark.pool ? record : undefined;
  }

  /** One page of the pool-keys index (ids only), then the items themselves, in id order. */
  protected async readPool<K extends { keyId: string; pool: string }>(
    pool: string,
    limit: number,
    afterKeyId: string | undefined,
    read: (item: Item) => K | undefined,
    fields?: ReturnType<typeof projection>,
  ): Promise<KeyPageRead<K>> {
    const { ids, lastId } = await this.poolIndexPage('pool-keys', pool, limit, afterKeyId);
    const items = await this.batchGet('pool-items', ids, fields);
    // An item that moved to another pool between the two reads is not this pool's any more.
    const keys = items
      .map(read)
      .filter((key): key is K => key?.pool === pool)
      .sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
    return { keys, lastKeyId: lastId };
  }

  protected async conditionalUpdateOk(operation: string, write: ConditionalWrite): Promise<boolean> {
    return (await this.conditionalUpdate(operation, write, 'updated')).ok;
  }

  /**
   * markUndecryptable's conditional write over the key as read (`current`): its status kept as
   * `prior`, the status set to undecryptable by sealing; a key already undecryptable keeps the
   * prior it has. With a lease, its slot closed and its use given back (the sort key's tier
   * moving only from a count it spells out, as refundSortKey).
   */
  private undecryptableWrite(mark: UndecryptableMark, current: KeyRecord): ConditionalWrite {
    const names: Record<string, string> = { '#pool': 'pool', '#sealed': SEALED_ATTRIBUTE };
    const values: Item = { ':pool': mark.pool, ':seen': mark.sealed };
    const set: string[] = [];
    const remove: string[] = [];
    // Invariants: only the ciphertext that failed to open is judged (one resealed or
    // re-imported meanwhile is not), in its own pool; the status kept is the one replaced.
    let condition = `#pool = :pool AND #sealed = :seen AND ${stampAsRead(statusStamp(current), names, values)}`;
    if (current.status === 'undecryptable') set.push('#status = #status');
    else {
      names['#prior'] = STATUS_ATTRIBUTES.prior;
      values[':prior'] = statusStamp(current);
      set.push('#prior = :prior');
      stampClauses(
        {
          status: 'undecryptable',
          by: 'sealing',
          ...(mark.reason === undefined ? {} : { reason: mark.reason }),
          at: mark.at ?? new Date().toISOString(),
        },
        { set, remove, names, values },
      );
      names['#upk'] = INDEX.partitionKey;
      remove.push('#upk');
    }
    if (mark.lease) {
      // The lease just written for it ends here and gives its use back: counting once, as a
      // refused completion would (the slot is still this lease's and still open, or still
      // holds the proxied use's mark).
      names['#slot'] = String(mark.lease.slot);
      values[':nonce'] = mark.lease.nonce;
      values[':failure'] = 'failure';
      values[':one'] = 1;
      const sortKey = refundSortKey(current.usageCount <= MAX_SORTED_COUNT, names, values);
      set.push('L.#slot.o = :failure', 'usageCount = usageCount - :one', ...sortKey.set);
      condition += ` AND ${slotOfNonce(mark.lease.proxied, values)}${sortKey.condition}`;
    }
    return keyWrite(mark.keyId, { set, remove, condition, names, values });
  }
}
