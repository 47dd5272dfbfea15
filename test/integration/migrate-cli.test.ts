import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamoCalls, ScanCommand } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoMigrationStore } from '../../lib/adapters/dynamo-migration-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { fileSource } from '../../lib/adapters/migration-sources.js';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { migrate } from '../../lib/use-cases/migration/migrate.js';
import { startKeypool } from '../support/cli.js';
import { dynamoEndpoint, scanOpened, uniqueName } from '../support/dynamo.js';
import { testSealer } from '../support/sealing.js';

let client: DynamoCalls;
const dir = mkdtempSync(join(tmpdir(), 'keypool-migrate-cli-'));

beforeAll(() => {
  client = documentClient({ endpoint: dynamoEndpoint(), region: undefined });
});

function cli(args: string[], tableName: string): ChildProcess {
  return startKeypool(args, { KEYPOOL_DYNAMODB_ENDPOINT: dynamoEndpoint(), KEYPOOL_TABLE: tableName });
}

async function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
  return { code, stdout, stderr };
}

/** Key items in the table (the pool record the migration creates first is not one). */
async function count(tableName: string): Promise<number> {
  let total = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new ScanCommand({
        TableName: tableName,
        Select: 'COUNT',
        FilterExpression: 'begins_with(keyId, :key)',
        ExpressionAttributeValues: { ':key': 'k_' },
        ExclusiveStartKey: start,
      }),
    );
    total += out.Count ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return total;
}

