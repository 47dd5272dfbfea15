/**
 * What every DynamoDB adapter of keypool's table shares: the client and table name, the
 * optional capacity meter (the benchmark and the cost figures in docs/leasing.md), and the one way a
 * conditional write is run, so a refused condition is an answer, never an exception.
 */
import { ConditionalCheckFailedException, type ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { mapLimit } from '../shared/map-limit.js';
import type { Item } from './key-item.js';

/** BatchGetItem requests one read sends at once. */
const BATCH_GETS_IN_FLIGHT = 4;

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
]);

/** Collects what each request cost, for the benchmark and the capacity figures in docs/leasing.md. */
export interface CapacityMeter {
  record(operation: string, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void;
}

export interface DynamoTableOptions {
  client: DynamoDBDocumentClient;
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
  readonly client: DynamoDBDocumentClient;
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
   * item may hold the secret: it is read here and never rethrown.
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
      const out = await this.client.send(
        new UpdateCommand({ ...input, TableName: this.tableName, ...values, ...this.capacity }),
      );
      this.meter?.record(operation, out.ConsumedCapacity);
      return { ok: true, item: out.Attributes ?? {} };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.meter?.record(operation, undefined);
      return { ok: false, item: error.Item ? unmarshall(error.Item) : undefined };
    }
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
export function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return error instanceof ConditionalCheckFailedException;
}
