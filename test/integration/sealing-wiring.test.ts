/**
 * Where the wrapping key comes from, seen from processes configured as on AWS (no
 * KEYPOOL_DYNAMODB_ENDPOINT) but with no sealing variable: only what seals or opens fails, with
 * a ConfigError naming KEYPOOL_SECRETS_KEY_ARN; pools, listing, counting and operator writes
 * work. DynamoDB is DynamoDB Local all the same, reached through the SDK's own
 * AWS_ENDPOINT_URL_DYNAMODB, which keypool's configuration does not read (so it takes itself
 * for a process on AWS).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config.js';
import { sealNewKey } from '../../lib/use-cases/new-key.js';
import { loadHandlers } from '../../bin/local-handlers.js';
import { type LocalServer, startServer } from '../../lib/local/server.js';
import { sealer, wrappingKeySource } from '../../lib/wiring-secrets.js';
import { runKeypool } from '../support/cli.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { expectError, poolApi } from '../support/pool-api.js';
import { testSealer } from '../support/sealing.js';
import { captureOutput } from '../support/server.js';

/** The environment of a process on "AWS" (DynamoDB Local behind the SDK's endpoint variable) with no wrapping key configured. */
function awsLikeEnv(table: TestTable): Record<string, string> {
  return {
    KEYPOOL_TABLE: table.tableName,
    KEYPOOL_DYNAMODB_ENDPOINT: '',
    KEYPOOL_SEALING_KEY_FILE: '',
    KEYPOOL_SECRETS_KEY_ARN: '',
    AWS_ENDPOINT_URL_DYNAMODB: table.endpoint,
    AWS_REGION: 'us-east-1',
    // DynamoDB Local takes any credentials made of letters and digits.
    AWS_ACCESS_KEY_ID: 'keypoolwiring',
    AWS_SECRET_ACCESS_KEY: 'keypoolwiring',
  };
}

describe('the sealer the wiring builds', () => {
  it('is built without a wrapping key, and fails with a ConfigError naming KEYPOOL_SECRETS_KEY_ARN only when it seals or opens', async () => {
    // Prepare / Act
    const unconfigured = sealer({ endpoint: undefined }, {});
    const sealing = unconfigured
      .seal('sk-test-wiring-0000', { pool: 'p', keyId: 'k_000000000000000000000000' })
      .catch((error: unknown) => error);
    const opening = unconfigured
      .open('AYAAAA==', { pool: 'p', keyId: 'k_000000000000000000000000' })
      .catch((error: unknown) => error);
    // Assess
    for (const error of [await sealing, await opening]) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('KEYPOOL_SECRETS_KEY_ARN');
      expect((error as Error).message).toContain('KEYPOOL_SEALING_KEY_FILE');
    }
  });

  it('uses the data dir key on a local stack with no sealing variable, and the configured key file or KMS key otherwise', () => {
    // Prepare
    const dataDir = mkdtempSync(join(tmpdir(), 'keypool-wiring-'));
    // Act / Assess
    expect(wrappingKeySource({ endpoint: 'http://127.0.0.1:8000' }, { KEYPOOL_DATA_DIR: dataDir })).toEqual({
      kind: 'data-dir',
      dataDir,
    });
    expect(
      wrappingKeySource(
        { endpoint: undefined },
        { KEYPOOL_SEALING_KEY_FILE: '/k', KEYPOOL_SEALING_PREVIOUS_KEY_FILES: '/a, /b' },
      ),
    ).toEqual({ kind: 'local', keyFile: '/k', previousKeyFiles: ['/a', '/b'] });
    const arn = 'arn:aws:kms:eu-west-1:111122223333:key/00000001-1111-2222-3333-444455556666';
    expect(wrappingKeySource({ endpoint: 'http://127.0.0.1:8000' }, { KEYPOOL_SECRETS_KEY_ARN: arn })).toEqual({
      kind: 'kms',
      keyArn: arn,
      previousKeyArns: [],
    });
    expect(() => wrappingKeySource({ endpoint: undefined }, {})).toThrow(/KEYPOOL_SECRETS_KEY_ARN/);
  });
});

