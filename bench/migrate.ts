/**
 * `npm run bench:migrate`: migration throughput and memory on DynamoDB Local. Figures, not a
 * timed test. Each run is a child process (the same code path as the CLI) so its peak RSS is
 * its own.
 *   1. rows/s: a generated 100,000-row mongoexport (line per document) into an empty table
 *   2. peak RSS: a generated 1,000,000-row export, migrated the same way
 * Options: --rows N (default 100000), --rss-rows N (default 1000000), --skip-rss.
 * Uses KEYPOOL_DYNAMODB_ENDPOINT if set, else starts an in-memory DynamoDB Local.
 */
import { benchSealer } from './contenders.js';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoMigrationStore } from '../lib/adapters/dynamo-migration-store.js';
import { DynamoPoolStore } from '../lib/adapters/dynamo-pool-store.js';
import { fileSource } from '../lib/adapters/migration-sources.js';
import { documentClient } from '../lib/adapters/dynamo-client.js';
import { ensureTable, freePort, startDynamoLocal } from '../lib/local/dynamodb-local.js';
import { migrate } from '../lib/use-cases/migration/migrate.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

interface WorkerResult {
  rows: number;
  imported: number;
  ms: number;
  maxRssMb: number;
}

/** Worker mode: migrate one file into one table and print the figures as JSON. */
async function worker(endpoint: string, tableName: string, path: string): Promise<void> {
  const client = documentClient({ endpoint, region: undefined });
  const started = performance.now();
  const { report } = await migrate({
    source: fileSource(path),
    store: new DynamoMigrationStore({ client, tableName }),
    pools: new DynamoPoolStore({ client, tableName }),
    sealer: benchSealer('keypool'),
  });
  const result: WorkerResult = {
    rows: report.read,
    imported: report.imported,
    ms: performance.now() - started,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Writes an export of `rows` documents in the canonical Extended JSON form, streaming. */
async function generate(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < rows; i++) {
    const line = JSON.stringify({
      _id: { $oid: i.toString(16).padStart(24, '0') },
      api_key: `sk-test-bench-${i.toString(16).padStart(24, '0')}`,
      credits_left: { $numberDouble: String(25 - (i % 7) * 0.5) },
      is_active: i % 50 !== 0,
      created_at: { $date: { $numberLong: String(Date.UTC(2024, 0, 1) + i * 1000) } },
      ...(i % 3 === 0 ? { last_used: { $date: '2024-06-01T12:00:00Z' } } : {}),
    });
    if (!out.write(`${line}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((done, fail) => out.end((error?: Error | null) => (error ? fail(error) : done())));
}

async function runWorker(endpoint: string, rows: number, dir: string): Promise<WorkerResult> {
  const path = join(dir, `export-${rows}.ndjson`);
  await generate(path, rows);
  const tableName = `bench-migrate-${rows}-${Date.now()}`;
  await ensureTable(endpoint, tableName);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/migrate.ts', '--worker', endpoint, tableName, path],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  rmSync(path, { force: true });
  if (code !== 0) throw new Error(`worker exited ${code}`);
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as WorkerResult;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      worker: { type: 'boolean' },
      rows: { type: 'string' },
      'rss-rows': { type: 'string' },
      'skip-rss': { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (values.worker) {
    const [endpoint, tableName, path] = positionals;
    await worker(endpoint ?? '', tableName ?? '', path ?? '');
    return;
  }
  const rows = Number(values.rows ?? 100_000);
  const rssRows = Number(values['rss-rows'] ?? 1_000_000);
  const given = process.env.KEYPOOL_DYNAMODB_ENDPOINT;
  const local = given ? undefined : await startDynamoLocal({ port: await freePort() });
  const endpoint = given ?? local?.endpoint ?? '';
  const dir = mkdtempSync(join(tmpdir(), 'keypool-bench-migrate-'));
  try {
    const speed = await runWorker(endpoint, rows, dir);
    console.log(
      `throughput: ${speed.rows.toLocaleString('en-US')} rows in ${(speed.ms / 1000).toFixed(1)} s = ${Math.round((speed.rows / speed.ms) * 1000).toLocaleString('en-US')} rows/s (goal >= 2,000); peak RSS ${speed.maxRssMb.toFixed(0)} MB`,
    );
    if (!values['skip-rss']) {
      const memory = await runWorker(endpoint, rssRows, dir);
      console.log(
        `memory: ${memory.rows.toLocaleString('en-US')} rows, peak RSS ${memory.maxRssMb.toFixed(0)} MB (goal < 200 MB); ${Math.round((memory.rows / memory.ms) * 1000).toLocaleString('en-US')} rows/s`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await local?.stop();
  }
}

await main();
