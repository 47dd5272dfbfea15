/**
 * The lease path's store over DynamoDB (LeaseStore): candidates from the usage index, the lease
 * write (with its idempotency record, in one transaction, when the caller sends a key), the
 * completion, the lease-less count, and setting aside a key still in plain text. Every method
 * is one request (the candidate query may page); every rule that must hold under concurrency is
 * the ConditionExpression of that request, named in a comment beside it after the domain rule
 * it states (lib/domain/rules.ts).
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { TableBusy } from '../domain/errors.js';
import { inUsageIndex, isTemporary, type ReportChange, refundsUse } from '../domain/rules.js';
import type { KeyRecord, KeyStatus, StoredKey } from '../domain/types.js';
import type {
  CandidatePage,
  CompletedKey,
  CompletionAttempt,
  CompletionAttemptResult,
  IdempotentLease,
  LeaseAttempt,
  LeaseAttemptResult,
  LeaseStore,
} from '../ports/lease-store.js';
import type { BudgetSpend } from '../ports/report-budget.js';
import type { KeyPageRead } from '../ports/key-pages.js';
import type { CountedKey } from '../domain/dry-pool.js';
import {
  IDEMPOTENCY_PREFIX,
  MAX_SORTED_COUNT,
  TABLE,
  USAGE_TIER,
  usagePartition,
  usageSortKey,
  usageSortKeyBound,
} from '../table.js';
import {
  DynamoKeyTable,
  keyWrite,
  stampClauses,
  OPEN_SLOT_OF_NONCE,
  RECORD_PROJECTION,
  refundSortKey,
  SLOTTED_PROJECTION,
} from './dynamo-key-table.js';
import { DynamoReportBudget } from './dynamo-report-budget.js';
import { type Busy, type ConditionalWrite, type DynamoTableOptions, retryBusy } from './dynamo-table.js';
import {
  fromIdempotencyItem,
  fromKeyItem,
  type Item,
  projection,
  SEALED_ATTRIBUTE,
  STATUS_ATTRIBUTES,
  type StoredSlot,
  toIdempotencyItem,
  toKeyRecord,
  toSlottedRecord,
} from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;

/**
 * effectiveStatus(...) === 'active' as a condition: active, or a temporary status whose rest
 * has ended (a status without an end, a verdict, fails the comparison, as it must). Needs
 * `#status`, `#stUntil`, `:active`, `:cooling`, `:exhausted`, `:suspect` and `:now`.
 */
const EFFECTIVELY_ACTIVE = '(#status = :active OR (#status IN (:cooling, :exhausted, :suspect) AND #stUntil <= :now))';

/** The names and values EFFECTIVELY_ACTIVE uses (`:now` aside). */
function effectivelyActiveTerms(names: Record<string, string>, values: Item): void {
  names['#status'] = STATUS_ATTRIBUTES.status;
  names['#stUntil'] = STATUS_ATTRIBUTES.until;
  Object.assign(values, {
    ':active': 'active',
    ':cooling': 'cooling',
    ':exhausted': 'exhausted',
    ':suspect': 'suspect',
  });
}

/**
 * reportApplies(...) as a condition: effectively active, or one of the statuses the change
 * may replace (ReportChange.from). Needs `:now`; adds its names and values.
 */
function reportCondition(change: ReportChange, names: Record<string, string>, values: Item): string {
  effectivelyActiveTerms(names, values);
  const among = (statuses: readonly KeyStatus[], tag: string): string => {
    statuses.forEach((status, i) => (values[`:${tag}${i}`] = status));
    return `#status IN (${statuses.map((_, i) => `:${tag}${i}`).join(', ')})`;
  };
  const terms = [EFFECTIVELY_ACTIVE];
  if (change.from.any.length) terms.push(among(change.from.any, 'any'));
  if (change.from.endingSooner.length && change.stamp.until !== undefined) {
    values[':newUntil'] = change.stamp.until;
    terms.push(`(${among(change.from.endingSooner, 'sooner')} AND #stUntil < :newUntil)`);
  }
  if (change.from.resting.length)
    terms.push(`(${among(change.from.resting, 'resting')} AND attribute_exists(#stUntil))`);
  return `(${terms.join(' OR ')})`;
}

const COOLDOWN_PROJECTION = projection(['cooldownUntil']);
/** What a count of a pool's keys reads of each (lib/domain/dry-pool.ts): never the secret. */
const STATE_PROJECTION = projection([KEY, 'pool', 'status', 'usageCount', 'cooldownUntil']);

