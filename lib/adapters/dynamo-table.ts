/**
 * What every DynamoDB adapter of keypool's table shares: the client and table name, the
 * optional capacity meter (the benchmark and the cost figures in docs/leasing.md), the one way
 * a conditional write is run, so a refused condition is an answer, never an exception, and the
 * one way a busy table is reported: StoreThrottled, never an internal error nor a verdict on a
 * key.
 */
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import type { BatchGetCommandOutput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import {
  BatchGetCommand,
  type DynamoCalls,
  type DynamoServiceError,
  isDynamoError,
  QueryCommand,
  UpdateCommand,
} from './dynamo-wire.js';
import { mapLimit } from '../shared/map-limit.js';
import { StoreThrottled, type TableBusy } from '../domain/errors.js';
import type { Item } from './key-item.js';
import { TABLE } from '../table.js';

/** BatchGetItem requests one read sends at once. */
const BATCH_GETS_IN_FLIGHT = 4;

/**
 * Attempts, in all, of a write DynamoDB refuses for a conflict with a concurrent transaction (or
 * a transaction it cancels for throttling, which the SDK does not retry).
 */
export const BUSY_ATTEMPTS = 5;
/** The ceiling of the first wait before such a write is sent again; it doubles each time. */
const BUSY_BACKOFF_MS = 20;

/** Why DynamoDB refused a request without applying it, when the refusal is about load: a reason to try again. */
export type Busy = TableBusy | undefined;

/**
 * Sends a request again while `busy` says DynamoDB refused it for load — a conflict with a
 * concurrent transaction, or throttling the SDK does not retry — rather than for its
 * condition: nothing was applied, so sending it again is safe. Up to BUSY_ATTEMPTS in all, each
 * after a random wait below a doubling ceiling (full jitter: writers that collided do not
 * collide again in step); past them StoreThrottled, so a busy table is never read as an answer
 * about an item.
 */
export async function retryBusy<T>(send: () => Promise<T>, busy: (error: unknown) => Busy): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      const why = busy(error);
      if (!why) throw error;
      if (attempt >= BUSY_ATTEMPTS) throw new StoreThrottled(why);
      const ceiling = BUSY_BACKOFF_MS * 2 ** (attempt - 1);
      await new Promise((done) => setTimeout(done, Math.random() * ceiling));
    }
  }
}

/** A single write refused for a concurrent transaction on its item (the SDK does not retry it). */
function conflicted(error: unknown): Busy {
  return isDynamoError(error, 'TransactionConflictException')
    ? { reason: 'conflict', dynamoCode: 'TransactionConflictException' }
    : undefined;
}

/**
 * The operation names the adapters report to a CapacityMeter that are reads; every other one
 * is a write. (DynamoDB Local reports only CapacityUnits, so the name tells which.)
 */
export const READ_OPERATIONS: ReadonlySet<string> = new Set([
  'candidates',
  'get',
  'record',
  'pool',
  'pools',
  'pool-keys',
  'pool-items',
  'sealed-scan',
  'runs',
  'run-items',
  'job-find',
]);

/** Collects what each request cost, for the benchmark and the capacity figures in docs/leasing.md. */
export interface CapacityMeter {
  record(operation: string, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void;
}

export interface DynamoTableOptions {
  client: DynamoCalls;
  tableName: string;
  meter?: CapacityMeter;
}

/** One conditional UpdateItem, as a request of its own or a transaction's part. */
export interface ConditionalWrite {
  Key: Item;
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Item;
}

export type ConditionalResult = { ok: true; item: Item } | { ok: false; item: Item | undefined };

export class DynamoTable {
  readonly client: DynamoCalls;
  readonly tableName: string;
  readonly meter: CapacityMeter | undefined;

  constructor(options: DynamoTableOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.meter = options.meter;
  }

  /** Asks for consumed capacity only when someone measures it. */
  get capacity(): { ReturnConsumedCapacity?: 'INDEXES' } {
    return this.meter ? { ReturnConsumedCapacity: 'INDEXES' } : {};
  }

