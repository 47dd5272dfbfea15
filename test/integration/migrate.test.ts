import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoCalls, PutCommand } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoBalanceStore } from '../../lib/adapters/dynamo-balance-store.js';
import { DynamoKeyAdminStore } from '../../lib/adapters/dynamo-key-admin-store.js';
import { DynamoMigrationStore } from '../../lib/adapters/dynamo-migration-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { fileSource, legacyTableSource } from '../../lib/adapters/migration-sources.js';
import { documentClient, dynamoClient } from '../../lib/adapters/dynamo-client.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { UnreadableSource } from '../../lib/domain/errors.js';
import { MAX_ROW_BYTES } from '../../lib/adapters/export-reader.js';
import { StabilityClient } from '../../lib/adapters/stability-client.js';
import { maintain } from '../../lib/use-cases/maintenance/maintain.js';
import { migrate, type MigrateOptions } from '../../lib/use-cases/migration/migrate.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { USAGE_TIER, usageSortKey } from '../../lib/table.js';
import {
  createTestTable,
  dynamoEndpoint,
  fakeKey,
  scanOpened,
  scanTable,
  type TestTable,
  uniqueName,
} from '../support/dynamo.js';
import { startFakeProvider } from '../support/fake-provider.js';
import { testSealer } from '../support/sealing.js';

let client: DynamoCalls;
/** the SDK's client: the legacy tables are created, and read by the migration, through it */
let legacyClient: DynamoDBClient;
const dir = mkdtempSync(join(tmpdir(), 'keypool-migrate-'));

beforeAll(() => {
  client = documentClient({ endpoint: dynamoEndpoint(), region: undefined });
  legacyClient = dynamoClient({ endpoint: dynamoEndpoint(), region: undefined });
});

async function freshTable(): Promise<string> {
  const name = uniqueName('migrate');
  await ensureTable(dynamoEndpoint(), name);
  return name;
}

function exportFile(docs: unknown[], form: 'lines' | 'array' = 'lines'): string {
  const path = join(dir, `${uniqueName('export')}.json`);
  writeFileSync(path, form === 'array' ? JSON.stringify(docs) : `${docs.map((d) => JSON.stringify(d)).join('\n')}\n`);
  return path;
}

function run(tableName: string, source: MigrateOptions['source'], options: Partial<MigrateOptions> = {}) {
  return migrate({
    source,
    store: new DynamoMigrationStore({ client, tableName }),
    pools: new DynamoPoolStore({ client, tableName }),
    sealer: testSealer(),
    clock: () => Date.UTC(2026, 0, 1),
    ...options,
  });
}

/** What a key records of the source's rows (lib/ports/migration-store.ts SourceSaid). */
const said = (usageCount: number, disabled = false) => ({ usageCount, disabled });

const A = fakeKey('a-');
const B = fakeKey('b-');
const C = fakeKey('c-');
const D = fakeKey('d-');

/** One of every kind of row: canonical and relaxed forms, a duplicate, invalid rows, unknown fields. */
const MIXED = [
  {
    _id: { $oid: '65a000000000000000000001' },
    api_key: A,
    credits_left: { $numberDouble: '22.5' },
    is_active: true,
    created_at: { $date: '2024-03-01T10:00:00Z' },
    last_used: { $date: { $numberLong: '1717243200000' } },
  },
  {
    _id: { $oid: '65a000000000000000000002' },
    api_key: B,
    usage_count: { $numberInt: '2' },
    credits_left: 25,
    owner: 'ops',
  },
  {
    _id: { $oid: '65a000000000000000000003' },
    api_key: C,
    credits_left: 24,
    is_active: false,
    last_checked: { $date: '2024-05-05T05:05:05Z' },
    created_at: { $date: '2024-01-05T00:00:00Z' },
  },
  { _id: { $oid: '65a000000000000000000004' }, credits_left: 20 },
  { _id: { $oid: '65a000000000000000000005' }, api_key: D, usage_count: -1 },
  { _id: { $oid: '65a000000000000000000006' }, api_key: A, usage_count: { $numberLong: '5' }, note: 'dup' },
];

