/**
 * The DynamoDB implementation of KeyStore. Every method is one request (the candidate query
 * and the pool listing may page); every rule that must hold under concurrency is the
 * ConditionExpression of that request, named in a comment beside it after the domain rule it
 * states (lib/domain/rules.ts).
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type {
  CandidatePage,
  CompletedKey,
  CompletionAttempt,
  CompletionAttemptResult,
  IdempotentLease,
  KeyMove,
  KeyMoveResult,
  KeyPageRead,
  KeyPlacement,
  KeyStore,
  KeyUpdate,
  KeyUpdateResult,
  LeaseAttempt,
  LeaseAttemptResult,
  SecretReplacement,
  StoredKey,
  UndecryptableMark,
} from '../domain/key-store.js';
import type { StoreThrottled } from '../domain/errors.js';
import { inUsageIndex, outcomeStatusChange, refundsUse } from '../domain/rules.js';
import type { KeyRecord, KeyStatus } from '../domain/types.js';
import {
  IDEMPOTENCY_PREFIX,
  MAX_SORTED_COUNT,
  partitionShard,
  TABLE,
  USAGE_TIER,
  usagePartition,
  usageSortKey,
  usageSortKeyBound,
  usageSortKeyShift,
} from '../table.js';
import {
  BACK_INTO_INDEX,
  fromIdempotencyItem,
  fromKeyItem,
  homeShard,
  type Item,
  PLAIN_ATTRIBUTE,
  projection,
  RECORD_ATTRIBUTES,
  SEALED_ATTRIBUTE,
  type StoredSlot,
  toIdempotencyItem,
  toKeyItem,
  toKeyRecord,
  toSlottedRecord,
} from './key-item.js';
import { type Busy, DynamoTable, isConditionFailure, retryBusy } from './dynamo-table.js';

export type { CapacityMeter } from './dynamo-table.js';
export { fromKeyItem, toKeyItem } from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX, poolIndex: POOL_INDEX } = TABLE;

/**
 * effectiveStatus(...) === 'active' as a condition: active, or cooling with the cooldown
 * passed. Needs `#status`, `:active`, `:cooling` and `:now`.
 */
const EFFECTIVELY_ACTIVE = '(#status = :active OR (#status = :cooling AND cooldownUntil <= :now))';

/**
 * The lease's own slot, still open: it holds this lease's nonce and no outcome yet. Closing it
 * in the same write is what makes a use count (or be given back) once. Needs `#slot` and `:nonce`.
 */
const OPEN_SLOT_OF_NONCE = 'L.#slot.n = :nonce AND attribute_not_exists(L.#slot.o)';

// Every path but the lease and maintenance reads through these projections (or asks for only
// the attributes it wrote back): the sealed secret is never read where it is not opened.
const RECORD_PROJECTION = projection(RECORD_ATTRIBUTES);
const SLOTTED_PROJECTION = projection([...RECORD_ATTRIBUTES, 'L']);
const COOLDOWN_PROJECTION = projection(['cooldownUntil']);
const PLACEMENT_PROJECTION = projection([KEY, 'pool', INDEX.partitionKey, INDEX.home]);

/** Where an item sits in the usage order; undefined for an item that is not a key. */
function toPlacement(item: Item | undefined): KeyPlacement | undefined {
  if (!item || typeof item[KEY] !== 'string' || typeof item.pool !== 'string') return undefined;
  const upk = item[INDEX.partitionKey];
  return { keyId: item[KEY], pool: item.pool, shard: homeShard(item), indexedIn: partitionShard(item.pool, upk) };
}

const CONDITION_FAILED = 'ConditionalCheckFailed';
/** Cancellation reasons that refuse a transaction for load, not for its conditions: it may be sent again. */
const BUSY_REASONS: Readonly<Record<string, StoreThrottled['reason']>> = {
  TransactionConflict: 'conflict',
  ThrottlingError: 'throttled',
  ProvisionedThroughputExceeded: 'throttled',
  RequestLimitExceeded: 'throttled',
};

/**
 * A transaction cancelled only for load: no condition failed, and some item met a conflict or
 * throttling. A cancellation that also carries a failed condition is an answer (nothing to retry).
 */
function busyTransaction(error: unknown): Busy {
  if (!(error instanceof TransactionCanceledException)) return undefined;
  const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? '');
  if (codes.includes(CONDITION_FAILED)) return undefined;
  const dynamoCode = codes.find((code) => BUSY_REASONS[code] !== undefined);
  return dynamoCode === undefined ? undefined : { reason: BUSY_REASONS[dynamoCode] ?? 'conflict', dynamoCode };
}

