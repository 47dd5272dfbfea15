/**
 * The operator's and the sweeps' store over DynamoDB: import (KeyAdminStore's sibling
 * ImportStore), status and count changes and the pool's pages (KeyAdminStore), reseal's secret
 * replacement (ResealStore) and a reshard's placements and moves (ReshardStore). Every write is
 * one conditional request whose ConditionExpression carries the invariant, named in a comment
 * beside it after the domain rule it states (lib/domain/rules.ts); every read but the sweeps'
 * that open secrets leaves the sealed secret out.
 */
import { PutCommand, ScanCommand } from './dynamo-wire.js';
import { inUsageIndex, operatorStamp, restoredStatus } from '../domain/rules.js';
import type { KeyRecord, StoredKey } from '../domain/types.js';
import type { ImportStore } from '../ports/import-store.js';
import type { KeyAdminStore, KeyUpdate, KeyUpdateResult, RetireResult, Retirement } from '../ports/key-admin-store.js';
import type { KeyPageRead } from '../ports/key-pages.js';
import type { ResealStore, SecretReplacement } from '../ports/reseal-store.js';
import type { KeyMove, KeyMoveResult, KeyPlacement, ReshardStore } from '../ports/reshard-store.js';
import { partitionShard, TABLE, usagePartition, usageSortKeyShift } from '../table.js';
import { DynamoKeyTable, type KeyWriteParts, keyWrite, RECORD_PROJECTION, stampClauses } from './dynamo-key-table.js';
import { isConditionFailure } from './dynamo-table.js';
import {
  BACK_INTO_INDEX,
  fromKeyItem,
  homeShard,
  type Item,
  PLAIN_ATTRIBUTE,
  projection,
  SEALED_ATTRIBUTE,
  STATUS_ATTRIBUTES,
  toKeyItem,
  toKeyRecord,
} from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;

/** The status of a retired key (lib/domain/types.ts). */
const RETIRED = 'retired';

const PLACEMENT_PROJECTION = projection([KEY, 'pool', INDEX.partitionKey, INDEX.home]);

/** Where an item sits in the usage order; undefined for an item that is not a key. */
function toPlacement(item: Item | undefined): KeyPlacement | undefined {
  if (!item || typeof item[KEY] !== 'string' || typeof item.pool !== 'string') return undefined;
  const upk = item[INDEX.partitionKey];
  return { keyId: item[KEY], pool: item.pool, shard: homeShard(item), indexedIn: partitionShard(item.pool, upk) };
}

