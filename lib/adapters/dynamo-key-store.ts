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
  CompletionAttempt,
  CompletionAttemptResult,
  IdempotentLease,
  KeyPageRead,
  KeyStore,
  KeyUpdate,
  KeyUpdateResult,
  LeaseAttempt,
  LeaseAttemptResult,
  StoredKey,
} from '../domain/key-store.js';
import { inUsageIndex, outcomeStatusChange, refundsUse } from '../domain/rules.js';
import type { KeyRecord } from '../domain/types.js';
import { IDEMPOTENCY_PREFIX, MAX_SORTED_COUNT, TABLE, USAGE_TIER, usageSortKey, usageSortKeyBound, usageSortKeyShift } from '../table.js';
import { fromIdempotencyItem, fromKeyItem, type Item, projection, RECORD_ATTRIBUTES, type StoredSlot, toIdempotencyItem, toKeyItem, toKeyRecord } from './key-item.js';
import { DynamoTable, isConditionFailure } from './dynamo-table.js';

export type { CapacityMeter } from './dynamo-table.js';
export { fromKeyItem, toKeyItem } from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX, poolIndex: POOL_INDEX } = TABLE;

/**
 * effectiveStatus(...) === 'active' as a condition: active, or cooling with the cooldown
 * passed. Needs `#status`, `:active`, `:cooling` and `:now`.
 */
const EFFECTIVELY_ACTIVE = '(#status = :active OR (#status = :cooling AND cooldownUntil <= :now))';

const RECORD_PROJECTION = projection(RECORD_ATTRIBUTES);

