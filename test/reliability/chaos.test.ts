/**
 * Chaos run: many callers lease and complete with random outcomes, some abandon their
 * leases, and DynamoDB Local is killed and restarted (same data dir) mid-run. The audit
 * must find every use counted exactly once and no key past its cap.
 *
 * Size: KEYPOOL_RELIABILITY=full runs 100,000 leases (npm run test:reliability); the default
 * is a short run for `npm test`. KEYPOOL_CHAOS_LEASES overrides the count.
 */
import { captureOutput, registerSecret, scanForSecrets } from './log-capture.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoKeyStore } from '../../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { documentClient, LOCAL_CREDENTIALS } from '../../lib/adapters/dynamo-client.js';
import { Broker } from '../../lib/use-cases/broker.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { LeaseExpired, LeaseNotFound, NoUsableKey } from '../../lib/domain/errors.js';
import type { LeaseAttempt, LeaseAttemptResult } from '../../lib/ports/lease-store.js';
import type { LeaseGrant, Outcome } from '../../lib/domain/types.js';
import { ensureTable, freePort, type RunningDynamo, startDynamoLocal } from '../../lib/local/dynamodb-local.js';
import { audit, GrantLog, storedCounts } from '../support/audit.js';
import { seedKeys } from '../support/seed.js';
import { testSealer } from '../support/sealing.js';

const FULL = process.env.KEYPOOL_RELIABILITY === 'full';
const LEASES = Number(process.env.KEYPOOL_CHAOS_LEASES ?? (FULL ? 100_000 : 500));
const CALLERS = 64;
const MAX_USES = 3;
const TTL_SECONDS = 5;
const ABANDON_SHARE = 0.1;
const REPEAT_SHARE = 0.05;
/** Expected counted share of leases: 10% abandoned plus the successes of the rest. */
const KEYS = Math.ceil(LEASES * 0.23) + CALLERS;
const OUTCOMES: [Outcome, number][] = [
  ['success', 0.78],
  ['failure', 0.1],
  ['rate_limited', 0.08],
  ['out_of_credits', 0.02],
  ['invalid_key', 0.02],
];
const TABLE_NAME = 'chaos';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function randomOutcome(): Outcome {
  let x = Math.random();
  for (const [outcome, weight] of OUTCOMES) {
    if ((x -= weight) < 0) return outcome;
  }
  return 'success';
}

/** A client that gives up fast: during the outage callers must see errors, not hang. */
function impatientClient(endpoint: string): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestHandler: { requestTimeout: 3_000, connectionTimeout: 1_000, throwOnRequestTimeout: true },
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** The store, noting which key a lease write was aimed at when its fate is unknown (error, timeout). */
/** The DynamoDB store, with every lease write whose outcome the client never learned logged. */
class RecordingStore extends DynamoKeyStore {
  constructor(
    options: ConstructorParameters<typeof DynamoKeyStore>[0],
    private readonly log: GrantLog,
  ) {
    super(options);
  }