export class DynamoKeyAdminStore
  extends DynamoKeyTable
  implements KeyAdminStore, ImportStore, ResealStore, ReshardStore
{
  async insert(key: StoredKey): Promise<{ inserted: boolean; key: KeyRecord }> {
    const item = toKeyItem(key);
    try {
      const out = await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          // Invariant: one item per secret. Importing a key again adds nothing and changes nothing.
          ConditionExpression: 'attribute_not_exists(#key)',
          ExpressionAttributeNames: { '#key': KEY },
          // The existing item (and its sealed secret) is not returned: import only seals.
          ...this.capacity,
        }),
      );
      this.meter?.record('insert', out.ConsumedCapacity);
      return { inserted: true, key: toKeyRecord(item) as KeyRecord };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.meter?.record('insert', undefined);
      const existing = toKeyRecord(await this.readProjected(key.keyId, RECORD_PROJECTION));
      if (!existing) throw error;
      return { inserted: false, key: existing };
    }
  }

  async record(pool: string, keyId: string): Promise<KeyRecord | undefined> {
    const record = toKeyRecord(await this.readProjected(keyId, RECORD_PROJECTION));
    return record?.pool === pool ? record : undefined;
  }

  async replaceSecret(replacement: SecretReplacement): Promise<boolean> {
    const from = replacement.from.sealed ? SEALED_ATTRIBUTE : PLAIN_ATTRIBUTE;
    const names: Record<string, string> = { '#pool': 'pool', '#sealed': SEALED_ATTRIBUTE, '#from': from };
    const values: Item = { ':pool': replacement.pool, ':sealed': replacement.sealed, ':seen': replacement.from.secret };
    const set = ['#sealed = :sealed'];
    const remove = replacement.from.sealed ? [] : ['#from'];
    // Invariant: the secret replaced is exactly the one read and resealed (a concurrent reseal
    // or re-import wins cleanly), in its own pool.
    let condition = '#pool = :pool AND #from = :seen';
    if (!replacement.from.sealed && replacement.seenStatus !== undefined && inUsageIndex(replacement.seenStatus)) {
      // A plain key a lease set aside goes back into the usage index, sealed now: only while
      // its status still keeps it there (an operator or a report may have changed it).
      names['#status'] = 'status';
      names['#upk'] = INDEX.partitionKey;
      names['#ush'] = INDEX.home;
      values[':seenStatus'] = replacement.seenStatus;
      set.push(BACK_INTO_INDEX);
      condition += ' AND #status = :seenStatus';
    }
    if (replacement.maskedKey !== undefined) {
      names['#mask'] = 'maskedKey';
      values[':mask'] = replacement.maskedKey;
      set.push('#mask = if_not_exists(#mask, :mask)');
    }
    if (replacement.revive) condition += ` AND ${reviveClauses(replacement.prior, { set, remove, names, values })}`;
    const result = await this.conditionalUpdate(
      'reseal',
      keyWrite(replacement.keyId, { set, remove, condition, names, values }),
      'updated',
    );
    return result.ok;
  }

  async update(update: KeyUpdate): Promise<KeyUpdateResult> {
    const set: string[] = [];
    const remove: string[] = [];
    const names: Record<string, string> = { '#pool': 'pool' };
    const values: Item = { ':pool': update.pool };
    // Invariant: a key belongs to one pool (and exists).
    let condition = '#pool = :pool';
    if (update.status !== undefined) {
      // An operator's status outranks every other: back into the pool's index (at the key's
      // home shard), or out of it; whatever an undecryptable mark kept is the operator's to drop.
      stampClauses(operatorStamp(update.status, update.at ?? new Date().toISOString()), {
        set,
        remove,
        names,
        values,
      });
      names['#upk'] = INDEX.partitionKey;
      names['#prior'] = STATUS_ATTRIBUTES.prior;
      remove.push('#prior');
      // Invariant: a retired key stays retired (its secret is gone; only an import with revive
      // seals it anew): a status written over it would put a key without a secret back into
      // the index and erase who retired it and when.
      values[':retired'] = RETIRED;
      condition += ' AND #status <> :retired';
      if (update.status === 'active') {
        names['#ush'] = INDEX.home;
        set.push(BACK_INTO_INDEX);
      } else remove.push('#upk');
      if (update.from) {
        // Invariant (a bulk enable): only a key that still has the status and setter it was
        // chosen for; one an operator or a later verdict changed meanwhile is left alone.
        values[':fromStatus'] = update.from.status;
        values[':fromBy'] = update.from.by;
        condition += ' AND #status = :fromStatus AND #stBy = :fromBy';
      }
    }
    if (update.count) {
      // Invariant: a reset loses cleanly to a concurrent lease. It applies only to the count
      // it was computed from, and moves the sort key by whole tiers, keeping its LRU stamp.
      // It also ends the key's open leases: a use counted before the reset is the operator's to
      // forget, and a lease of that count must not refund it again below the new count.
      names['#usk'] = INDEX.sortKey;
      values[':seen'] = update.count.seen;
      values[':to'] = update.count.to;
      values[':shift'] = usageSortKeyShift(update.count.seen, update.count.to);
      values[':noLeases'] = {};
      set.push('usageCount = :to', '#usk = #usk + :shift', 'L = :noLeases');
      condition += ' AND usageCount = :seen';
    }
    const { ok, key } = await this.writeThenRead('update', update.keyId, { set, remove, condition, names, values });
    if (ok && key) return { applied: true, key };
    return { applied: false, current: key?.pool === update.pool ? key : undefined };
  }

  /**
   * An operator's conditional write, then the key as it is after it: read with a projection,
   * the secret left out (an operator's write is rare, so the read costs little).
   */
  private async writeThenRead(
    operation: string,
    keyId: string,
    parts: KeyWriteParts,
  ): Promise<{ ok: boolean; key: KeyRecord | undefined }> {
    const result = await this.conditionalUpdate(operation, keyWrite(keyId, parts), 'updated');
    return { ok: result.ok, key: toKeyRecord(await this.readProjected(keyId, RECORD_PROJECTION)) };
  }

  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>> {
    return this.readPool(pool, limit, afterKeyId, (item) => toKeyRecord(item), RECORD_PROJECTION);
  }

  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>> {
    // A retired key has no secret left: no sweep that opens secrets looks at it.
    return this.readPool(pool, limit, afterKeyId, (item) => (item.status === RETIRED ? undefined : fromKeyItem(item)));
  }

  async retire(retirement: Retirement): Promise<RetireResult> {
    const set: string[] = [];
    const remove: string[] = [];
    const names: Record<string, string> = {
      '#pool': 'pool',
      '#upk': INDEX.partitionKey,
      '#sealed': SEALED_ATTRIBUTE,
      '#prior': STATUS_ATTRIBUTES.prior,
    };
    const values: Item = { ':pool': retirement.pool, ':retired': RETIRED };
    stampClauses(
      { status: RETIRED, by: 'operator', reason: retirement.reason, at: retirement.at },
      {
        set,
        remove,
        names,
        values,
      },
    );
    // Out of the usage index (no lease query reads it again) and its ciphertext destroyed, in
    // the same write; its count, sort key, home and lease slots stay, so a lease still open
    // completes against it as against any key.
    remove.push('#upk', '#sealed', '#prior');
    // Invariants: a key belongs to one pool (and exists); it is retired once: a second
    // retirement writes nothing, and the record keeps who retired it first and when; only a
    // sealed key, whose one secret this write removes (a plain one from before sealing waits
    // for `keypool reseal`: no function's role may name the plain attribute).
    const condition = '#pool = :pool AND #status <> :retired AND attribute_exists(#sealed)';
    const { ok, key } = await this.writeThenRead('retire', retirement.keyId, { set, remove, condition, names, values });
    if (ok && key) return { retired: true, key };
    return { retired: false, current: key?.pool === retirement.pool ? key : undefined };
  }

  async revive(key: StoredKey, seenPool: string): Promise<{ revived: boolean; key: KeyRecord | undefined }> {
    // Back into the index at its home under the shard count of the pool it comes back to
    // (written out: an expression reads the item as it was, and the pool may change here).
    const home = usagePartition(key.pool, key.shard ?? 0);
    const set = ['#pool = :pool', '#sealed = :sealed', '#upk = :home'];
    const remove: string[] = [];
    const names: Record<string, string> = {
      '#pool': 'pool',
      '#sealed': SEALED_ATTRIBUTE,
      '#upk': INDEX.partitionKey,
      '#ush': INDEX.home,
    };
    const values: Item = {
      ':pool': key.pool,
      ':sealed': key.secret,
      ':home': home,
      ':seenPool': seenPool,
      ':retired': RETIRED,
    };
    if ((key.shard ?? 0) === 0) remove.push('#ush');
    else set.push('#ush = :home');
    if (key.label !== undefined) {
      names['#label'] = 'label';
      values[':label'] = key.label;
      set.push('#label = :label');
    }
    stampClauses({ status: 'active' }, { set, remove, names, values });
    // Invariant: only a key still retired, where it was seen retired, comes back (two imports
    // reviving it at once write it once; the second finds it active and reports a duplicate).
    const condition = '#pool = :seenPool AND #status = :retired';
    const { ok, key: now } = await this.writeThenRead('revive', key.keyId, { set, remove, condition, names, values });
    return { revived: ok, key: now };
  }

  async replaceUndecryptable(
    key: StoredKey,
    seen: KeyRecord,
  ): Promise<{ replaced: boolean; key: KeyRecord | undefined }> {
    const names: Record<string, string> = { '#pool': 'pool', '#sealed': SEALED_ATTRIBUTE };
    const values: Item = { ':pool': key.pool, ':sealed': key.secret };
    const set = ['#sealed = :sealed'];
    const remove: string[] = [];
    // Invariants: a key belongs to one pool; only a key still marked undecryptable, with the
    // prior status it was read with, gets the ciphertext sealed just now for this pool and key id.
    const condition = `#pool = :pool AND ${reviveClauses(seen.prior, { set, remove, names, values })}`;
    const { ok, key: now } = await this.writeThenRead('reimport', key.keyId, { set, remove, condition, names, values });
    return { replaced: ok, key: now };
  }

  placements(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyPlacement>> {
    return this.readPool(pool, limit, afterKeyId, toPlacement, PLACEMENT_PROJECTION);
  }

  async rehome(move: KeyMove): Promise<KeyMoveResult> {
    const to = usagePartition(move.pool, move.to);
    const names: Record<string, string> = { '#pool': 'pool', '#upk': INDEX.partitionKey, '#ush': INDEX.home };
    const values: Item = { ':pool': move.pool };
    const set: string[] = [];
    const remove: string[] = [];
    // Shard 0's home is the absence of `ush`, as on every item from before sharding.
    if (move.to === 0) remove.push('#ush');
    else {
      set.push('#ush = :to');
      values[':to'] = to;
    }
    // Invariants: a key belongs to one pool; the move applies only to the placement it was
    // computed from: its home as read, and its index entry as read (present in that shard, or
    // absent). A key a lease, a completion or an operator moved in or out of the index since
    // then refuses, and the reshard reads it again. Counts, the sort key and the lease slots
    // are not touched: a lease of the key in flight completes as if nothing happened.
    let condition = '#pool = :pool';
    if (move.from.shard === 0) {
      condition += ' AND (attribute_not_exists(#ush) OR #ush = :pool)';
    } else {
      condition += ' AND #ush = :fromHome';
      values[':fromHome'] = usagePartition(move.pool, move.from.shard);
    }
    if (move.from.indexedIn === undefined) condition += ' AND attribute_not_exists(#upk)';
    else {
      // Still in the index: the entry moves with the home (2 index WCU, as a lease's).
      condition += ' AND #upk = :fromIndex';
      values[':fromIndex'] = usagePartition(move.pool, move.from.indexedIn);
      set.push('#upk = :toIndex');
      values[':toIndex'] = to;
    }
    const result = await this.conditionalUpdate(
      'rehome',
      {
        Key: { [KEY]: move.keyId },
        UpdateExpression:
          `${set.length ? `SET ${set.join(', ')}` : ''}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`.trim(),
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      'updated',
    );
    if (result.ok) return { moved: true };
    const current = toPlacement(await this.readProjected(move.keyId, PLACEMENT_PROJECTION));
    return { moved: false, current: current?.pool === move.pool ? current : undefined };
  }

  /**
   * Whether any item of the table holds a sealed secret. `npm start` asks before it creates a
   * sealing key, which must never happen over keys sealed under another one. No index tells
   * (pool-keys projects keys only), so it is a Scan filtered on the sealed attribute, projecting
   * the item's key alone, a page of 100 items at a time until the first match. It is asked only
   * when the data dir holds no key file, so on a first start: over a new table that is one empty
   * page, and over a table with keys (which outnumber its pool and idempotency records) the first
   * page nearly always holds one. Only a table with no sealed key at all (every key from before
   * sealing) is read to its end, and then once.
   */
  async holdsSealedKey(): Promise<boolean> {
    let start: Item | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'attribute_exists(#sealed)',
          ProjectionExpression: '#key',
          ExpressionAttributeNames: { '#sealed': SEALED_ATTRIBUTE, '#key': KEY },
          Limit: 100,
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
          ...this.capacity,
        }),
      );
      this.meter?.record('sealed-scan', out.ConsumedCapacity);
      if ((out.Items ?? []).length > 0) return true;
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return false;
  }
}

/**
 * The clauses that bring an undecryptable key back with the status it had (an operator's
 * disabled stays disabled, a caller's cooling its end), and the condition that it is still
 * marked as read: a key enabled and marked again meanwhile holds another prior, and is read
 * again. Adds the clauses to `parts` and answers the condition.
 */
function reviveClauses(prior: KeyRecord['prior'], parts: Omit<KeyWriteParts, 'condition'>): string {
  const { set, remove, names, values } = parts;
  const restored = restoredStatus(prior);
  names['#prior'] = STATUS_ATTRIBUTES.prior;
  values[':undecryptable'] = 'undecryptable';
  let condition = '#status = :undecryptable AND ';
  if (prior === undefined) condition += 'attribute_not_exists(#prior)';
  else {
    values[':seenPrior'] = prior;
    condition += '#prior = :seenPrior';
  }
  stampClauses(restored, { set, remove, names, values });
  remove.push('#prior');
  if (inUsageIndex(restored.status, restored.until !== undefined)) {
    names['#upk'] = INDEX.partitionKey;
    names['#ush'] = INDEX.home;
    set.push(BACK_INTO_INDEX);
  }
  return condition;
}
