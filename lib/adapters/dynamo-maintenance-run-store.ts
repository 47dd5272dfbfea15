/**
 * The DynamoDB implementation of MaintenanceRunStore: one item per run in keypool's table (keyId
 * `run#<startedAt>#<random>`), listed newest first through the pool-keys index under
 * MAINTENANCE_RUNS, deleted by DynamoDB's TTL 30 days after the run (lib/table.ts).
 */
import { randomBytes } from 'node:crypto';
import { PutCommand, QueryCommand } from './dynamo-wire.js';
import { MAINTENANCE_RUN_RETENTION_DAYS, type MaintenanceRunRecord } from '../domain/maintenance-run.js';
import type { MaintenanceRunStore } from '../ports/maintenance-run-store.js';
import { MAINTENANCE_RUN_PREFIX, MAINTENANCE_RUNS, TABLE, TTL_ATTRIBUTE } from '../table.js';
import { DynamoTable } from './dynamo-table.js';
import type { Item } from './key-item.js';

const { partitionKey: KEY, poolIndex: POOL_INDEX } = TABLE;
const DAY_SECONDS = 86_400;

/** The record an item holds; an item of another shape reads as none. */
function toRun(item: Item): MaintenanceRunRecord | undefined {
  if (typeof item.startedAt !== 'string' || typeof item.finishedAt !== 'string') return undefined;
  const count = (field: string): number => (typeof item[field] === 'number' ? item[field] : 0);
  const firstErrors = Array.isArray(item.firstErrors)
    ? (item.firstErrors as unknown[]).flatMap((e) => {
        const { keyId, reason } = (e ?? {}) as { keyId?: unknown; reason?: unknown };
        return typeof keyId === 'string' && typeof reason === 'string' ? [{ keyId, reason }] : [];
      })
    : [];
  return {
    startedAt: item.startedAt,
    finishedAt: item.finishedAt,
    pool: typeof item.scope === 'string' ? item.scope : null,
    checked: count('checked'),
    changed: count('changed'),
    errors: count('errors'),
    firstErrors,
  };
}

export class DynamoMaintenanceRunStore extends DynamoTable implements MaintenanceRunStore {
  async record(run: MaintenanceRunRecord): Promise<void> {
    const startedMs = Date.parse(run.startedAt);
    const out = await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          // The start first, so the index lists runs in time order; the suffix keeps two runs of one millisecond apart.
          [KEY]: `${MAINTENANCE_RUN_PREFIX}${run.startedAt}#${randomBytes(4).toString('hex')}`,
          [POOL_INDEX.partitionKey]: MAINTENANCE_RUNS,
          startedAt: run.startedAt,
          finishedAt: run.finishedAt,
          ...(run.pool === null ? {} : { scope: run.pool }),
          checked: run.checked,
          changed: run.changed,
          errors: run.errors,
          firstErrors: run.firstErrors,
          [TTL_ATTRIBUTE]: Math.ceil(startedMs / 1000) + MAINTENANCE_RUN_RETENTION_DAYS * DAY_SECONDS,
        },
        // A new id each time: the condition only says a run never overwrites another.
        ConditionExpression: 'attribute_not_exists(#key)',
        ExpressionAttributeNames: { '#key': KEY },
        ...this.capacity,
      }),
    );
    this.meter?.record('run', out.ConsumedCapacity);
  }

  async recent(limit: number, nowMs: number): Promise<MaintenanceRunRecord[]> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: POOL_INDEX.name,
        KeyConditionExpression: '#pool = :runs',
        ExpressionAttributeNames: { '#pool': POOL_INDEX.partitionKey },
        ExpressionAttributeValues: { ':runs': MAINTENANCE_RUNS },
        ScanIndexForward: false,
        Limit: limit,
        ...this.capacity,
      }),
    );
    this.meter?.record('runs', out.ConsumedCapacity);
    const ids = (out.Items ?? []).map((item) => item[KEY] as string);
    const items = await this.batchGet('run-items', ids);
    // DynamoDB deletes an expired item within days, not at once: one past its TTL is gone already.
    const nowSeconds = nowMs / 1000;
    return items
      .filter((item) => typeof item[TTL_ATTRIBUTE] !== 'number' || item[TTL_ATTRIBUTE] > nowSeconds)
      .map(toRun)
      .filter((run): run is MaintenanceRunRecord => run !== undefined)
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }
}
