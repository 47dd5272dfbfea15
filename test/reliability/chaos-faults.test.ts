/**
 * Chaos run through the fault proxy: the callers of chaos-run.ts reach DynamoDB Local through
 * test/support/fault-proxy.ts, which throttles, conflicts, fails with 500s, delays, resets
 * connections before forwarding and loses the answers of writes it forwarded, at seeded rates.
 * Half of the leases carry an Idempotency-Key (so the lease transaction meets conflicts and
 * throttling too) and are asked again with it until answered. The audit must find every use
 * counted once (an unknown outcome at most once, and a replayed lease settles its own), no key
 * past its cap, and no 409 answered while the callers' own timeline shows a key usable.
 */
import { expectNoSecretInOutput } from './log-capture.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { dynamoEndpoint, uniqueName } from '../support/dynamo.js';
import { FAULT_KINDS, type FaultKind, startFaultProxy } from '../support/fault-proxy.js';
import { WriteWitness } from '../support/write-witness.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { CALLERS, CHAOS_TIMEOUT_MS, ChaosRun, chaosLeases, keysFor } from './chaos-run.js';

const LEASES = chaosLeases(60);
const KEYS = keysFor(LEASES);

/** Per kind, the share of the requests it applies to (see FAULT_KINDS): about one write in six is faulted. */
const RATES: Record<FaultKind, number> = {
  provisionedThroughputExceeded: 0.015,
  throttling: 0.015,
  transactionThrottled: 0.04,
  transactionConflict: 0.04,
  internalError: 0.02,
  reset: 0.02,
  lostAnswer: 0.03,
};
const SEED = Number(process.env.KEYPOOL_CHAOS_SEED ?? 20);

let tableName: string;

beforeAll(async () => {
  tableName = uniqueName('chaos-faults');
  await ensureTable(dynamoEndpoint(), tableName);
});

describe('chaos through the fault proxy', () => {
  it.each([1, 8])(
    `${LEASES} leases by ${CALLERS} callers through throttling, conflicts, 500s, resets and lost answers at %i shard(s), then the pool drained: every use counted once, none past the cap, no false 409`,
    async (shards) => {
      // Prepare: the proxy, and the witness of what DynamoDB Local applied behind it
      const witness = new WriteWitness();
      const proxy = await startFaultProxy({
        target: dynamoEndpoint(),
        seed: SEED + shards,
        rates: RATES,
        latency: { rate: 0.05, maxMs: 50 },
        observe: witness.observe,
      });
      const client = documentClient({ endpoint: proxy.endpoint, region: undefined });
      const patient = documentClient({ endpoint: dynamoEndpoint(), region: undefined });
      const run = new ChaosRun({
        client,
        patient,
        tableName,
        pool: uniqueName(`faults-${shards}`),
        shards,
        leases: LEASES,
        idempotentShare: 0.5,
        drain: true,
        witness,
      });
      await run.seed();
      const { stats } = run;
      // Each kind once at the start, the rest as drawn: a small run (CI's) may draw none of a
      // rare kind (a transaction throttled), and every kind is asserted to have been met.
      for (const kind of FAULT_KINDS) proxy.inject(kind);

      // Act
      const started = Date.now();
      await run.callers();
      const runSeconds = (Date.now() - started) / 1000;
      const result = await run.finish();
      const proxied = proxy.counts();
      client.destroy();
      patient.destroy();
      await proxy.close();
      const { faults: faulted } = proxied;
      const summary = run.summary(result, runSeconds, {
        requests: proxied.requests,
        faulted,
        delayed: proxied.delayed,
        storeThrottled: stats.throttled,
        idempotentRetries: stats.idempotentRetries,
        exact: result.exact,
      });
      console.info(`chaos-faults summary (${shards} shard(s)) ${JSON.stringify(summary)}`);

      // Assess
      run.expectInvariants(result);
      for (const kind of FAULT_KINDS) expect(faulted[kind], kind).toBeGreaterThan(0);
      expect(result.exact).toMatchObject({
        miscounted: 0,
        grantsUncounted: 0,
        grantedTwice: 0,
        silentWrites: 0,
        refundsLost: 0,
        refundsUnasked: 0,
        completedTwice: 0,
        unclassified: 0,
        notFound: { unexplained: 0 },
      });
      // The pool was drained: refusals were answered, and each was checked.
      expect(stats.refusals).toBeGreaterThan(0);
    },
    CHAOS_TIMEOUT_MS,
  );

  it('no captured output line of this file contains a secret it used', () => {
    expectNoSecretInOutput(KEYS);
  });
});
