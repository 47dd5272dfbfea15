/**
 * The two ways maintenance runs: the scheduled Lambda (functions/maintain.ts), whose pool
 * metrics are checked in the EMF it prints, and the CLI (`keypool maintain`, `keypool status`)
 * through the real bin.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';

const run = promisify(execFile);
let table: TestTable;
let provider: FakeProvider;

beforeAll(async () => {
  table = await createTestTable('maint-entry');
  provider = await startFakeProvider();
});

afterAll(async () => {
  await provider.close();
});

/** One pool: 2 with credits (one used 4 times, over the default cap 3), 1 poor, 1 unknown (401), 1 failing (500), 1 disabled. */
async function seedPool(pool: string): Promise<string[]> {
  const secrets = Array.from({ length: 6 }, (_, i) => fakeKey(`${i}-`));
  const { keys } = await table.broker().importKeys(
    pool,
    secrets.map((apiKey) => ({ apiKey })),
  );
  const ids = keys.map((k) => k.keyId);
  provider.setKey(secrets[0] ?? '', { credits: 20 });
  provider.setKey(secrets[1] ?? '', { credits: 20 });
  provider.setKey(secrets[2] ?? '', { credits: 1.5 });
  provider.setKey(secrets[4] ?? '', { balanceStatus: 500 });
  provider.setKey(secrets[5] ?? '', { credits: 20 });
  for (let i = 0; i < 4; i++) await table.broker().increment(pool, ids[1] ?? '');
  await table.broker().updateKey(pool, ids[5] ?? '', { status: 'disabled' });
  return ids;
}

function lambdaContext(): Context {
  return {
    functionName: 'keypool-maintain',
    awsRequestId: 'test',
    getRemainingTimeInMillis: () => 120_000,
  } as unknown as Context;
}

describe('scheduled maintenance Lambda', () => {
  it('runs over every pool and publishes one EMF record per pool with the pool gauges', async () => {
    // Prepare
    const [a, b] = [uniqueName('pa'), uniqueName('pb')];
    await seedPool(a);
    await seedPool(b);
    process.env.KEYPOOL_TABLE = table.tableName;
    process.env.KEYPOOL_DYNAMODB_ENDPOINT = table.endpoint;
    process.env.STABILITY_API_BASE_URL = provider.url;
    process.env.KEYPOOL_BALANCE_RATE = '10';
    const { handler } = await import('../../functions/maintain.js');
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    });
    // Act
    let summary;
    try {
      summary = await handler({} as ScheduledEvent, lambdaContext());
    } finally {
      spy.mockRestore();
    }
    // Assess
    expect(summary).toMatchObject({ checked: 10, active: 6, exhausted: 2, disabled: 4, cooling: 0, suspect: 0 });
    expect(summary.errors).toHaveLength(2);
    const emf = lines
      .join('')
      .split('\n')
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const pool of [a, b]) {
      const record = emf.find((r) => r.pool === pool);
      expect(record).toMatchObject({
        UsableKeys: 2,
        // Each key is its own account here: the two usable keys, one with 20 credits, one never read.
        UsableCredits: 20,
        ExhaustedKeys: 1,
        DisabledKeys: 2,
        CoolingKeys: 0,
        SuspectKeys: 0,
        UnsettledSuspectKeys: 0,
        UndecryptableKeys: 0,
        BalanceCheckErrors: 1,
      });
      expect(record?._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: 'keypool', Dimensions: [['pool']] }] });
    }
    const logged = lines.join('');
    expect(logged).not.toMatch(/sk-test-/);
  });
});

describe('keypool maintain and keypool status (CLI)', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, ['bin/keypool.js', ...args], {
      env: {
        ...process.env,
        KEYPOOL_TABLE: table.tableName,
        KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint,
        STABILITY_API_BASE_URL: provider.url,
        KEYPOOL_BALANCE_RATE: '10',
        ...env,
      },
    });

  it('maintain --json prints exactly the summary; --min-credits moves the threshold; status reports the pool', async () => {
    // Prepare
    const pool = uniqueName('pc');
    const ids = await seedPool(pool);
    // Act
    const first = await cli(['maintain', '--pool', pool, '--json']);
    const strict = await cli(['maintain', '--pool', pool, '--min-credits', '25', '--json']);
    const status = await cli(['status', '--json']);
    const text = await cli(['status']);
    // Assess
    const summary = JSON.parse(first.stdout) as Record<string, unknown>;
    expect(Object.keys(summary)).toEqual([
      'checked',
      'active',
      'exhausted',
      'disabled',
      'cooling',
      'suspect',
      'undecryptable',
      'errors',
      'providerAuthBreaker',
    ]);
    expect(summary).toEqual({
      checked: 5,
      active: 3,
      exhausted: 1,
      disabled: 2,
      cooling: 0,
      suspect: 0,
      undecryptable: 0,
      errors: [{ keyId: ids[4], reason: 'provider answered 500 server_error' }],
      providerAuthBreaker: { open: false, refusals: 1, answers: 4 },
    });
    // The key the provider disabled is asked about again (last); the operator's never is.
    expect(JSON.parse(strict.stdout)).toMatchObject({ checked: 5, active: 1, exhausted: 3, disabled: 2 });
    const health = (JSON.parse(status.stdout) as { pools: Record<string, unknown>[] }).pools.find(
      (p) => p.pool === pool,
    );
    expect(health).toMatchObject({
      maxUses: 3,
      total: 6,
      active: 1,
      exhausted: 3,
      disabled: 2,
      cooling: 0,
      suspect: 0,
      usable: 1,
      credits: 41.5,
      unchecked: 1,
    }); // the 500 key was never read
    expect(typeof health?.oldestCheck).toBe('string');
    expect(text.stdout).toContain(pool);
    expect(first.stdout + strict.stdout + status.stdout + first.stderr).not.toMatch(/sk-test-/);
  });

  it('a bad --min-credits is a usage error (exit 2)', async () => {
    // Act
    const error = await cli(['maintain', '--min-credits', 'lots']).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    // Assess
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toMatch(/--min-credits/);
  });
});