/** N distinct keys, every 10th disabled, every 7th repeated 1,500 rows later with a higher count. */
function bigExport(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `sk-test-resume-${String(i).padStart(8, '0')}-0123456789abcdef`;
    lines.push(
      JSON.stringify({
        api_key: key,
        credits_left: { $numberDouble: String(25 - (i % 6) * 0.5) },
        is_active: i % 10 !== 0,
        created_at: { $date: '2024-01-02T03:04:05Z' },
      }),
    );
    if (i >= 1500 && (i - 1500) % 7 === 0) {
      const earlier = `sk-test-resume-${String(i - 1500).padStart(8, '0')}-0123456789abcdef`;
      lines.push(
        JSON.stringify({
          api_key: earlier,
          usage_count: { $numberInt: '9' },
          created_at: { $date: '2025-01-01T00:00:00Z' },
        }),
      );
    }
  }
  const path = join(dir, `${uniqueName('big')}.ndjson`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

describe('migrate CLI', () => {
  it('killed mid-run, a second run finishes the job: the table equals one uninterrupted run', async () => {
    // Prepare
    const keys = 6000;
    const path = bigExport(keys);
    const killed = uniqueName('resume');
    const clean = uniqueName('clean');
    await ensureTable(dynamoEndpoint(), killed);
    await ensureTable(dynamoEndpoint(), clean);
    // Act: SIGKILL the CLI once it has written something, then run the migration again.
    const child = cli(['migrate', '--from-mongo-export', path, '--json'], killed);
    const exit = finished(child);
    let written = 0;
    while (written === 0) {
      await new Promise((r) => setTimeout(r, 50));
      written = await count(killed);
    }
    child.kill('SIGKILL');
    const { code } = await exit;
    // A transaction already sent still lands after the client dies: let DynamoDB finish it.
    await new Promise((r) => setTimeout(r, 1000));
    const atKill = await count(killed);
    const resumed = await finished(cli(['migrate', '--from-mongo-export', path, '--json'], killed));
    await migrate({
      source: fileSource(path),
      store: new DynamoMigrationStore({ client, tableName: clean }),
      pools: new DynamoPoolStore({ client, tableName: clean }),
      sealer: testSealer(),
    });
    // Assess
    expect(code).toBeNull(); // killed by the signal, not finished
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(keys);
    expect(resumed.code).toBe(0);
    const report = JSON.parse(resumed.stdout) as {
      imported: number;
      unchanged: number;
      raised: number;
      invalid: unknown[];
    };
    expect(report.imported + report.unchanged + report.raised).toBe(keys);
    // The second run imports only what the first did not write (a write sent just before the
    // kill may land after the count above, hence <=).
    expect(report.imported).toBeGreaterThan(0);
    expect(report.imported).toBeLessThanOrEqual(keys - atKill);
    expect(report.invalid).toEqual([]);
    expect(await scanOpened(client, killed)).toEqual(await scanOpened(client, clean));
    // Three migrations of 6,000 keys: 19-34 s alone, 62.6 s once beside other suites on a loaded 2-core machine.
  }, 180_000);

  it('exits 1 with one clear line for a file that cannot be parsed, having written nothing', async () => {
    // Prepare
    const table = uniqueName('broken');
    await ensureTable(dynamoEndpoint(), table);
    const path = join(dir, 'broken.json');
    writeFileSync(path, '[{"api_key":"sk-test-aaaaaaaaaaaaaaaaaaaa"}, {"api_key": "sk-test-bbbbbbbbbbbbbbbb"');
    // Act
    const result = await finished(cli(['migrate', '--from-mongo-export', path], table));
    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^keypool migrate: the export is not a valid JSON array: the array is not closed/,
    );
    expect(result.stderr).not.toContain('sk-test');
    expect(result.stdout).toBe('');
    expect(await count(table)).toBe(0);
  });

  it('exits 1, after its report, when every row it read is invalid (the wrong file), dry run or not', async () => {
    // Prepare: JSON lines that parse but hold no key (another collection's export).
    const table = uniqueName('nokeys');
    await ensureTable(dynamoEndpoint(), table);
    const path = join(dir, 'users.ndjson');
    writeFileSync(path, '{"name":"ada","email":"ada@example.test"}\n{"name":"bob"}\n');
    // Act
    const dry = await finished(cli(['migrate', '--from-mongo-export', path, '--dry-run', '--json'], table));
    const real = await finished(cli(['migrate', '--from-mongo-export', path], table));
    // Assess: before, both exited 0, which a script reads as a migration done.
    for (const run of [dry, real]) {
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(/^keypool migrate: none of the 2 row\(s\) read is a key keypool could take; line 1: /);
    }
    expect(JSON.parse(dry.stdout)).toMatchObject({ read: 2, imported: 0, invalid: [{ line: 1 }, { line: 2 }] });
    expect(real.stdout).toMatch(/invalid\s+2/);
    expect(await count(table)).toBe(0);
  });

  it('says to give --pool when every key of the file is in the pool an earlier run named', async () => {
    // Prepare: the export migrated into pool "legacy" first.
    const table = uniqueName('otherpool');
    await ensureTable(dynamoEndpoint(), table);
    const path = join(dir, 'two.ndjson');
    writeFileSync(
      path,
      '{"api_key":"sk-test-otherpool-0123456789abcdef","credits_left":25}\n{"api_key":"sk-test-otherpool-fedcba9876543210","credits_left":20}\n',
    );
    expect((await finished(cli(['migrate', '--from-mongo-export', path, '--pool', 'legacy'], table))).code).toBe(0);
    // Act: again, without --pool.
    const again = await finished(cli(['migrate', '--from-mongo-export', path], table));
    // Assess
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toMatch(
      /line 1: api_key is a key of another pool \(this run migrated into pool stability; give the pool of the earlier run with --pool P\)$/,
    );
    expect(again.stderr).not.toContain('sk-test-otherpool');
  });

  it('prints the report, and no progress bar, when the output is not a terminal', async () => {
    // Prepare
    const table = uniqueName('plain');
    await ensureTable(dynamoEndpoint(), table);
    const path = join(dir, 'plain.ndjson');
    writeFileSync(path, '{"api_key":"sk-test-plain-0000000000000000","credits_left":23}\n{"api_key":""}\n');
    // Act
    const result = await finished(cli(['migrate', '--from-mongo-export', path, '--dry-run'], table));
    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^dry run: nothing was written/);
    expect(result.stdout).toMatch(/imported\s+1/);
    expect(result.stdout).toContain('line 2: api_key is empty');
    expect(result.stderr).not.toContain('rows/s');
    expect(await count(table)).toBe(0);
  });
});