describe('migrate from a mongoexport file', () => {
  it('maps every row by the rules, keeping the index attributes right', async () => {
    // Prepare
    const table = await freshTable();
    // Act
    const { report } = await run(table, fileSource(exportFile(MIXED)));
    // Assess
    expect(report).toEqual({
      read: 6,
      imported: 3,
      raised: 0,
      unchanged: 0,
      duplicates: 1,
      invalid: [
        { line: 4, reason: 'api_key is missing' },
        { line: 5, reason: 'usage_count is negative' },
      ],
      ignoredFields: 2,
    });
    const items = new Map((await scanOpened(client, table)).map((item) => [item.keyId, item]));
    const a = items.get(keyIdFor(A));
    // A: 25 - 22.5 rounds up to 3, then its duplicate raises it to 5; dates from its first row.
    expect(a).toMatchObject({
      pool: 'stability',
      apiKey: A,
      usageCount: 5,
      status: 'active',
      upk: 'stability',
      L: {},
      createdAt: '2024-03-01T10:00:00.000Z',
      lastUsedAt: '2024-06-01T12:00:00.000Z',
    });
    expect(a?.usk).toBe(usageSortKey(5, Date.parse('2024-06-01T12:00:00Z')));
    const b = items.get(keyIdFor(B));
    expect(b).toMatchObject({
      usageCount: 2,
      status: 'active',
      lastUsedAt: null,
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    expect(b?.usk).toBe(usageSortKey(2, Date.UTC(2026, 0, 1)));
    const c = items.get(keyIdFor(C));
    // Disabled by the source: no index partition, so it is never leased.
    expect(c).toMatchObject({ usageCount: 1, status: 'disabled', lastUsedAt: '2024-05-05T05:05:05.000Z' });
    expect(c).not.toHaveProperty('upk');
    expect(items.has(keyIdFor(D))).toBe(false);
  });

  it('reads a --jsonArray export into exactly the same table as the line-per-document one', async () => {
    // Prepare
    const lines = await freshTable();
    const array = await freshTable();
    // Act
    const fromLines = await run(lines, fileSource(exportFile(MIXED, 'lines')));
    const fromArray = await run(array, fileSource(exportFile(MIXED, 'array')));
    // Assess
    expect(fromArray.report).toEqual(fromLines.report);
    expect(await scanOpened(client, array)).toEqual(await scanOpened(client, lines));
  });

  it('is idempotent: a second run changes nothing in the whole table and says so', async () => {
    // Prepare
    const table = await freshTable();
    const path = exportFile(MIXED);
    await run(table, fileSource(path), { clock: Date.now });
    const before = await scanOpened(client, table);
    // Act
    const second = await run(table, fileSource(path), { clock: Date.now });
    // Assess
    expect(await scanOpened(client, table)).toEqual(before);
    expect(second.report).toMatchObject({ read: 6, imported: 0, raised: 0, unchanged: 3, duplicates: 1 });
  });

  it('never lowers a count: a higher count in keypool wins, a higher one in the source raises it with its sort key', async () => {
    // Prepare: A used 7 times in keypool already, B once; the source says 5 and 2.
    const table = await freshTable();
    const store = new DynamoMigrationStore({ client, tableName: table });
    await run(
      table,
      fileSource(
        exportFile([
          { api_key: A, usage_count: 7 },
          { api_key: B, usage_count: 1, created_at: { $date: '2024-02-02T00:00:00Z' } },
        ]),
      ),
    );
    const bBefore = (await scanOpened(client, table)).find((i) => i.apiKey === B);
    // Act
    const { report } = await run(
      table,
      fileSource(
        exportFile([
          { api_key: A, usage_count: 5 },
          { api_key: B, usage_count: 2, created_at: { $date: '2030-01-01T00:00:00Z' } },
        ]),
      ),
    );
    // Assess
    const items = await scanOpened(client, table);
    const a = items.find((i) => i.apiKey === A);
    const b = items.find((i) => i.apiKey === B);
    expect(report).toMatchObject({ imported: 0, raised: 1, unchanged: 1 });
    expect(a?.usageCount).toBe(7);
    expect(b).toMatchObject({ usageCount: 2, createdAt: bBefore?.createdAt });
    expect(Number(b?.usk) - Number(bBefore?.usk)).toBe(USAGE_TIER);
    expect(await store.existing([keyIdFor(A), keyIdFor(B)])).toEqual(
      new Map([
        [keyIdFor(A), { pool: 'stability', usageCount: 7, status: 'active', migrated: said(7) }],
        [keyIdFor(B), { pool: 'stability', usageCount: 2, status: 'active', migrated: said(2) }],
      ]),
    );
  });

  it('a raise never overwrites a count that changed after the read: the refused write is redone from the new count', async () => {
    // Prepare: the key is at 1; a lease-like increment moves it to 2 between read and write.
    const table = await freshTable();
    await run(table, fileSource(exportFile([{ api_key: A, usage_count: 1 }])));
    const store = new DynamoMigrationStore({ client, tableName: table });
    const keyId = keyIdFor(A);
    // Act: a write computed from the stale count 1 is refused and reports the count it found.
    const { UpdateCommand } = await import('../../lib/adapters/dynamo-wire.js');
    await client.send(
      new UpdateCommand({
        TableName: table,
        Key: { keyId },
        UpdateExpression: 'SET usageCount = usageCount + :one, usk = usk + :tier',
        ExpressionAttributeValues: { ':one': 1, ':tier': USAGE_TIER },
      }),
    );
    const stale = await store.write([
      {
        kind: 'change',
        keyId,
        pool: 'stability',
        change: { from: 1, to: 4, disable: false, saidBefore: said(1), said: said(4) },
      },
    ]);
    const { report } = await run(table, fileSource(exportFile([{ api_key: A, usage_count: 4 }])));
    // Assess
    expect(stale).toEqual([
      { applied: false, current: { pool: 'stability', usageCount: 2, status: 'active', migrated: said(1) } },
    ]);
    expect(report).toMatchObject({ raised: 1 });
    const [item] = await scanOpened(client, table);
    expect(item?.usageCount).toBe(4);
    expect(item?.usk).toBe(usageSortKey(4, Date.UTC(2026, 0, 1)));
  });

  it("never raises or disables another pool's key: the row is reported with its line, and the write refused", async () => {
    // Prepare: A is a key of pool "other", used once.
    const table = await freshTable();
    await run(table, fileSource(exportFile([{ api_key: A, usage_count: 1 }])), { pool: 'other' });
    const [before] = await scanOpened(client, table);
    const store = new DynamoMigrationStore({ client, tableName: table });
    // Act: a migration into "stability" whose row would raise and disable A; and its raw write.
    const { report } = await run(
      table,
      fileSource(exportFile([{ api_key: B }, { api_key: A, usage_count: 5, is_active: false }])),
    );
    const raw = await store.write([
      {
        kind: 'change',
        keyId: keyIdFor(A),
        pool: 'stability',
        change: { from: 1, to: 5, disable: true, saidBefore: said(1), said: said(5, true) },
      },
    ]);
    // Assess
    expect(report).toMatchObject({
      imported: 1,
      raised: 0,
      invalid: [{ line: 2, reason: 'api_key is a key of another pool' }],
    });
    expect(raw).toEqual([
      { applied: false, current: { pool: 'other', usageCount: 1, status: 'active', migrated: said(1) } },
    ]);
    expect((await scanOpened(client, table)).find((i) => i.keyId === keyIdFor(A))).toEqual(before);
  });

  it('disabling through the source takes an existing key out of the index and changes nothing else', async () => {
    // Prepare
    const table = await freshTable();
    await run(table, fileSource(exportFile([{ api_key: A, usage_count: 3 }])));
    const [before] = await scanOpened(client, table);
    // Act
    const outcome = await run(table, fileSource(exportFile([{ api_key: A, usage_count: 1, is_active: false }])));
    // Assess
    const [after] = await scanOpened(client, table);
    expect(outcome.disabled).toBe(1);
    expect(outcome.report).toMatchObject({ unchanged: 1, raised: 0 });
    // ...but that the source has now said it is disabled (a later run of this export is no news).
    const { upk: _upk, status: _status, migratedDisabled: _said, ...rest } = before ?? {};
    expect(after).toEqual({ ...rest, status: 'disabled', migratedDisabled: true });
  });

  it.each([
    [
      // leased, and reported out of credits by a caller: exhausted, by the client, for a while
      "a caller's report",
      'exhausted',
      async (table: TestTable) => {
        const broker = table.broker();
        const grant = await broker.lease('stability');
        await broker.complete('stability', grant.leaseId, { outcome: 'out_of_credits' });
      },
    ],
    [
      // refused by the provider (a documented 401: it does not know the key yet), re-checked by every run
      "the provider's refusal",
      'disabled',
      async (_table: TestTable, maintainNow: () => Promise<unknown>) => {
        await maintainNow();
      },
    ],
  ] as const)(
    "a source's disable over %s is the operator's: a maintenance run that reads the key's balance leaves it disabled",
    async (_over, before, prepare) => {
      // Prepare: A migrated and taken out of service by a report or a verdict; then a provider
      // that knows A with credits.
      const table = await createTestTable('migrate-disable');
      await run(table.tableName, fileSource(exportFile([{ api_key: A }])));
      const provider = await startFakeProvider();
      const maintainNow = () =>
        maintain(
          {
            pools: table.pools,
            keys: table.store,
            sealer: testSealer(),
            balances: new DynamoBalanceStore({ client, tableName: table.tableName }),
            provider: new StabilityClient({ baseUrl: provider.url }),
          },
          { pool: 'stability', rate: 10, concurrency: 1 },
        );
      try {
        await prepare(table, maintainNow);
        expect(await table.store.get(keyIdFor(A))).toMatchObject({ status: before });
        provider.setKey(A, { credits: 100 });
        const asked = provider.callsWith(A);
        // Act: the export again, its row now disabling A; then maintenance.
        const outcome = await run(table.tableName, fileSource(exportFile([{ api_key: A, is_active: false }])));
        const migrated = (await scanTable(client, table.tableName)).find((i) => i.keyId === keyIdFor(A));
        const report = await maintainNow();
        // Assess: disabled with no setter (as a key the migration creates disabled), so no
        // report and no verdict is taken for its cause, and no balance undoes it.
        expect(outcome.disabled).toBe(1);
        expect(migrated).toMatchObject({ keyId: keyIdFor(A), status: 'disabled' });
        expect(migrated).not.toHaveProperty('statusBy');
        expect(migrated).not.toHaveProperty('statusReason');
        expect(migrated).not.toHaveProperty('cooldownUntil');
        expect(report.summary).toMatchObject({ checked: 0, disabled: 1, active: 0 });
        expect(provider.callsWith(A)).toBe(asked);
        expect(await table.store.get(keyIdFor(A))).toMatchObject({ status: 'disabled' });
      } finally {
        await provider.close();
      }
    },
  );

  it("leaves a key the operator retired as it is: a later run's row neither raises, disables nor un-retires it", async () => {
    // Prepare: A migrated, then retired (its secret destroyed, its record kept).
    const table = await freshTable();
    await run(table, fileSource(exportFile([{ api_key: A, usage_count: 1 }])));
    const admin = new DynamoKeyAdminStore({ client, tableName: table });
    await admin.retire({ keyId: keyIdFor(A), pool: 'stability', reason: 'retired', at: '2026-01-02T00:00:00.000Z' });
    const before = await scanTable(client, table);
    // Act: the export again, its row now saying the key is used more and disabled.
    const outcome = await run(table, fileSource(exportFile([{ api_key: A, usage_count: 5, is_active: false }])));
    // Assess: still retired, so an import reports it retired and revive can bring it back.
    expect(await scanTable(client, table)).toEqual(before);
    expect(before.find((i) => i.keyId === keyIdFor(A))).toMatchObject({ status: 'retired', usageCount: 1 });
    expect(outcome.disabled).toBe(0);
    expect(outcome.report).toMatchObject({ read: 1, imported: 0, raised: 0, unchanged: 1 });
  });

  it('running the same export again keeps what the operator did since: a reset count stays reset, an enabled key enabled', async () => {
    // Prepare: A migrated at 3 uses and B disabled at 5; then the operator resets A's count and
    // enables B (the provider refilled A; B was only off in the old system).
    const table = await freshTable();
    const path = exportFile([
      { api_key: A, usage_count: 3 },
      { api_key: B, credits_left: 20, is_active: false },
    ]);
    await run(table, fileSource(path));
    const admin = new DynamoKeyAdminStore({ client, tableName: table });
    await admin.update({ keyId: keyIdFor(A), pool: 'stability', count: { seen: 3, to: 0 } });
    await admin.update({ keyId: keyIdFor(B), pool: 'stability', status: 'active', at: '2026-01-02T00:00:00.000Z' });
    const before = await scanTable(client, table);
    // Act: the same file again (say, after fixing rows it reported invalid); then a newer export.
    const again = await run(table, fileSource(path));
    const afterAgain = await scanTable(client, table);
    const newer = await run(table, fileSource(exportFile([{ api_key: A, usage_count: 4 }])));
    // Assess: the rows said nothing new, so nothing changed; a row that says more still raises.
    expect(afterAgain).toEqual(before);
    expect(again.disabled).toBe(0);
    expect(again.report).toMatchObject({ read: 2, imported: 0, raised: 0, unchanged: 2 });
    expect(newer.report).toMatchObject({ raised: 1 });
    expect(await admin.record('stability', keyIdFor(A))).toMatchObject({ usageCount: 4, status: 'active' });
  });

  it('a row dated in the future is leased: its sort key stays in the tier of its count', async () => {
    // Prepare: a key used (by the old system's clock) in 2200, with its count of 0.
    const table = await createTestTable('migrate-future');
    const future = { $date: '2200-01-01T00:00:00Z' };
    await run(
      table.tableName,
      fileSource(exportFile([{ api_key: A, credits_left: 25, last_used: future, created_at: future }])),
    );
    const [item] = await scanOpened(client, table.tableName);
    // Act
    const grant = await table.broker().lease('stability');
    // Assess: a lease finds the key status counts as usable, which sorts among the unused keys.
    expect(grant.keyId).toBe(keyIdFor(A));
    expect(item?.usk).toBeLessThan(USAGE_TIER);
  });

  it('a dry run writes nothing and reports what a run would do', async () => {
    // Prepare
    const table = await freshTable();
    await run(table, fileSource(exportFile([{ api_key: B, usage_count: 1 }])));
    const before = await scanOpened(client, table);
    // Act
    const dry = await run(table, fileSource(exportFile(MIXED)), { dryRun: true });
    // Assess
    expect(await scanOpened(client, table)).toEqual(before);
    expect(dry.dryRun).toBe(true);
    expect(dry.report).toMatchObject({ read: 6, imported: 2, raised: 1, unchanged: 0, duplicates: 1 });
    expect(dry.report.invalid.map((i) => i.line)).toEqual([4, 5]);
  });

  it('a dry run reports what the run then does for a repeated key the operator retired or the provider disabled', async () => {
    // Prepare: A retired by the operator, B disabled by the provider; the export repeats each,
    // its second row (in a later batch) saying more.
    const table = await freshTable();
    await run(table, fileSource(exportFile([{ api_key: A, usage_count: 1 }, { api_key: B }])));
    const admin = new DynamoKeyAdminStore({ client, tableName: table });
    await admin.retire({ keyId: keyIdFor(A), pool: 'stability', reason: 'retired', at: '2026-01-02T00:00:00.000Z' });
    const { UpdateCommand } = await import('../../lib/adapters/dynamo-wire.js');
    await client.send(
      new UpdateCommand({
        TableName: table,
        Key: { keyId: keyIdFor(B) },
        UpdateExpression: 'SET #status = :disabled, statusBy = :provider REMOVE upk',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':disabled': 'disabled', ':provider': 'provider' },
      }),
    );
    const path = exportFile([
      { api_key: A, usage_count: 1 },
      { api_key: B },
      { api_key: A, usage_count: 5, is_active: false },
      { api_key: B, is_active: false },
    ]);
    // Act
    const dry = await run(table, fileSource(path), { dryRun: true, batchSize: 1 });
    const real = await run(table, fileSource(path), { batchSize: 1 });
    // Assess
    expect(real.report).toMatchObject({ raised: 0, unchanged: 2, duplicates: 2 });
    expect(real.disabled).toBe(1);
    expect(dry.report).toEqual(real.report);
    expect(dry.disabled).toBe(real.disabled);
  });

  it('never puts a secret in the report, whatever is wrong with the rows', async () => {
    // Prepare
    const table = await freshTable();
    const secrets = [fakeKey(), fakeKey(), fakeKey(), fakeKey()];
    const docs = [
      { api_key: secrets[0], usage_count: secrets[0] },
      { api_key: secrets[1], last_used: secrets[1] },
      { api_key: secrets[2], credits_left: 'x', [secrets[2] as string]: 1 },
      { api_key: secrets[3] },
    ];
    const path = exportFile(docs);
    writeFileSync(path, `${JSON.stringify(docs[0])}\n{"api_key":"${secrets[3] as string}" broken\n`, { flag: 'a' });
    // Act
    const { report } = await run(table, fileSource(path));
    // Assess
    const text = JSON.stringify(report);
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(report.invalid).toEqual([
      { line: 1, reason: 'usage_count is not a number' },
      { line: 2, reason: 'last_used is not a date' },
      { line: 3, reason: 'credits_left is not a number' },
      { line: 5, reason: 'usage_count is not a number' },
      { line: 6, reason: 'not valid JSON' },
    ]);
  });

  it('a secret the API would refuse is an invalid row with its line, not a second key beside the real one', async () => {
    // Prepare: one secret, then the same with a trailing space and a trailing carriage return.
    const table = await freshTable();
    const secret = fakeKey();
    const path = exportFile([
      { api_key: secret, usage_count: 1 },
      { api_key: `${secret} `, usage_count: 2 },
      { api_key: `${secret}\r`, usage_count: 3 },
    ]);
    // Act
    const { report } = await run(table, fileSource(path));
    // Assess
    expect(report).toMatchObject({
      read: 3,
      imported: 1,
      invalid: [
        { line: 2, reason: 'api_key has a space, control or non-ASCII character' },
        { line: 3, reason: 'api_key has a space, control or non-ASCII character' },
      ],
    });
    expect((await scanOpened(client, table)).map((item) => item.keyId)).toEqual([keyIdFor(secret)]);
  });

  it('a 1 MiB row (MAX_ROW_BYTES) holding one huge $numberLong is an invalid row, and the run stays fast', async () => {
    // Prepare: the longest row the reader takes (MAX_ROW_BYTES), its number digits then a letter.
    const table = await freshTable();
    const secret = fakeKey();
    const head = `{"api_key":"${secret}","credits_left":{"$numberLong":"`;
    const tail = 'x"}}';
    const huge = `${head}${'1'.repeat(MAX_ROW_BYTES - head.length - tail.length)}${tail}`;
    const path = join(dir, `${uniqueName('huge')}.json`);
    writeFileSync(path, `${JSON.stringify({ api_key: fakeKey(), usage_count: 1 })}\n${huge}\n`);
    // Act
    const began = performance.now();
    const { report } = await run(table, fileSource(path));
    const took = performance.now() - began;
    // Assess
    expect(Buffer.byteLength(huge)).toBe(MAX_ROW_BYTES);
    expect(report).toMatchObject({
      read: 2,
      imported: 1,
      invalid: [{ line: 2, reason: 'credits_left is not a number' }],
    });
    expect(took).toBeLessThan(5_000); // the old regex alone took about half an hour on this row
  });

  it('a file that cannot be parsed at all fails before the first write', async () => {
    // Prepare: valid rows first, then the array breaks.
    const table = await freshTable();
    const path = join(dir, 'broken.json');
    writeFileSync(path, `[${JSON.stringify({ api_key: A })},${JSON.stringify({ api_key: B })},{"api_key": "sk-test-x"`);
    // Act
    const attempt = run(table, fileSource(path));
    // Assess
    await expect(attempt).rejects.toBeInstanceOf(UnreadableSource);
    await expect(run(table, fileSource(join(dir, 'missing.json')))).rejects.toThrow(/cannot read .*ENOENT/);
    expect(await scanOpened(client, table)).toEqual([]);
  });
});

describe('migrate from a legacy DynamoDB table', () => {
  it('scans every page and maps the legacy attributes, positions 1-based in scan order', async () => {
    // Prepare: 31 legacy rows, read in pages of 7 so the scan has to follow LastEvaluatedKey.
    const legacy = uniqueName('legacy');
    await legacyClient.send(
      new CreateTableCommand({
        TableName: legacy,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'api_key', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'api_key', KeyType: 'HASH' }],
      }),
    );
    const keys = Array.from({ length: 30 }, (_, i) => fakeKey(`${i}-`));
    for (const [i, key] of keys.entries()) {
      await client.send(
        new PutCommand({
          TableName: legacy,
          Item: {
            api_key: key,
            credits_left: 25 - (i % 5) - 0.5,
            is_active: i % 10 !== 0,
            last_used: '2024-06-01 12:00:00.000000',
            created_at: '2024-01-01T00:00:00',
            extra: 'x',
          },
        }),
      );
    }
    await client.send(
      new PutCommand({ TableName: legacy, Item: { api_key: 'sk-test-bad-credits-0000000000', credits_left: 'many' } }),
    );
    const table = await freshTable();
    // Act
    const { report } = await run(table, legacyTableSource(legacyClient, legacy, { pageLimit: 7 }));
    const again = await run(table, legacyTableSource(legacyClient, legacy, { pageLimit: 7 }));
    // Assess
    expect(report).toMatchObject({ read: 31, imported: 30, raised: 0, duplicates: 0, ignoredFields: 1 });
    expect(report.invalid).toHaveLength(1);
    expect(report.invalid[0]?.reason).toBe('credits_left is not a number');
    expect(report.invalid[0]?.line).toBeGreaterThanOrEqual(1);
    expect(again.report).toMatchObject({ imported: 0, raised: 0, unchanged: 30 });
    const items = await scanOpened(client, table);
    const first = items.find((i) => i.apiKey === keys[0]);
    expect(first).toMatchObject({
      usageCount: 1,
      status: 'disabled',
      lastUsedAt: '2024-06-01T12:00:00.000Z',
      createdAt: '2024-01-01T00:00:00.000Z',
    });
    expect(items.find((i) => i.apiKey === keys[4])).toMatchObject({
      usageCount: 5,
      status: 'active',
      upk: 'stability',
    });
  });

  it('says clearly when the legacy table does not exist, writing nothing', async () => {
    const table = await freshTable();
    await expect(run(table, legacyTableSource(legacyClient, uniqueName('nope')))).rejects.toThrow(/does not exist/);
    expect(await scanOpened(client, table)).toEqual([]);
  });
});
