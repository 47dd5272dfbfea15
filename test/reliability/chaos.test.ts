/**
 * Chaos run: many callers lease and complete with random outcomes, some abandon their
 * leases, and DynamoDB Local is killed and restarted (same data dir) mid-run. The audit
 * must find every use counted exactly once, no key past its cap, and no refusal while a key
 * was usable. The callers and the audit: chaos-run.ts.
 */
import { captureOutput, expectNoSecretInOutput } from './log-capture.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, LOCAL_CREDENTIALS } from '../../lib/adapters/dynamo-client.js';
import { type DynamoCalls, DynamoWire } from '../../lib/adapters/dynamo-wire.js';
import { ensureTable, freePort, type RunningDynamo, startDynamoLocal } from '../../lib/local/dynamodb-local.js';
import { CALLERS, CHAOS_TIMEOUT_MS, ChaosRun, chaosLeases, keysFor, sleep } from './chaos-run.js';

const LEASES = chaosLeases(200);
const KEYS = keysFor(LEASES);

const TABLE_NAME = 'chaos';

/** A client that gives up fast: during the outage callers must see errors, not hang. */
function impatientClient(endpoint: string): DynamoCalls {
  return new DynamoWire({
    endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestTimeoutMs: 3_000,
    connectionTimeoutMs: 1_000,
  });
}

let dataDir: string;
let port: number;
let dynamo: RunningDynamo | undefined;

async function startDynamo(): Promise<RunningDynamo> {
  const running = await startDynamoLocal({ port, dataDir });
  running.process.stdout?.on('data', captureOutput);
  running.process.stderr?.on('data', captureOutput);
  return running;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'keypool-chaos-'));
  port = await freePort();
  dynamo = await startDynamo();
  await ensureTable(dynamo.endpoint, TABLE_NAME);
}, 120_000);

afterAll(async () => {
  await dynamo?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('chaos', () => {
  // At one shard (one LRU order) and at 8: the guarantees do not depend on the shard count.
  it.each([1, 8])(
    `${LEASES} leases by ${CALLERS} callers through a DynamoDB restart at %i shard(s): every use counted once, none past the cap, abandoned leases expire counted, no false 409`,
    async (shards) => {
      // Prepare
      const endpoint = `http://127.0.0.1:${port}`;
      const client = impatientClient(endpoint);
      // Seeding and the audit use a patient client: only the callers race the outage.
      const patient = documentClient({ endpoint, region: undefined });
      const run = new ChaosRun({
        client,
        patient,
        tableName: TABLE_NAME,
        pool: `chaos-${shards}`,
        shards,
        leases: LEASES,
      });
      await run.seed();
      const { stats } = run;

      // Act: callers run; at 40% of the leases DynamoDB Local is killed and started again.
      const chaos = (async () => {
        while (stats.granted < LEASES * 0.4) await sleep(50);
        const errorsBefore = stats.errors;
        const killedAt = Date.now();
        dynamo?.process.kill('SIGKILL');
        await sleep(500);
        dynamo = await startDynamo();
        return { outageMs: Date.now() - killedAt, errorsBefore };
      })();
      const started = Date.now();
      void chaos.then(() =>
        console.info(`chaos restart done after ${(Date.now() - started) / 1000} s, ${stats.granted} leases`),
      );
      await run.callers();
      const outage = await chaos;
      const runSeconds = (Date.now() - started) / 1000;
      // Abandoned leases: once expired, every late completion answers lease_expired.
      const result = await run.finish();
      client.destroy();
      patient.destroy();
      const summary = run.summary(result, runSeconds, {
        errorsDuringOutage: stats.errors - outage.errorsBefore,
        outageMs: outage.outageMs,
      });
      console.info(`chaos summary (${shards} shard(s)) ${JSON.stringify(summary)}`);

      // Assess
      run.expectInvariants(result);
      expect(summary.errorsDuringOutage).toBeGreaterThan(0);
      expect(stats.maxCallMs).toBeLessThan(30_000);
      expect(stats.unexpected).toBe(0);
    },
    CHAOS_TIMEOUT_MS,
  );

  it('no captured output line of this file contains a secret it used', () => {
    expectNoSecretInOutput(KEYS);
  });
});