/** A key's state as a count reads it; undefined for an item that is not a key. */
function toKeyState(item: Item): (CountedKey & { keyId: string; pool: string }) | undefined {
  if (typeof item[KEY] !== 'string' || typeof item.pool !== 'string') return undefined;
  return {
    keyId: item[KEY],
    pool: item.pool,
    status: item.status as KeyStatus,
    usageCount: Number(item.usageCount),
    ...(typeof item.cooldownUntil === 'number' ? { cooldownUntil: item.cooldownUntil } : {}),
  };
}

const CONDITION_FAILED = 'ConditionalCheckFailed';
/** Cancellation reasons that refuse a transaction for load, not for its conditions: it may be sent again. */
const BUSY_REASONS: Readonly<Record<string, TableBusy['reason']>> = {
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

export class DynamoLeaseStore extends DynamoKeyTable implements LeaseStore {
  private readonly budget: DynamoReportBudget;

  constructor(options: DynamoTableOptions) {
    super(options);
    this.budget = new DynamoReportBudget(options);
  }

  spendReport(pool: string, caller: string, nowMs: number, max: number): Promise<BudgetSpend> {
    return this.budget.spendReport(pool, caller, nowMs, max);
  }

  async get(keyId: string): Promise<StoredKey | undefined> {
    return fromKeyItem(await this.readItem('get', keyId));
  }

  keyStates(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<CountedKey & { keyId: string }>> {
    return this.readPool(pool, limit, afterKeyId, toKeyState, STATE_PROJECTION);
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
    const names: Record<string, string> = {
      '#keyPool': 'pool',
      '#stBy': STATUS_ATTRIBUTES.by,
      '#stReason': STATUS_ATTRIBUTES.reason,
      '#stAt': STATUS_ATTRIBUTES.at,
      '#upk': INDEX.partitionKey,
      '#usk': INDEX.sortKey,
      '#slot': String(attempt.slot),
      '#sealed': SEALED_ATTRIBUTE,
    };
    const values: Item = {
      ':keyPool': attempt.pool,
      ':pool': usagePartition(attempt.pool, attempt.shard),
      ':seen': attempt.seenCount,
      ':max': attempt.maxUses,
      ':next': attempt.seenCount + 1,
      ':usk': usageSortKey(attempt.seenCount + 1, attempt.nowMs),
      ':nowIso': new Date(attempt.nowMs).toISOString(),
      ':now': attempt.nowMs,
      ':entry': { n: attempt.nonce, e: attempt.expiresAtMs } satisfies StoredSlot,
    };
    effectivelyActiveTerms(names, values);
    const write: ConditionalWrite = {
      Key: { [KEY]: attempt.keyId },
      UpdateExpression:
        // Active again (a rest that ended becomes active here: no sweeper), and an active key
        // has no setter, reason or time.
        'SET usageCount = :next, #usk = :usk, lastUsedAt = :nowIso, #status = :active, L.#slot = :entry' +
        ' REMOVE #stUntil, #stBy, #stReason, #stAt',
      // Invariants, all in this one write:
      //  - isLeasable: a key of the requested pool (its own `pool`, not only the index entry a
      //    write to the table could move), in the index partition of the pool's shard it was
      //    found in (a key a reshard moved meanwhile refuses, and is found again in its new
      //    shard), active or past its cooldown, and the cap: the use is counted here, and only
      //    while usageCount <= maxUses;
      //  - usageCount = :seen: the new sort key is computed from the count, so it must be current;
      //  - isSlotFree: one holder per reserved use: the slot is empty, completed, or expired;
      //  - only a sealed secret is handed out: an item still in plain text (written before
      //    sealing, or by anyone who can write the table but not seal) waits for `keypool reseal`.
      ConditionExpression:
        `#keyPool = :keyPool AND #upk = :pool AND usageCount = :seen AND usageCount <= :max AND ${EFFECTIVELY_ACTIVE}` +
        ' AND (attribute_not_exists(L.#slot) OR attribute_exists(L.#slot.o) OR L.#slot.e < :now) AND attribute_exists(#sealed)',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
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
    const change = attempt.change;
    if (change) {
      // reportApplies: a report replaces only the statuses its change names (never an
      // operator's or the provider's disabled, undecryptable, a more severe rest, or a rest
      // that lasts longer).
      condition += ` AND ${reportCondition(change, names, values)}`;
      stampClauses(change.stamp, { set, remove, names, values });
      // A verdict without an end takes the key out of the index; a rest keeps it there,
      // skipped by leases until it ends.
      if (!inUsageIndex(change.stamp.status, change.stamp.until !== undefined)) {
        remove.push('#upk');
        names['#upk'] = INDEX.partitionKey;
      }
    } else {
      set.push('#status = #status');
    }
    return keyWrite(attempt.keyId, { set, remove, condition, names, values });
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
    else if (!attempt.change && isTemporary(key.status)) {
      // Resting from another lease's report: its end decides the status shown (rare: one read).
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
}