  override async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    try {
      return await super.tryLease(attempt);
    } catch (error) {
      this.log.unknownGrant(attempt.keyId);
      throw error;
    }
  }
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
    `${LEASES} leases by ${CALLERS} callers through a DynamoDB restart at %i shard(s): every use counted once, none past the cap, abandoned leases expire counted`,
    async (shards) => {
      const POOL = `chaos-${shards}`;
      // Prepare
      const endpoint = `http://127.0.0.1:${port}`;
      const client = impatientClient(endpoint);
      // Seeding and the audit use a patient client: only the callers race the outage.
      const patient = documentClient({ endpoint, region: undefined });
      await seedKeys({
        client: patient,
        tableName: TABLE_NAME,
        pool: POOL,
        count: KEYS,
        sealer: testSealer(),
        onSecret: registerSecret,
        policy: { maxUses: MAX_USES, leaseTtlSeconds: TTL_SECONDS, cooldownSeconds: 1, shards },
      });
      const log = new GrantLog();
      const store = new RecordingStore({ client, tableName: TABLE_NAME }, log);
      const poolStore = new DynamoPoolStore({ client, tableName: TABLE_NAME });
      const stats = {
        granted: 0,
        attempts: 0,
        refusals: 0,
        errors: 0,
        expiredCompletions: 0,
        unexpected: 0,
        maxCallMs: 0,
        maxGrantCount: 0,
        repeats: 0,
      };
      const abandoned: LeaseGrant[] = [];
      const timed = async <T>(work: () => Promise<T>): Promise<T> => {
        const t = performance.now();
        try {
          return await work();
        } finally {
          stats.maxCallMs = Math.max(stats.maxCallMs, performance.now() - t);
        }
      };

      const complete = async (broker: Broker, grant: LeaseGrant, outcome: Outcome): Promise<void> => {
        let errored = false;
        const giveUp = Date.now() + 120_000;
        for (;;) {
          try {
            await timed(() => broker.complete(POOL, grant.leaseId, { outcome }));
            if (outcome !== 'success') log.refund(grant.keyId);
            return;
          } catch (error) {
            if (error instanceof LeaseExpired || error instanceof LeaseNotFound) {
              // Documented policy: an expired lease's use stays counted. After an attempt of
              // unknown fate the slot may have been completed and reused, so a refund may have happened.
              if (error instanceof LeaseNotFound && !errored) stats.unexpected++;
              stats.expiredCompletions++;
              if (errored && outcome !== 'success') log.unknownRefund(grant.keyId);
              return;
            }
            stats.errors++;
            errored = true;
            if (Date.now() > giveUp) throw error;
            await sleep(100);
          }
        }
      };

      const caller = async (): Promise<void> => {
        const broker = new Broker({ store, poolStore, sealer: testSealer() });
        // Errors do not end the run (the outage is part of it); a dry pool would, after 2x the leases.
        while (stats.granted < LEASES && stats.attempts - stats.errors < LEASES * 2) {
          stats.attempts++;
          let grant: LeaseGrant;
          try {
            grant = await timed(() => broker.lease(POOL));
          } catch (error) {
            if (error instanceof NoUsableKey) stats.refusals++;
            else stats.errors++;
            await sleep(error instanceof NoUsableKey ? 20 : 100);
            continue;
          }
          stats.granted++;
          stats.maxGrantCount = Math.max(stats.maxGrantCount, grant.usageCount);
          log.grant(grant.keyId);
          if (Math.random() < ABANDON_SHARE) {
            abandoned.push(grant);
            continue;
          }
          await complete(broker, grant, randomOutcome());
          if (Math.random() < REPEAT_SHARE) {
            // A client retrying a completion it already made: whatever it answers, nothing may change.
            stats.repeats++;
            await timed(() => broker.complete(POOL, grant.leaseId, { outcome: randomOutcome() })).catch(
              () => undefined,
            );
          }
        }
      };

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
      await Promise.all(Array.from({ length: CALLERS }, caller));
      const outage = await chaos;
      const runSeconds = (Date.now() - started) / 1000;

      // Abandoned leases: once expired, every late completion answers lease_expired.
      const lastExpiry = Math.max(0, ...abandoned.map((g) => Date.parse(g.expiresAt)));
      await sleep(Math.max(0, lastExpiry - Date.now() + 200));
      const lateBroker = new Broker({ store, poolStore, sealer: testSealer() });
      // Bounded: 10,000 late completions at once overran the impatient client's 3 s timeout.
      const late = await mapLimit(abandoned, 16, (g) =>
        lateBroker.complete(POOL, g.leaseId, { outcome: randomOutcome() }).then(
          (value) => ({ status: 'fulfilled' as const, value }),
          (reason: unknown) => ({ status: 'rejected' as const, reason }),
        ),
      );
      const lateExpired = late.filter((r) => r.status === 'rejected' && r.reason instanceof LeaseExpired).length;

      const result = audit(await storedCounts(patient, TABLE_NAME, POOL), log, MAX_USES);
      client.destroy();
      patient.destroy();
      const summary = {
        leases: stats.granted,
        attempts: stats.attempts,
        runSeconds,
        keys: KEYS,
        refusals: stats.refusals,
        errorsSeen: stats.errors,
        errorsDuringOutage: stats.errors - outage.errorsBefore,
        outageMs: outage.outageMs,
        maxCallMs: Math.round(stats.maxCallMs),
        abandoned: abandoned.length,
        lateExpired,
        expiredCompletions: stats.expiredCompletions,
        repeats: stats.repeats,
        unknownGrants: [...log.maybeCounted.values()].reduce((a, b) => a + b, 0),
        unknownRefunds: [...log.maybeRefunded.values()].reduce((a, b) => a + b, 0),
        audit: result,
      };
      console.info(`chaos summary (${shards} shard(s)) ${JSON.stringify(summary)}`);

      // Assess
      expect(stats.granted).toBeGreaterThanOrEqual(LEASES);
      expect(summary.errorsDuringOutage).toBeGreaterThan(0);
      expect(stats.maxCallMs).toBeLessThan(30_000);
      expect(stats.maxGrantCount).toBeLessThanOrEqual(MAX_USES);
      expect(stats.unexpected).toBe(0);
      expect(result.keys).toBe(KEYS);
      expect(result).toMatchObject({ pastCap: 0, lostIncrements: 0, doubleCounted: 0, violations: 0, keysOverCap: 0 });
      expect(abandoned.length).toBeGreaterThan(0);
      expect(lateExpired).toBe(abandoned.length);
    },
    FULL ? 3_600_000 : 300_000,
  );

  it('no captured output line of this file contains a secret it used', () => {
    const scan = scanForSecrets();
    expect(scan.secrets).toBeGreaterThanOrEqual(KEYS);
    expect(scan.chunks).toBeGreaterThan(0);
    expect(scan.hits).toBe(0);
  });
});
