/**
 * The DynamoDB implementation of KeyStore. Every method is one request (list and the
 * candidate query may page); every rule that must hold under concurrency is the
 * ConditionExpression of that request, named in a comment beside it.
 */
import { ConditionalCheckFailedException, type ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  Candidate,
  CompletionAttempt,
  CompletionAttemptResult,
  KeyStore,
  LeaseAttempt,
  LeaseAttemptResult,
  ScanPage,
  StoredKey,
} from '../domain/key-store.js';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { inUsageIndex, outcomeStatusChange, refundsUse } from '../domain/rules.js';
import type { KeyStatus, Outcome } from '../domain/types.js';
import { TABLE, USAGE_TIER, usageSortKey, usageSortKeyBound } from '../table.js';

type Item = Record<string, unknown>;

/** Collects what each request cost, for the benchmark and the capacity figures in the README. */
export interface CapacityMeter {
  record(operation: string, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void;
}

export interface DynamoKeyStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  meter?: CapacityMeter;
}

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;

/**
 * effectiveStatus(...) === 'active' as a condition: active, or cooling with the cooldown
 * passed. Needs `#status`, `:active`, `:cooling` and `:now`.
 */
const EFFECTIVELY_ACTIVE = '(#status = :active OR (#status = :cooling AND cooldownUntil <= :now))';

/**
 * A lease slot as the item stores it: one-letter names, because every lease writes one and
 * the item's size is what each read and write is billed by. Only this module spells them.
 */
interface StoredSlot {
  /** nonce */
  n: string;
  /** expiry, ms since the epoch */
  e: number;
  /** outcome, once completed */
  o?: Outcome;
}

function toStoredSlots(slots: StoredKey['slots']): Record<string, StoredSlot> {
  return Object.fromEntries(
    Object.entries(slots).map(([slot, s]) => [slot, { n: s.nonce, e: s.expiresAtMs, ...(s.outcome === undefined ? {} : { o: s.outcome }) }]),
  );
}

function fromStoredSlots(stored: Record<string, StoredSlot> | undefined): StoredKey['slots'] {
  return Object.fromEntries(
    Object.entries(stored ?? {}).map(([slot, s]) => [slot, { nonce: s.n, expiresAtMs: s.e, ...(s.o === undefined ? {} : { outcome: s.o }) }]),
  );
}

/**
 * The item for a key, index attributes included: `upk` only while the key's status keeps it
 * in the usage index (inUsageIndex), `usk` from its count and last use (or import). Every
 * writer of whole items goes through this.
 */
export function toKeyItem(key: StoredKey): Item {
  const { slots, ...record } = key;
  const stampMs = Date.parse(key.lastUsedAt ?? key.createdAt);
  return {
    ...record,
    L: toStoredSlots(slots),
    usk: usageSortKey(key.usageCount, Number.isNaN(stampMs) ? Date.now() : stampMs),
    ...(inUsageIndex(key.status) ? { [INDEX.partitionKey]: key.pool } : {}),
  };
}

/** The key an item holds, without the index attributes; undefined for no item. */
export function fromKeyItem(item: Item | undefined): StoredKey | undefined {
  if (!item) return undefined;
  const { L, upk: _upk, usk: _usk, ...record } = item;
  return {
    ...(record as unknown as StoredKey),
    lastUsedAt: (record.lastUsedAt as string | null | undefined) ?? null,
    slots: fromStoredSlots(L as Record<string, StoredSlot> | undefined),
  };
}

/** The old item a failed condition returns is not unmarshalled by the document client. */
function unmarshallOld(item: NonNullable<ConditionalCheckFailedException['Item']>): Item {
  return unmarshall(item);
}

function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return error instanceof ConditionalCheckFailedException;
}

