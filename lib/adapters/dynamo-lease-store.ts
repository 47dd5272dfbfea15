/**
 * The lease path's store over DynamoDB (LeaseStore): candidates from the usage index, the lease
 * write (with its idempotency record, in one transaction, when the caller sends a key), the
 * completion, the lease-less count, and setting aside a key still in plain text. Every method
 * is one request (the candidate query may page; the lease-less count then reads back the count
 * its transaction cannot answer); every rule that must hold under concurrency is
 * the ConditionExpression of that request, named in a comment beside it after the domain rule
 * it states (lib/domain/rules.ts).
 */
import { randomUUID } from 'node:crypto';
import { isDynamoError, QueryCommand, TransactWriteCommand } from './dynamo-wire.js';
import { isTemporary, refundsUse } from '../domain/rules.js';
import { type KeyRecord, type KeyStatus, PROXIED, type StoredKey } from '../domain/types.js';
import type {
  CandidatePage,
  CandidateQuery,
  CompletedKey,
  CompletionAttempt,
  CompletionAttemptResult,
  IdempotentLease,
  LeaseAttempt,
  LeaseAttemptResult,
  LeaseStore,
  ProxiedRefund,
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
import { DynamoKeyTable, RECORD_PROJECTION, SLOTTED_PROJECTION } from './dynamo-key-table.js';
import { DynamoReportBudget } from './dynamo-report-budget.js';
import {
  busyTransaction,
  completionWrite,
  CONDITION_FAILED,
  STATE_PROJECTION,
  toKeyState,
} from './lease-conditions.js';
import { EFFECTIVELY_ACTIVE, effectivelyActiveTerms } from './report-condition.js';
import { type ConditionalWrite, type DynamoTableOptions, retryBusy } from './dynamo-table.js';
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

const COOLDOWN_PROJECTION = projection(['cooldownUntil']);

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

  async candidates(...[pool, shard, maxUses, limit, nowMs, skip]: CandidateQuery): Promise<CandidatePage> {
    const page: CandidatePage = { candidates: [] };
    let start: Item | undefined;
    // Pages only while every item read so far was a cooling key (or one `skip` names): the range
    // itself holds only keys under the cap, so the first page normally answers. Cooling keys are
    // skipped here rather than by a FilterExpression (which costs the same reads) so the
    // earliest end of a cooldown can be told to a caller who finds nothing.
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
        const keyId = item[KEY] as string;
        if (!skip?.has(keyId)) page.candidates.push({ keyId, usageCount: item.usageCount as number });
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
      ':proxied': PROXIED,
      // A proxied use's slot carries its mark: no completion follows a success; the slot is
      // held for the use's refund until its expiry.
      ':entry': {
        n: attempt.nonce,
        e: attempt.expiresAtMs,
        ...(attempt.proxied ? { o: PROXIED } : {}),
      } satisfies StoredSlot,
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
      //  - isSlotFree: one holder per reserved use: the slot is empty, completed (a proxied
      //    use's mark is not a completion: it holds the slot for its refund), or expired;
      //  - only a sealed secret is handed out: an item still in plain text (written before
      //    sealing, or by anyone who can write the table but not seal) waits for `keypool reseal`.
      ConditionExpression:
        `#keyPool = :keyPool AND #upk = :pool AND usageCount = :seen AND usageCount <= :max AND ${EFFECTIVELY_ACTIVE}` +
        ' AND (attribute_not_exists(L.#slot) OR (attribute_exists(L.#slot.o) AND L.#slot.o <> :proxied) OR L.#slot.e < :now)' +
        ' AND attribute_exists(#sealed)',
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
      if (!isDynamoError(error, 'TransactionCanceledException')) throw error;
      this.meter?.record('lease', undefined);
      const [keyReason, recordReason] = error.CancellationReasons ?? [];
      if (recordReason?.Code === CONDITION_FAILED) return { granted: false, idempotencyTaken: true };
      // The key's condition failed: the item as it was (none: no such key).
      if (keyReason?.Code === CONDITION_FAILED)
        return { granted: false, current: keyReason.Item ? fromKeyItem(keyReason.Item) : undefined };
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

  tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    return this.closeSlot('complete', attempt, false);
  }

  refundProxied(refund: ProxiedRefund): Promise<CompletionAttemptResult> {
    return this.closeSlot('refund-proxied', refund, true);
  }

  /**
   * The completion's conditional write (completionWrite; `proxied`: a proxied use's refund), the
   * tier moved as refundSortKey says (a refund only).
   */
  private async closeSlot(
    operation: string,
    attempt: CompletionAttempt,
    proxied: boolean,
  ): Promise<CompletionAttemptResult> {
    let result = await this.conditionalUpdate(operation, completionWrite(attempt, true, proxied), 'updated');
    if (!result.ok) {
      const current = toSlottedRecord(await this.readProjected(attempt.keyId, SLOTTED_PROJECTION));
      // A refund refused for its count past the top tier (rare): the same write, without the tier move.
      if (!refundsUse(attempt.outcome) || !current || current.usageCount <= MAX_SORTED_COUNT)
        return { applied: false, current };
      result = await this.conditionalUpdate(operation, completionWrite(attempt, false, proxied), 'updated');
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
      const applied = await this.countOnce({
        Key: { [KEY]: keyId },
        UpdateExpression: `SET usageCount = usageCount + :one, lastUsedAt = :nowIso${moveTier ? ', #usk = #usk + :tier' : ''}`,
        // Invariant: a key belongs to one pool (and exists); the tier moves only below the top.
        ConditionExpression: moveTier ? '#pool = :pool AND usageCount < :top' : '#pool = :pool AND usageCount >= :top',
        ExpressionAttributeNames: { '#pool': 'pool', ...(moveTier ? { '#usk': INDEX.sortKey } : {}) },
        ExpressionAttributeValues: {
          ':pool': pool,
          ':one': 1,
          ':top': MAX_SORTED_COUNT,
          ':nowIso': new Date(nowMs).toISOString(),
          ...(moveTier ? { ':tier': USAGE_TIER } : {}),
        },
      });
      const current = toKeyRecord(await this.readProjected(keyId, RECORD_PROJECTION));
      // The count as it stands once this one is in (a concurrent count may be in it too).
      if (applied) return current && { keyId, usageCount: current.usageCount };
      if (current?.pool !== pool) return undefined;
      // Refused only by the tier test: a concurrent increment crossed the top; try the other way.
      moveTier = current.usageCount < MAX_SORTED_COUNT;
    }
    throw new Error('an increment kept losing to concurrent increments at the top tier');
  }

  /**
   * A count's conditional write, applied once however often it is sent: a transaction of that one
   * write under a ClientRequestToken drawn here, so when its answer is lost after it applied, the
   * SDK's retry (the same request, the same token) is answered as done and changes nothing
   * (DynamoDB keeps a token ten minutes). A plain UpdateItem sent again would count the use twice.
   * True when it applied, false when its condition refused it; a cancellation for load is sent
   * again under a new token (nothing was applied).
   */
  private async countOnce(write: ConditionalWrite): Promise<boolean> {
    try {
      const out = await retryBusy(
        () =>
          this.client.send(
            new TransactWriteCommand({
              TransactItems: [{ Update: { ...write, TableName: this.tableName } }],
              ClientRequestToken: randomUUID(),
              ...this.capacity,
            }),
          ),
        busyTransaction,
      );
      this.meter?.record('increment', out.ConsumedCapacity);
      return true;
    } catch (error) {
      if (!isDynamoError(error, 'TransactionCanceledException')) throw error;
      this.meter?.record('increment', undefined);
      if (error.CancellationReasons?.[0]?.Code === CONDITION_FAILED) return false;
      throw error;
    }
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
