/**
 * Async jobs' pins over DynamoDB (JobPins): one item per pool and job id,
 * `job#<pool>#<digest of the job id>` (lib/table.ts), written by one conditional PutItem and
 * deleted by DynamoDB's TTL a day later. The job id is kept only as a digest: an id from a
 * caller's poll (any length, any characters) is looked up, never spelled into a key. The item
 * carries no `pool`: it sits in no index, so nothing that reads keys meets it.
 */
import { createHash } from 'node:crypto';
import { GetCommand, PutCommand } from './dynamo-wire.js';
import type { JobPin, JobPins } from '../ports/proxy.js';
import { JOB_PIN_PREFIX, TABLE, TTL_ATTRIBUTE } from '../table.js';
import { DynamoTable, type DynamoTableOptions, isConditionFailure } from './dynamo-table.js';

const KEY = TABLE.partitionKey;

/** The partition key of a job's pin in a pool (pool names never hold "#"). */
export function jobPinKey(pool: string, jobId: string): string {
  return `${JOB_PIN_PREFIX}${pool}#${createHash('sha256').update(jobId, 'utf8').digest('hex')}`;
}

export class DynamoJobPins extends DynamoTable implements JobPins {
  private readonly clock: () => number;

  constructor(options: DynamoTableOptions & { clock?: () => number }) {
    super(options);
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Pins the job to its key. A pin that already stands for the same id in the pool with another
   * key keeps it (the first answer that named the id started the job); the same pin again is a
   * no-op.
   */
  async pin(pin: JobPin): Promise<void> {
    try {
      const out = await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            [KEY]: jobPinKey(pin.pool, pin.jobId),
            pinnedKeyId: pin.keyId,
            expiresAtMs: pin.expiresAtMs,
            [TTL_ATTRIBUTE]: Math.ceil(pin.expiresAtMs / 1000),
          },
          // Invariant: one key per job id and pool: a standing pin is replaced only by itself
          // or once it expired, so a poll never goes out with a key that did not start the job.
          ConditionExpression: 'attribute_not_exists(#key) OR #pinned = :keyId OR #expires <= :now',
          ExpressionAttributeNames: { '#key': KEY, '#pinned': 'pinnedKeyId', '#expires': 'expiresAtMs' },
          ExpressionAttributeValues: { ':keyId': pin.keyId, ':now': this.clock() },
          ...this.capacity,
        }),
      );
      this.meter?.record('job-pin', out.ConsumedCapacity);
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async find(pool: string, jobId: string, nowMs: number): Promise<string | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [KEY]: jobPinKey(pool, jobId) },
        ConsistentRead: true,
        ProjectionExpression: '#pinned, #expires',
        ExpressionAttributeNames: { '#pinned': 'pinnedKeyId', '#expires': 'expiresAtMs' },
        ...this.capacity,
      }),
    );
    this.meter?.record('job-find', out.ConsumedCapacity);
    const item = out.Item;
    // TTL deletes lag (up to days): an expired pin is no pin.
    if (!item || typeof item.pinnedKeyId !== 'string' || !(Number(item.expiresAtMs) > nowMs)) return undefined;
    return item.pinnedKeyId;
  }
}