/** One conditional UpdateItem, as a request of its own or a transaction's part. */
interface ConditionalWrite {
  Key: Item;
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Item;
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
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ...this.capacity,
        }),
      );
      this.meter?.record('insert', out.ConsumedCapacity);
      return { inserted: true, key: toKeyRecord(item) as KeyRecord };
    } catch (error) {
      const existing = isConditionFailure(error) && error.Item ? toKeyRecord(unmarshall(error.Item)) : undefined;
      if (!existing) throw error;
      this.meter?.record('insert', undefined);
      return { inserted: false, key: existing };
    }
  }

  async get(keyId: string): Promise<StoredKey | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { [KEY]: keyId }, ConsistentRead: true, ...this.capacity }));
    this.meter?.record('get', out.ConsumedCapacity);
    return fromKeyItem(out.Item);
  }

  async record(pool: string, keyId: string): Promise<KeyRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { [KEY]: keyId }, ConsistentRead: true, ...RECORD_PROJECTION, ...this.capacity }),
    );
    this.meter?.record('record', out.ConsumedCapacity);
    const record = toKeyRecord(out.Item);
    return record?.pool === pool ? record : undefined;
  }

  async candidates(pool: string, maxUses: number, limit: number, nowMs: number): Promise<CandidatePage> {
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
          ExpressionAttributeValues: { ':pool': pool, ':bound': usageSortKeyBound(maxUses) },
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
    return page;
  }

  async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    const write: ConditionalWrite = {
      Key: { [KEY]: attempt.keyId },
      UpdateExpression:
        'SET usageCount = :next, #usk = :usk, lastUsedAt = :nowIso, #status = :active, L.#slot = :entry REMOVE cooldownUntil',
      // Invariants, all in this one write:
      //  - isLeasable: in the pool's index partition, active or past its cooldown, and the
      //    cap: the use is counted here, and only while usageCount <= maxUses;
      //  - usageCount = :seen: the new sort key is computed from the count, so it must be current;
      //  - isSlotFree: one holder per reserved use: the slot is empty, completed, or expired.
      ConditionExpression:
        `#upk = :pool AND usageCount = :seen AND usageCount <= :max AND ${EFFECTIVELY_ACTIVE}` +
        ' AND (attribute_not_exists(L.#slot) OR attribute_exists(L.#slot.o) OR L.#slot.e < :now)',
      ExpressionAttributeNames: { '#upk': INDEX.partitionKey, '#usk': INDEX.sortKey, '#status': 'status', '#slot': String(attempt.slot) },
      ExpressionAttributeValues: {
        ':pool': attempt.pool,
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
   * transaction's cost, paid only by requests that send an Idempotency-Key).
   */
  private async tryIdempotentLease(write: ConditionalWrite, record: IdempotentLease, nowMs: number): Promise<LeaseAttemptResult> {
    try {
      const out = await this.client.send(
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
      );
      this.meter?.record('lease', out.ConsumedCapacity);
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      this.meter?.record('lease', undefined);
      const [keyReason, recordReason] = error.CancellationReasons ?? [];
      if (recordReason?.Code === 'ConditionalCheckFailed') return { granted: false, idempotencyTaken: true };
      // The key's condition failed (its item as it was), or a concurrent write conflicted (none).
      return { granted: false, current: keyReason?.Item ? fromKeyItem(unmarshall(keyReason.Item)) : undefined };
    }
    const key = await this.get(record.keyId);
    return key ? { granted: true, key } : { granted: false, current: undefined };
  }

  async idempotentLease(id: string): Promise<IdempotentLease | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { [KEY]: `${IDEMPOTENCY_PREFIX}${id}` }, ConsistentRead: true, ...this.capacity }));
    this.meter?.record('get', out.ConsumedCapacity);
    return fromIdempotencyItem(out.Item);
  }

  async tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    const set = ['L.#slot.o = :outcome'];
    const remove: string[] = [];
    const names: Record<string, string> = { '#slot': String(attempt.slot), '#pool': 'pool' };
    const values: Item = { ':nonce': attempt.nonce, ':outcome': attempt.outcome, ':pool': attempt.pool, ':now': attempt.nowMs };
    // Invariants:
    //  - a key belongs to one pool: a lease is completed only under its key's pool;
    //  - counting once: only the lease's own open slot can be completed, and completing it
    //    closes it, so a repeated completion changes nothing;
    //  - expiry, judged from the stored slot (never from the lease id the caller sends): past
    //    it, the use stays counted and the slot is free for the next lease.
    let condition = '#pool = :pool AND L.#slot.n = :nonce AND attribute_not_exists(L.#slot.o) AND L.#slot.e >= :now';
    if (refundsUse(attempt.outcome)) {
      set.push('usageCount = usageCount - :one', '#usk = #usk - :tier');
      names['#usk'] = INDEX.sortKey;
      values[':one'] = 1;
      values[':tier'] = USAGE_TIER;
    }
    const change = attempt.statusChange === 'none' ? undefined : outcomeStatusChange(attempt.outcome);
    if (change) {
      set.push('#status = :status');
      names['#status'] = 'status';
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
    }
    const result = await this.conditionalUpdate('complete', {
      Key: { [KEY]: attempt.keyId },
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    if (result.ok) {
      const key = toKeyRecord(result.item);
      if (key) return { applied: true, key };
    }
    return { applied: false, current: fromKeyItem(result.item) };
  }

  async increment(pool: string, keyId: string, nowMs: number): Promise<KeyRecord | undefined> {
    // Atomic +1 on the count and, below the top tier the sort key spells out, on its tier: N
    // concurrent increments add N. At the top tier only the count moves (the sort key stays an
    // exact number; counts that high are never leased).
    let moveTier = true;
    for (let tries = 0; tries < 5; tries++) {
      const result = await this.conditionalUpdate('increment', {
        Key: { [KEY]: keyId },
        UpdateExpression: `SET usageCount = usageCount + :one, lastUsedAt = :nowIso${moveTier ? ', #usk = #usk + :tier' : ''}`,
        // Invariant: a key belongs to one pool (and exists); the tier moves only below the top.
        ConditionExpression: moveTier ? '#pool = :pool AND usageCount < :top' : '#pool = :pool AND usageCount >= :top',
        ExpressionAttributeNames: { '#pool': 'pool', ...(moveTier ? { '#usk': INDEX.sortKey } : {}) },
        ExpressionAttributeValues: { ':pool': pool, ':one': 1, ':top': MAX_SORTED_COUNT, ':nowIso': new Date(nowMs).toISOString(), ...(moveTier ? { ':tier': USAGE_TIER } : {}) },
      });
      if (result.ok) return toKeyRecord(result.item);
      const current = toKeyRecord(result.item);
      if (current?.pool !== pool) return undefined;
      // Refused only by the tier test: a concurrent increment crossed the top; try the other way.
      moveTier = current.usageCount < MAX_SORTED_COUNT;
    }
    throw new Error('an increment kept losing to concurrent increments at the top tier');
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
      // An operator's status outranks every report: back into the pool's index, or out of it.
      set.push('#status = :status');
      if (update.status === 'active') set.push('#upk = #pool');
      else remove.push('#upk');
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
    const result = await this.conditionalUpdate('update', {
      Key: { [KEY]: update.keyId },
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    const key = toKeyRecord(result.item);
    if (result.ok && key) return { applied: true, key };
    return { applied: false, current: key?.pool === update.pool ? key : undefined };
  }

  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>> {
    return this.readPool(pool, limit, afterKeyId, (item) => toKeyRecord(item), RECORD_PROJECTION);
  }

  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>> {
    return this.readPool(pool, limit, afterKeyId, (item) => fromKeyItem(item));
  }

  /** One page of the pool-keys index (ids only), then the items themselves, in id order. */
  private async readPool<K extends KeyRecord>(
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
        ...(afterKeyId === undefined ? {} : { ExclusiveStartKey: { [POOL_INDEX.partitionKey]: pool, [KEY]: afterKeyId } }),
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