export class DynamoKeyStore implements KeyStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly meter: CapacityMeter | undefined;

  constructor(options: DynamoKeyStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.meter = options.meter;
  }

  private get capacity(): { ReturnConsumedCapacity?: 'INDEXES' } {
    return this.meter ? { ReturnConsumedCapacity: 'INDEXES' } : {};
  }

  /** Runs a conditional update; a failed condition yields the item as it was, not an exception. */
  private async conditionalUpdate(
    operation: string,
    input: Omit<ConstructorParameters<typeof UpdateCommand>[0], 'TableName' | 'ReturnValues'>,
  ): Promise<{ ok: true; item: Item } | { ok: false; item: Item | undefined }> {
    try {
      const out = await this.client.send(
        new UpdateCommand({
          ...input,
          TableName: this.tableName,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ...this.capacity,
        }),
      );
      this.meter?.record(operation, out.ConsumedCapacity);
      return { ok: true, item: out.Attributes ?? {} };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // The exception carries the old item, secret included: it is read here and never rethrown.
      this.meter?.record(operation, undefined);
      return { ok: false, item: error.Item ? unmarshallOld(error.Item) : undefined };
    }
  }

  async insert(key: StoredKey): Promise<{ inserted: boolean; key: StoredKey }> {
    try {
      const out = await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: toKeyItem(key),
          // Invariant: one item per secret. Importing a key again adds nothing and changes nothing.
          ConditionExpression: 'attribute_not_exists(#key)',
          ExpressionAttributeNames: { '#key': KEY },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ...this.capacity,
        }),
      );
      this.meter?.record('insert', out.ConsumedCapacity);
      return { inserted: true, key };
    } catch (error) {
      if (!isConditionFailure(error) || !error.Item) throw error;
      this.meter?.record('insert', undefined);
      return { inserted: false, key: fromKeyItem(unmarshallOld(error.Item)) ?? key };
    }
  }

  async get(keyId: string): Promise<StoredKey | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { [KEY]: keyId }, ConsistentRead: true, ...this.capacity }),
    );
    this.meter?.record('get', out.ConsumedCapacity);
    return fromKeyItem(out.Item);
  }

  async candidates(pool: string, maxUses: number, limit: number, nowMs: number): Promise<Candidate[]> {
    const found: Candidate[] = [];
    let start: Item | undefined;
    // Pages only while every item read so far was a cooling key (filtered out): the range
    // itself holds only keys under the cap, so the first page normally answers.
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEX.name,
          KeyConditionExpression: '#upk = :pool AND #usk < :bound',
          FilterExpression: 'attribute_not_exists(cooldownUntil) OR cooldownUntil <= :now',
          ProjectionExpression: '#key, usageCount',
          ExpressionAttributeNames: { '#upk': INDEX.partitionKey, '#usk': INDEX.sortKey, '#key': KEY },
          ExpressionAttributeValues: { ':pool': pool, ':bound': usageSortKeyBound(maxUses), ':now': nowMs },
          Limit: limit,
          ExclusiveStartKey: start,
          ...this.capacity,
        }),
      );
      this.meter?.record('candidates', out.ConsumedCapacity);
      for (const item of out.Items ?? []) {
        found.push({ keyId: item[KEY] as string, usageCount: item.usageCount as number });
      }
      start = out.LastEvaluatedKey;
    } while (found.length === 0 && start);
    return found;
  }

  async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    const result = await this.conditionalUpdate('lease', {
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
    });
    const key = fromKeyItem(result.item);
    return result.ok && key ? { granted: true, key } : { granted: false, current: key };
  }

  async tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    const set = ['L.#slot.o = :outcome'];
    const remove: string[] = [];
    const names: Record<string, string> = { '#slot': String(attempt.slot) };
    const values: Item = { ':nonce': attempt.nonce, ':outcome': attempt.outcome };
    // Invariant: counting once. Only the lease's own open slot can be completed, and
    // completing it closes it, so a repeated completion changes nothing.
    let condition = 'L.#slot.n = :nonce AND attribute_not_exists(L.#slot.o)';
    if (refundsUse(attempt.outcome)) {
      set.push('usageCount = usageCount - :one', '#usk = #usk - :tier');
      names['#usk'] = INDEX.sortKey;
      values[':one'] = 1;
      values[':tier'] = USAGE_TIER;
    }
    const status = attempt.applyStatus ? outcomeStatusChange(attempt.outcome) : undefined;
    if (status) {
      set.push('#status = :status');
      names['#status'] = 'status';
      values[':status'] = status.to;
      if (status.to === 'cooling') {
        set.push('cooldownUntil = :until');
        values[':until'] = attempt.cooldownUntilMs;
      }
      if (!inUsageIndex(status.to)) {
        remove.push('#upk');
        names['#upk'] = INDEX.partitionKey;
      }
      if (status.from) {
        // outcomeStatusChange's `from`: a caller's report never overrides an operator's
        // "disabled" (nor revives an exhausted key).
        condition += ` AND #status IN (${status.from.map((_, i) => `:from${i}`).join(', ')})`;
        status.from.forEach((s, i) => (values[`:from${i}`] = s));
      }
    }
    const result = await this.conditionalUpdate('complete', {
      Key: { [KEY]: attempt.keyId },
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    const key = fromKeyItem(result.item);
    return result.ok && key ? { applied: true, key } : { applied: false, current: key };
  }

  async increment(keyId: string, nowMs: number): Promise<StoredKey | undefined> {
    const result = await this.conditionalUpdate('increment', {
      Key: { [KEY]: keyId },
      // Atomic +1 on the count and on its tier in the sort key: N concurrent increments add N.
      UpdateExpression: 'SET usageCount = usageCount + :one, #usk = #usk + :tier, lastUsedAt = :nowIso',
      ConditionExpression: 'attribute_exists(#key)',
      ExpressionAttributeNames: { '#key': KEY, '#usk': INDEX.sortKey },
      ExpressionAttributeValues: { ':one': 1, ':tier': USAGE_TIER, ':nowIso': new Date(nowMs).toISOString() },
    });
    return result.ok ? fromKeyItem(result.item) : undefined;
  }

  async setStatus(keyId: string, status: Extract<KeyStatus, 'active' | 'disabled'>): Promise<StoredKey | undefined> {
    const update =
      status === 'active'
        ? 'SET #status = :status, #upk = #pool REMOVE cooldownUntil'
        : 'SET #status = :status REMOVE #upk, cooldownUntil';
    const result = await this.conditionalUpdate('set-status', {
      Key: { [KEY]: keyId },
      UpdateExpression: update,
      ConditionExpression: 'attribute_exists(#key)',
      ExpressionAttributeNames: {
        '#key': KEY,
        '#status': 'status',
        '#upk': INDEX.partitionKey,
        ...(status === 'active' ? { '#pool': 'pool' } : {}),
      },
      ExpressionAttributeValues: { ':status': status },
    });
    return result.ok ? fromKeyItem(result.item) : undefined;
  }

  async scan(filter: { pool?: string; status?: KeyStatus; nowMs: number }, limit: number, start?: Item): Promise<ScanPage> {
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Item = {};
    if (filter.pool !== undefined) {
      conditions.push('#pool = :pool');
      names['#pool'] = 'pool';
      values[':pool'] = filter.pool;
    }
    if (filter.status !== undefined) {
      names['#status'] = 'status';
      values[':now'] = filter.nowMs;
      if (filter.status === 'active') {
        conditions.push(EFFECTIVELY_ACTIVE);
        values[':active'] = 'active';
        values[':cooling'] = 'cooling';
      } else if (filter.status === 'cooling') {
        conditions.push('(#status = :cooling AND cooldownUntil > :now)');
        values[':cooling'] = 'cooling';
      } else {
        conditions.push('#status = :status');
        values[':status'] = filter.status;
        delete values[':now'];
      }
    }
    const out = await this.client.send(
      new ScanCommand({
        TableName: this.tableName,
        Limit: limit,
        ExclusiveStartKey: start,
        ...(conditions.length
          ? { FilterExpression: conditions.join(' AND '), ExpressionAttributeNames: names, ExpressionAttributeValues: values }
          : {}),
        ...this.capacity,
      }),
    );
    this.meter?.record('scan', out.ConsumedCapacity);
    return {
      keys: (out.Items ?? []).map((item) => fromKeyItem(item)).filter((key): key is StoredKey => key !== undefined),
      next: out.LastEvaluatedKey,
    };
  }
}