/** One conditional UpdateItem, as a request of its own or a transaction's part. */
interface ConditionalWrite {
  Key: Item;
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Item;
}

/**
 * The sort-key part of a write that gives a use back. The tier moves down one only from a
 * count the sort key spells out (at most MAX_SORTED_COUNT); past it (lease-less increments)
 * the count sorts in the top tier before and after, so the tier stays. The condition says
 * which of the two the write expects: a refund never leaves a key sorted below its count (at
 * a cap of 1,000 that key would be a candidate every lease is refused).
 */
function refundSortKey(
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

export class DynamoKeyStore extends DynamoTable implements KeyStore {
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

  async get(keyId: string): Promise<StoredKey | undefined> {
    return fromKeyItem(await this.readItem('get', keyId));
  }

  async record(pool: string, keyId: string): Promise<KeyRecord | undefined> {
    const record = toKeyRecord(await this.readProjected(keyId, RECORD_PROJECTION));
    return record?.pool === pool ? record : undefined;
  }

  /** A consistent read of only the projected attributes (never the secret). */
  private readProjected(keyId: string, fields: ReturnType<typeof projection>): Promise<Item | undefined> {
    return this.readItem('record', keyId, fields);
  }

  /**
   * One consistent GetItem of the item `id`, reported to the meter as `operation`: the whole
   * item (a sealed secret included) unless `fields` projects it.
   */
  private async readItem(
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

  async candidates(pool: string, shard: number, maxUses: number, limit: number, nowMs: number): Promise<CandidatePage> {
    const page: CandidatePage = { candidates: [] };
    let start: Item | undefined;
    // Pages only while every item read so far was a cooling key: the range itself holds only
    // keys under the cap, so the first page normally answers. Cooling keys are skipped here
    // rather than by a FilterExpression (which costs the same reads) so the earliest end of a
    // cooldown can be told to a caller who finds nothing.
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEX.name,
          KeyConditionExpression: '#upk = :pool AND #usk < :bound',
          ProjectionExpression: '#key, usageCount, cooldownUntil',
          ExpressionAttributeNames: { '#upk': INDEX.partitionKey, '#usk': INDEX.sortKey, '#key': KEY },
          ExpressionAttributeValues: { ':pool': usagePartition(pool, shard), ':bound': usageSortKeyBound(maxUses) },
          Limit: limit,
          ExclusiveStartKey: start,
          ...this.capacity,
        }),
      );
      this.meter?.record('candidates', out.ConsumedCapacity);
      for (const item of out.Items ?? []) {
        const cooldownUntil = typeof item.cooldownUntil === 'number' ? item.cooldownUntil : undefined;
        if (cooldownUntil !== undefined && cooldownUntil > nowMs) {
          page.coolingUntilMs = Math.min(page.coolingUntilMs ?? Infinity, cooldownUntil);
          continue;
        }
        page.candidates.push({ keyId: item[KEY] as string, usageCount: item.usageCount as number });
      }
      start = out.LastEvaluatedKey;
    } while (page.candidates.length === 0 && start);
    if (start) page.more = true;
    return page;
  }

  async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    const write: ConditionalWrite = {
      Key: { [KEY]: attempt.keyId },
      UpdateExpression:
        'SET usageCount = :next, #usk = :usk, lastUsedAt = :nowIso, #status = :active, L.#slot = :entry REMOVE cooldownUntil',
      // Invariants, all in this one write:
      //  - isLeasable: in the index partition of the pool's shard it was found in (a key a
      //    reshard moved meanwhile refuses, and is found again in its new shard), active or
      //    past its cooldown, and the cap: the use is counted here, and only while usageCount <= maxUses;
      //  - usageCount = :seen: the new sort key is computed from the count, so it must be current;
      //  - isSlotFree: one holder per reserved use: the slot is empty, completed, or expired;
      //  - only a sealed secret is handed out: an item still in plain text (written before
      //    sealing, or by anyone who can write the table but not seal) waits for `keypool reseal`.
      ConditionExpression:
        `#upk = :pool AND usageCount = :seen AND usageCount <= :max AND ${EFFECTIVELY_ACTIVE}` +
        ' AND (attribute_not_exists(L.#slot) OR attribute_exists(L.#slot.o) OR L.#slot.e < :now) AND attribute_exists(#sealed)',
      ExpressionAttributeNames: {
        '#upk': INDEX.partitionKey,
        '#usk': INDEX.sortKey,
        '#status': 'status',
        '#slot': String(attempt.slot),
        '#sealed': SEALED_ATTRIBUTE,
      },
      ExpressionAttributeValues: {
        ':pool': usagePartition(attempt.pool, attempt.shard),
        ':seen': attempt.seenCount,
        ':max': attempt.maxUses,
        ':next': attempt.seenCount + 1,
        ':usk': usageSortKey(attempt.seenCount + 1, attempt.nowMs),
        ':nowIso': new Date(attempt.nowMs).toISOString(),
        ':now': attempt.nowMs,
        ':active': 'active',
        ':cooling': 'cooling',
        ':entry': { n: attempt.nonce, e: attempt.expiresAtMs } satisfies StoredSlot,
      },
    };
    if (attempt.idempotency) return this.tryIdempotentLease(write, attempt.idempotency, attempt.nowMs);
    const result = await this.conditionalUpdate('lease', write);
    const key = fromKeyItem(result.item);
    return result.ok && key ? { granted: true, key } : { granted: false, current: key };
  }

  /**
   * The lease write and its idempotency record in one transaction: both or neither. The record
   * is written only where none is, or an expired one, so two requests with the same key never
   * both count a use. A transaction returns no item, so a granted key is read back (the
   * transaction's cost, paid only by requests that send an Idempotency-Key). Only a failed
   * condition is an answer about the key or the record; a transaction cancelled for a conflict
   * or for throttling is sent again (retryBusy), and any other cancellation is an error.
   */
  private async tryIdempotentLease(
    write: ConditionalWrite,
    record: IdempotentLease,
    nowMs: number,
  ): Promise<LeaseAttemptResult> {
    try {
      const out = await retryBusy(
        () =>
          this.client.send(
            new TransactWriteCommand({
              TransactItems: [
                { Update: { ...write, TableName: this.tableName, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } },
                {
                  Put: {
                    TableName: this.tableName,
                    Item: toIdempotencyItem(record),
                    // Invariant: one lease per Idempotency-Key while that lease lives.
                    ConditionExpression: 'attribute_not_exists(#key) OR expiresAtMs < :now',
                    ExpressionAttributeNames: { '#key': KEY },
                    ExpressionAttributeValues: { ':now': nowMs },
                  },
                },
              ],
              ...this.capacity,
            }),
          ),
        busyTransaction,
      );
      this.meter?.record('lease', out.ConsumedCapacity);
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      this.meter?.record('lease', undefined);
      const [keyReason, recordReason] = error.CancellationReasons ?? [];
      if (recordReason?.Code === CONDITION_FAILED) return { granted: false, idempotencyTaken: true };
      // The key's condition failed: the item as it was (none: no such key).
      if (keyReason?.Code === CONDITION_FAILED)
        return { granted: false, current: keyReason.Item ? fromKeyItem(unmarshall(keyReason.Item)) : undefined };
      throw error;
    }
    const key = await this.get(record.keyId);
    return key ? { granted: true, key } : { granted: false, current: undefined };
  }

  async idempotentLease(id: string): Promise<IdempotentLease | undefined> {
    return fromIdempotencyItem(await this.readItem('get', `${IDEMPOTENCY_PREFIX}${id}`));
  }

  async releaseIdempotentLease(id: string, leaseId: string): Promise<boolean> {
    const result = await this.conditionalUpdate(
      'idempotency-release',
      {
        Key: { [KEY]: `${IDEMPOTENCY_PREFIX}${id}` },
        // Expired, not deleted: the lease's put takes an expired record's place (its condition),
        // and the lease function's role needs no DeleteItem.
        UpdateExpression: 'SET expiresAtMs = :expired',
        // Invariant: only the record of the lease that was undone, never a newer one.
        ConditionExpression: 'leaseId = :leaseId',
        ExpressionAttributeValues: { ':leaseId': leaseId, ':expired': 0 },
      },
      'updated',
    );
    return result.ok;
  }

  /**
   * The completion's conditional write; `moveTier` as refundSortKey (a refund only).
   */
  private completionWrite(attempt: CompletionAttempt, moveTier: boolean): ConditionalWrite {
    // The count and the status are always written (to themselves when nothing changes), so the
    // answer comes from UPDATED_NEW: the usage path never gets the sealed secret back.
    const refund = refundsUse(attempt.outcome);
    const set = ['L.#slot.o = :outcome', 'usageCount = usageCount - :refund'];
    const remove: string[] = [];
    const names: Record<string, string> = { '#slot': String(attempt.slot), '#pool': 'pool', '#status': 'status' };
    const values: Item = {
      ':nonce': attempt.nonce,
      ':outcome': attempt.outcome,
      ':pool': attempt.pool,
      ':now': attempt.nowMs,
      ':refund': refund ? 1 : 0,
    };
    // Invariants:
    //  - a key belongs to one pool: a lease is completed only under its key's pool;
    //  - counting once: only the lease's own open slot can be completed, and completing it
    //    closes it, so a repeated completion changes nothing;
    //  - expiry, judged from the stored slot (never from the lease id the caller sends): past
    //    it, the use stays counted and the slot is free for the next lease.
    let condition = `#pool = :pool AND ${OPEN_SLOT_OF_NONCE} AND L.#slot.e >= :now`;
    if (refund) {
      const sortKey = refundSortKey(moveTier, names, values);
      set.push(...sortKey.set);
      condition += sortKey.condition;
    }
    const change = attempt.statusChange === 'none' ? undefined : outcomeStatusChange(attempt.outcome);
    if (change) {
      set.push('#status = :status');
      values[':status'] = change.to;
      if (change.to === 'cooling' && attempt.statusChange === 'apply') {
        // A report never shortens a cooldown: it sets one only where none is, or a shorter one.
        set.push('cooldownUntil = :until');
        values[':until'] = attempt.cooldownUntilMs;
        condition += ' AND (attribute_not_exists(cooldownUntil) OR cooldownUntil < :until)';
      }
      if (!inUsageIndex(change.to)) {
        remove.push('#upk');
        names['#upk'] = INDEX.partitionKey;
      }
      // outcomeStatusChange's `from`: a caller's report never overrides an operator's
      // "disabled" (nor revives an exhausted key).
      condition += ` AND #status IN (${change.from.map((_, i) => `:from${i}`).join(', ')})`;
      change.from.forEach((status, i) => (values[`:from${i}`] = status));
    } else {
      set.push('#status = #status');
    }
    return {
      Key: { [KEY]: attempt.keyId },
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    };
  }

  async tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    let result = await this.conditionalUpdate('complete', this.completionWrite(attempt, true), 'updated');
    if (!result.ok) {
      const current = toSlottedRecord(await this.readProjected(attempt.keyId, SLOTTED_PROJECTION));
      // A refund refused for its count past the top tier (rare): the same write, without the tier move.
      if (!refundsUse(attempt.outcome) || !current || current.usageCount <= MAX_SORTED_COUNT)
        return { applied: false, current };
      result = await this.conditionalUpdate('complete', this.completionWrite(attempt, false), 'updated');
    }
    if (!result.ok)
      return { applied: false, current: toSlottedRecord(await this.readProjected(attempt.keyId, SLOTTED_PROJECTION)) };
    const key: CompletedKey = {
      keyId: attempt.keyId,
      usageCount: Number(result.item.usageCount),
      status: result.item.status as KeyStatus,
    };
    if (typeof result.item.cooldownUntil === 'number') key.cooldownUntil = result.item.cooldownUntil;
    else if (key.status === 'cooling') {
      // Cooling from another lease's report: its cooldown decides the status shown (rare: one read).
      const cooldownUntil = (await this.readProjected(attempt.keyId, COOLDOWN_PROJECTION))?.cooldownUntil;
      if (typeof cooldownUntil === 'number') key.cooldownUntil = cooldownUntil;
    }
    return { applied: true, key };
  }

  async increment(
    pool: string,
    keyId: string,
    nowMs: number,
  ): Promise<Pick<KeyRecord, 'keyId' | 'usageCount'> | undefined> {
    // Atomic +1 on the count and, below the top tier the sort key spells out, on its tier: N
    // concurrent increments add N. At the top tier only the count moves (the sort key stays an
    // exact number; counts that high are never leased).
    let moveTier = true;
    for (let tries = 0; tries < 5; tries++) {
      const result = await this.conditionalUpdate(
        'increment',
        {
          Key: { [KEY]: keyId },
          UpdateExpression: `SET usageCount = usageCount + :one, lastUsedAt = :nowIso${moveTier ? ', #usk = #usk + :tier' : ''}`,
          // Invariant: a key belongs to one pool (and exists); the tier moves only below the top.
          ConditionExpression: moveTier
            ? '#pool = :pool AND usageCount < :top'
            : '#pool = :pool AND usageCount >= :top',
          ExpressionAttributeNames: { '#pool': 'pool', ...(moveTier ? { '#usk': INDEX.sortKey } : {}) },
          ExpressionAttributeValues: {
            ':pool': pool,
            ':one': 1,
            ':top': MAX_SORTED_COUNT,
            ':nowIso': new Date(nowMs).toISOString(),
            ...(moveTier ? { ':tier': USAGE_TIER } : {}),
          },
        },
        'updated',
      );
      if (result.ok) return { keyId, usageCount: Number(result.item.usageCount) };
      const current = toKeyRecord(await this.readProjected(keyId, RECORD_PROJECTION));
      if (current?.pool !== pool) return undefined;
      // Refused only by the tier test: a concurrent increment crossed the top; try the other way.
      moveTier = current.usageCount < MAX_SORTED_COUNT;
    }
    throw new Error('an increment kept losing to concurrent increments at the top tier');
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

  private async conditionalUpdateOk(operation: string, write: ConditionalWrite): Promise<boolean> {
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
    return {
      Key: { [KEY]: mark.keyId },
      UpdateExpression: `SET ${set.join(', ')} REMOVE #upk, cooldownUntil`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    };
  }

  async setAsideUnsealed(key: { keyId: string; pool: string }): Promise<boolean> {
    const result = await this.conditionalUpdate(
      'set-aside',
      {
        Key: { [KEY]: key.keyId },
        UpdateExpression: 'REMOVE #upk',
        // Invariant: only a secret still in plain text leaves the index here (one sealed
        // meanwhile stays), in its own pool; a key already out of it is not written again.
        ConditionExpression: '#pool = :pool AND attribute_not_exists(#sealed) AND attribute_exists(#upk)',
        ExpressionAttributeNames: { '#pool': 'pool', '#sealed': SEALED_ATTRIBUTE, '#upk': INDEX.partitionKey },
        ExpressionAttributeValues: { ':pool': key.pool },
      },
      'updated',
    );
    return result.ok;
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
    if (replacement.revive) {
      // An undecryptable key that opens again goes back into its pool, and only that one.
      names['#status'] = 'status';
      names['#upk'] = INDEX.partitionKey;
      names['#ush'] = INDEX.home;
      values[':active'] = 'active';
      values[':undecryptable'] = 'undecryptable';
      set.push('#status = :active', BACK_INTO_INDEX);
      condition += ' AND #status = :undecryptable';
    }
    const result = await this.conditionalUpdate(
      'reseal',
      {
        Key: { [KEY]: replacement.keyId },
        UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
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
      names['#status'] = 'status';
      names['#upk'] = INDEX.partitionKey;
      values[':status'] = update.status;
      // An operator's status outranks every report: back into the pool's index (at the key's
      // home shard), or out of it.
      set.push('#status = :status');
      if (update.status === 'active') {
        names['#ush'] = INDEX.home;
        set.push(BACK_INTO_INDEX);
      } else remove.push('#upk');
      remove.push('cooldownUntil');
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
    const result = await this.conditionalUpdate(
      'update',
      {
        Key: { [KEY]: update.keyId },
        UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      'updated',
    );
    // The answer is read with a projection, the secret left out (an operator's write is rare).
    const key = toKeyRecord(await this.readProjected(update.keyId, RECORD_PROJECTION));
    if (result.ok && key) return { applied: true, key };
    return { applied: false, current: key?.pool === update.pool ? key : undefined };
  }

  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>> {
    return this.readPool(pool, limit, afterKeyId, (item) => toKeyRecord(item), RECORD_PROJECTION);
  }

  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>> {
    return this.readPool(pool, limit, afterKeyId, (item) => fromKeyItem(item));
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

  /** One page of the pool-keys index (ids only), then the items themselves, in id order. */
  private async readPool<K extends { keyId: string; pool: string }>(
    pool: string,
    limit: number,
    afterKeyId: string | undefined,
    read: (item: Item) => K | undefined,
    fields?: ReturnType<typeof projection>,
  ): Promise<KeyPageRead<K>> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: POOL_INDEX.name,
        KeyConditionExpression: '#pool = :pool',
        ExpressionAttributeNames: { '#pool': POOL_INDEX.partitionKey },
        ExpressionAttributeValues: { ':pool': pool },
        Limit: limit,
        ...(afterKeyId === undefined
          ? {}
          : { ExclusiveStartKey: { [POOL_INDEX.partitionKey]: pool, [KEY]: afterKeyId } }),
        ...this.capacity,
      }),
    );
    this.meter?.record('pool-keys', out.ConsumedCapacity);
    const ids = (out.Items ?? []).map((item) => item[KEY] as string);
    const items = await this.batchGet('pool-items', ids, fields);
    // An item that moved to another pool between the two reads is not this pool's any more.
    const keys = items
      .map(read)
      .filter((key): key is K => key?.pool === pool)
      .sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
    const last: unknown = out.LastEvaluatedKey?.[KEY];
    return { keys, lastKeyId: typeof last === 'string' ? last : undefined };
  }
}