describe('a process on AWS with no wrapping key configured', () => {
  let table: TestTable;
  let server: LocalServer;
  let keyId: string;
  const pool = uniqueName('nokey');

  beforeAll(async () => {
    table = await createTestTable('wiring');
    // A key sealed by someone who has the key (the test run's), as an earlier import would have.
    await table.pools.put(pool, {}, new Date().toISOString());
    const key = await sealNewKey(testSealer(), fakeKey('wired-'), pool, new Date().toISOString());
    await table.store.insert(key);
    keyId = key.keyId;
    const env = awsLikeEnv(table);
    for (const [name, value] of Object.entries(env)) {
      if (value === '') Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
    server = await startServer(await loadHandlers(), 0);
  });

  afterAll(async () => {
    await server.close();
  });

  it('answers pools, listing, counting and operator writes; import and lease fail with an error that names KEYPOOL_SECRETS_KEY_ARN in the log, and the lease gives its use back', async () => {
    // Prepare
    const api = poolApi(server.url);
    const secret = fakeKey('never-stored-');
    const capture = captureOutput();
    const working: Awaited<ReturnType<typeof api.call>>[] = [];
    let imported;
    let leased;
    try {
      // Act
      working.push(await api.call('GET', '/pools'));
      working.push(await api.call('GET', `/pools/${pool}`));
      working.push(await api.call('PUT', `/pools/${pool}`, { maxUses: 5 }));
      working.push(await api.call('GET', `/pools/${pool}/keys`));
      working.push(await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`));
      working.push(await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'active' }));
      imported = await api.call('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secret }] });
      leased = await api.call('POST', `/pools/${pool}/leases`);
    } finally {
      capture.stop();
    }
    const after = await table.store.get(keyId);
    // Assess
    for (const answer of working) expect(answer.status, answer.text).toBe(200);
    expect(expectError(imported, 500, 'internal_error').message).toBe('internal error');
    expect(expectError(leased, 500, 'internal_error').message).toBe('internal error');
    const configErrors = capture
      .lines()
      .split('\n')
      .filter((line) => line.includes('"errorName":"ConfigError"'));
    expect(configErrors).toHaveLength(2);
    for (const line of configErrors) expect(line).toContain('KEYPOOL_SECRETS_KEY_ARN');
    expect(capture.lines()).not.toContain(secret);
    // The lease was written, could not be opened, and was undone: one use (the usage call), slot closed.
    expect(after?.usageCount).toBe(1);
    expect(Object.values(after?.slots ?? {}).map((slot) => slot.outcome)).toEqual(['failure']);
    expect((await table.pools.get(pool))?.maxUses).toBe(5);
  });

  it('the CLI lists and shows status without a wrapping key, and refuses to add a key with one line naming KEYPOOL_SECRETS_KEY_ARN (exit 2)', async () => {
    // Prepare
    const env = awsLikeEnv(table);
    const secret = fakeKey('cli-never-');
    // Act
    const list = await runKeypool(['list', '--pool', pool, '--json'], env);
    const status = await runKeypool(['status', '--json'], env);
    const add = await runKeypool(['add', secret, '--pool', pool], env);
    // Assess
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { keys: { keyId: string }[] }).keys.map((k) => k.keyId)).toEqual([keyId]);
    expect(status.code, status.stderr).toBe(0);
    expect(add.code).toBe(2);
    expect(add.stderr.trim().split('\n')).toHaveLength(1);
    expect(add.stderr).toMatch(/^keypool add: no wrapping key for sealed secrets: set KEYPOOL_SECRETS_KEY_ARN/);
    expect(add.stderr).not.toContain(secret);
    expect((await table.store.poolKeys(pool, 10)).keys).toHaveLength(1);
  });
});
