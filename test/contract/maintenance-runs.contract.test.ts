/**
 * The store contract for maintenance run records: newest first, at most the number asked for,
 * gone 30 days after the run; and on DynamoDB, the item carries the TTL that deletes it.
 * Run against every implementation (in-memory and DynamoDB Local).
 */
import { GetCommand, QueryCommand } from '../../lib/adapters/dynamo-wire.js';
import { describe, expect, it } from 'vitest';
import { DynamoMaintenanceRunStore } from '../../lib/adapters/dynamo-maintenance-run-store.js';
import { MAINTENANCE_RUN_RETENTION_DAYS, type MaintenanceRunRecord } from '../../lib/domain/maintenance-run.js';
import type { MaintenanceRunStore } from '../../lib/ports/maintenance-run-store.js';
import { MAINTENANCE_RUNS, TABLE } from '../../lib/table.js';
import { createTestTable } from '../support/dynamo.js';
import { MemoryMaintenanceRunStore } from '../support/memory-maintenance-runs.js';
import { iso, T0 } from '../support/store-contract.js';

const DAY = 86_400_000;

function run(startMs: number, overrides: Partial<MaintenanceRunRecord> = {}): MaintenanceRunRecord {
  return {
    startedAt: iso(startMs),
    finishedAt: iso(startMs + 1_500),
    pool: null,
    checked: 4,
    changed: 1,
    errors: 1,
    firstErrors: [{ keyId: 'k_000000000000000000000001', reason: 'provider timed out' }],
    ...overrides,
  };
}

const STORES: [string, () => Promise<MaintenanceRunStore>][] = [
  ['in-memory', () => Promise.resolve(new MemoryMaintenanceRunStore())],
  [
    'DynamoDB',
    async () => {
      const table = await createTestTable('runs');
      return new DynamoMaintenanceRunStore({ client: table.store.client, tableName: table.tableName });
    },
  ],
];

describe.each(STORES)('%s maintenance runs', (_name, build) => {
  it('reads back the newest runs first, at most the number asked for, each as recorded', async () => {
    // Prepare
    const store = await build();
    const runs = [run(T0), run(T0 + 60_000, { pool: 'stability', errors: 0, firstErrors: [] }), run(T0 + 120_000)];
    // Act
    for (const r of runs) await store.record(r);
    const recent = await store.recent(2, T0 + 180_000);
    // Assess
    expect(recent).toEqual([runs[2], runs[1]]);
  });

  it('keeps a run for 30 days and no longer', async () => {
    // Prepare
    const store = await build();
    await store.record(run(T0));
    // Act
    const before = await store.recent(10, T0 + MAINTENANCE_RUN_RETENTION_DAYS * DAY - 60_000);
    const after = await store.recent(10, T0 + MAINTENANCE_RUN_RETENTION_DAYS * DAY + 60_000);
    // Assess
    expect(before).toHaveLength(1);
    expect(after).toEqual([]);
  });
});

describe('DynamoDB maintenance run item', () => {
  it('expires by the table TTL 30 days after the run starts, and lists under its own index partition', async () => {
    // Prepare
    const table = await createTestTable('runs');
    const store = new DynamoMaintenanceRunStore({ client: table.store.client, tableName: table.tableName });
    // Act
    await store.record(run(T0));
    const listed = await table.store.client.send(
      new QueryCommand({
        TableName: table.tableName,
        IndexName: TABLE.poolIndex.name,
        KeyConditionExpression: '#pool = :runs',
        ExpressionAttributeNames: { '#pool': TABLE.poolIndex.partitionKey },
        ExpressionAttributeValues: { ':runs': MAINTENANCE_RUNS },
      }),
    );
    const keyId = String(listed.Items?.[0]?.keyId);
    const item = await table.store.client.send(new GetCommand({ TableName: table.tableName, Key: { keyId } }));
    // Assess
    expect(listed.Items).toHaveLength(1);
    expect(keyId).toMatch(/^run#2030-01-01T00:00:00\.000Z#[0-9a-f]{8}$/);
    expect(item.Item?.ttl).toBe(T0 / 1000 + MAINTENANCE_RUN_RETENTION_DAYS * 86_400);
  });
});