  /**
   * Runs a conditional UpdateItem. Applied: the item as written (ALL_NEW), or only the
   * attributes the update set (`returns: 'updated'`: a path that must not read the sealed
   * secret). Refused: the item as it was (undefined: none), read from the exception — or, with
   * `returns: 'updated'`, nothing (the caller reads what it needs with a projection). The old
   * item may hold the secret: it is read here and never rethrown. A write refused for a
   * concurrent transaction is sent again (retryBusy): a conflict is not a refused condition.
   */
  async conditionalUpdate(
    operation: string,
    input: Omit<UpdateCommandInput, 'TableName' | 'ReturnValues'>,
    returns: 'all' | 'updated' = 'all',
  ): Promise<ConditionalResult> {
    const values =
      returns === 'all'
        ? ({ ReturnValues: 'ALL_NEW', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } as const)
        : ({ ReturnValues: 'UPDATED_NEW', ReturnValuesOnConditionCheckFailure: 'NONE' } as const);
    try {
      const out = await retryBusy(
        () => this.client.send(new UpdateCommand({ ...input, TableName: this.tableName, ...values, ...this.capacity })),
        conflicted,
      );
      this.meter?.record(operation, out.ConsumedCapacity);
      return { ok: true, item: out.Attributes ?? {} };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.meter?.record(operation, undefined);
      return { ok: false, item: error.Item };
    }
  }

  /**
   * One page of the pool-keys index under `partition` (a pool, or a directory of records), in
   * key-id order from after `afterId`: the ids, and the last one read when more may follow.
   */
  async poolIndexPage(
    operation: string,
    partition: string,
    limit: number,
    afterId: string | undefined,
  ): Promise<{ ids: string[]; lastId: string | undefined }> {
    const { partitionKey: KEY, poolIndex: POOL_INDEX } = TABLE;
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: POOL_INDEX.name,
        KeyConditionExpression: '#pool = :pool',
        ExpressionAttributeNames: { '#pool': POOL_INDEX.partitionKey },
        ExpressionAttributeValues: { ':pool': partition },
        Limit: limit,
        ...(afterId === undefined
          ? {}
          : { ExclusiveStartKey: { [POOL_INDEX.partitionKey]: partition, [KEY]: afterId } }),
        ...this.capacity,
      }),
    );
    this.meter?.record(operation, out.ConsumedCapacity);
    const last: unknown = out.LastEvaluatedKey?.[KEY];
    return {
      ids: (out.Items ?? []).map((item) => String(item[KEY])),
      lastId: typeof last === 'string' ? last : undefined,
    };
  }

  /** Every key id under one partition of a keys-only index (`index`: its name and partition key), all pages read. */
  async partitionIds(
    operation: string,
    index: { name: string; partitionKey: string },
    partition: string,
  ): Promise<string[]> {
    const { partitionKey: KEY } = TABLE;
    const ids: string[] = [];
    let start: Item | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index.name,
          KeyConditionExpression: '#partition = :partition',
          ExpressionAttributeNames: { '#partition': index.partitionKey },
          ExpressionAttributeValues: { ':partition': partition },
          ...(start ? { ExclusiveStartKey: start } : {}),
          ...this.capacity,
        }),
      );
      this.meter?.record(operation, out.ConsumedCapacity);
      for (const item of out.Items ?? []) if (typeof item[KEY] === 'string') ids.push(item[KEY]);
      start = out.LastEvaluatedKey;
    } while (start);
    return ids;
  }

  /**
   * Reads items by key id, 100 to a request and up to BATCH_GETS_IN_FLIGHT requests at once
   * (a page of 1000 keys costs the time of three requests, not ten), retrying what DynamoDB
   * leaves unprocessed; missing ids are skipped, and the items come in no particular order.
   */
  async batchGet(
    operation: string,
    keyIds: readonly string[],
    fields?: { ProjectionExpression: string; ExpressionAttributeNames: Record<string, string> },
  ): Promise<Item[]> {
    const chunks: string[][] = [];
    for (let start = 0; start < keyIds.length; start += 100) chunks.push(keyIds.slice(start, start + 100));
    const pages = await mapLimit(chunks, BATCH_GETS_IN_FLIGHT, async (chunk) => {
      const items: Item[] = [];
      let keys: Record<string, unknown>[] | undefined = chunk.map((keyId) => ({ keyId }));
      for (let round = 0; keys && keys.length > 0; round++) {
        if (round > 0) await new Promise((done) => setTimeout(done, Math.min(1000, 25 * 2 ** round)));
        const out: BatchGetCommandOutput = await this.client.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ...(fields ?? {}) } },
            ...this.capacity,
          }),
        );
        this.meter?.record(operation, out.ConsumedCapacity);
        items.push(...(out.Responses?.[this.tableName] ?? []));
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys;
      }
      return items;
    });
    return pages.flat();
  }
}

/** A refused condition: the one DynamoDB error keypool treats as an answer. */
export function isConditionFailure(error: unknown): error is DynamoServiceError {
  return isDynamoError(error, 'ConditionalCheckFailedException');
}
