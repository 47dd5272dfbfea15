/**
 * A wrong sealing key is a wrong setting, not a verdict on the keys: a CLI run from another
 * directory, a CLI or a server given another key file, `keypool reseal` and `keypool maintain`
 * with the wrong key each change no key's status, give back any use they reserved, and say in
 * one line which key they hold and which key the data was sealed under. Keys here are sealed
 * under a stack's own key (a file in its data dir), never the test run's.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DynamoCalls } from '../../lib/adapters/dynamo-wire.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import type { LocalServer } from '../../lib/local/server.js';
import { runKeypool } from '../support/cli.js';
import { dynamoEndpoint, scanTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { expectError, poolApi } from '../support/pool-api.js';
import { randomKeySealer } from '../support/sealing.js';
import { seedKeys } from '../support/seed.js';
import { captureOutput, startTestServer } from '../support/server.js';

const PROJECT_DIR = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

let client: DynamoCalls;
let provider: FakeProvider;

beforeAll(async () => {
  client = documentClient({ endpoint: dynamoEndpoint(), region: undefined });
  provider = await startFakeProvider();
});

afterAll(async () => {
  await provider.close();
});

interface Stack {
  /** the stack's data dir, holding its sealing key */
  dataDir: string;
  keyFile: string;
  /** the key's name in a message header: `local-<16 hex>` */
  keyName: string;
  tableName: string;
  /** pool -> key ids, in seed order */
  pools: Map<string, string[]>;
  secrets: string[];
}

/** A key file of its own (mode 0600) in a fresh directory. */
function keyFileIn(dir: string, key: Buffer = randomBytes(32)): { file: string; name: string } {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'sealing-key');
  writeFileSync(file, key, { mode: 0o600 });
  return { file, name: localKeyName(key) };
}

/** A table whose keys a stack sealed under its data dir's key: `perPool` keys in each of `pools` pools. */
async function stackWithKeys(pools: number, perPool: number): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keypool-stack-'));
  const key = randomBytes(32);
  const { file, name } = keyFileIn(dataDir, key);
  const tableName = uniqueName('wrongkey');
  await ensureTable(dynamoEndpoint(), tableName);
  const secrets: string[] = [];
  const byPool = new Map<string, string[]>();
  for (let i = 0; i < pools; i++) {
    const pool = uniqueName(`p${i}`);
    const ids = await seedKeys({
      client,
      tableName,
      pool,
      count: perPool,
      sealer: randomKeySealer(key),
      onSecret: (s) => secrets.push(s),
    });
    byPool.set(pool, ids);
  }
  return { dataDir, keyFile: file, keyName: name, tableName, pools: byPool, secrets };
}

/** The CLI's environment for the stack's table with no sealing setting at all (the variables set empty are unset). */
function bareEnv(stack: Stack): Record<string, string> {
  return {
    KEYPOOL_DYNAMODB_ENDPOINT: dynamoEndpoint(),
    KEYPOOL_TABLE: stack.tableName,
    KEYPOOL_SEALING_KEY_FILE: '',
    KEYPOOL_SEALING_PREVIOUS_KEY_FILES: '',
    KEYPOOL_SECRETS_KEY_ARN: '',
    KEYPOOL_DATA_DIR: '',
  };
}

/** Every key's status and count, by key id. */
async function statuses(stack: Stack): Promise<Record<string, string>> {
  // Keys only: a maintenance run also leaves its own record (what it checked, its errors).
  const items = (await scanTable(client, stack.tableName)).filter((item) => String(item.keyId).startsWith('k_'));
  return Object.fromEntries(
    items.map((item) => [String(item.keyId), `${String(item.status)}/${String(item.usageCount)}`]),
  );
}

/** What statuses() answers for a stack nothing touched. */
function untouched(stack: Stack): Record<string, string> {
  return Object.fromEntries([...stack.pools.values()].flat().map((id) => [id, 'active/0']));
}

function firstPool(stack: Stack): string {
  return [...stack.pools.keys()][0] ?? '';
}

/** One line on stderr, nothing on stdout: the refusal, as a string. */
function oneLine(run: { stdout: string; stderr: string }): string {
  expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
  return run.stderr.trim();
}

describe('the CLI with no sealing setting, run from another directory', () => {
  it('creates no key there, marks no key, and refuses in one line naming the key file it looked for', async () => {
    // Prepare: a stack's keys; the operator runs `keypool lease` in another terminal, in another directory.
    const stack = await stackWithKeys(1, 10);
    const elsewhere = mkdtempSync(join(tmpdir(), 'keypool-elsewhere-'));
    // Act
    const run = await runKeypool(['lease', '--pool', firstPool(stack)], bareEnv(stack), undefined, elsewhere);
    // Assess: before, this created elsewhere/.keypool/sealing-key, marked all 10 keys undecryptable and said "no active key".
    expect(existsSync(join(elsewhere, '.keypool'))).toBe(false);
    expect(await statuses(stack)).toEqual(untouched(stack));
    expect(run.code).not.toBe(0);
    const line = oneLine(run);
    // The project's data dir, not the working directory's: absent, it is exit 2; present, it holds another key (exit 1).
    expect(line).toContain(join(PROJECT_DIR, '.keypool', 'sealing-key'));
    expect(line).not.toContain('no active key');
  });

  it('with KEYPOOL_DATA_DIR naming a directory with no key: exit 2 naming the file, and no key is created', async () => {
    // Prepare
    const stack = await stackWithKeys(1, 5);
    const empty = mkdtempSync(join(tmpdir(), 'keypool-nokey-'));
    // Act
    const run = await runKeypool(['lease', '--pool', firstPool(stack)], { ...bareEnv(stack), KEYPOOL_DATA_DIR: empty });
    // Assess: before, the CLI created a key there and marked every key undecryptable (exit 1, "no active key").
    expect(run.code, run.stderr).toBe(2);
    expect(oneLine(run)).toMatch(new RegExp(`^keypool lease: no sealing key at ${join(empty, 'sealing-key')}`));
    expect(existsSync(join(empty, 'sealing-key'))).toBe(false);
    expect(await statuses(stack)).toEqual(untouched(stack));
  });
});

describe('the CLI given another key file than the stack', () => {
  it('keypool lease exits 1 with one line naming the key file in use and the key the data was sealed under; the use is given back, no key marked', async () => {
    // Prepare
    const stack = await stackWithKeys(1, 10);
    const wrong = keyFileIn(mkdtempSync(join(tmpdir(), 'keypool-wrong-')));
    const env = { ...bareEnv(stack), KEYPOOL_SEALING_KEY_FILE: wrong.file };
    // Act
    const run = await runKeypool(['lease', '--pool', firstPool(stack)], env);
    // Assess: before, every key was marked undecryptable and the CLI said only "no active key".
    expect(await statuses(stack)).toEqual(untouched(stack));
    expect(run.code, run.stderr).toBe(1);
    const line = oneLine(run);
    expect(line).toMatch(/^keypool lease: /);
    expect(line).toContain(stack.keyName);
    expect(line).toContain(wrong.file);
    expect(line).toContain(wrong.name);
    for (const secret of stack.secrets) expect(run.stdout + run.stderr).not.toContain(secret);
  });

  it('keypool reseal exits 1 with one line, and changes nothing in any pool', async () => {
    // Prepare: two pools, and what the table holds before.
    const stack = await stackWithKeys(2, 6);
    const wrong = keyFileIn(mkdtempSync(join(tmpdir(), 'keypool-wrong-')));
    const env = { ...bareEnv(stack), KEYPOOL_SEALING_KEY_FILE: wrong.file };
    const before = JSON.stringify(await scanTable(client, stack.tableName));
    // Act
    const run = await runKeypool(['reseal', '--json'], env);
    // Assess: before, every key of every pool was marked undecryptable, and the run exited 0.
    expect(await statuses(stack)).toEqual(untouched(stack));
    expect(JSON.stringify(await scanTable(client, stack.tableName)) === before).toBe(true);
    expect(run.code, run.stderr).toBe(1);
    const line = oneLine(run);
    expect(line).toMatch(/^keypool reseal: /);
    expect(line).toContain(stack.keyName);
    expect(line).toContain(wrong.file);
    expect(line).toContain('nothing was changed');
  });

  it('keypool maintain asks the provider nothing, marks no key, and says why in one line (exit 1)', async () => {
    // Prepare
    const stack = await stackWithKeys(1, 4);
    const wrong = keyFileIn(mkdtempSync(join(tmpdir(), 'keypool-wrong-')));
    const env = {
      ...bareEnv(stack),
      KEYPOOL_SEALING_KEY_FILE: wrong.file,
      STABILITY_API_BASE_URL: provider.url,
      KEYPOOL_BALANCE_RATE: '10',
    };
    const asked = provider.requests.length;
    // Act
    const run = await runKeypool(['maintain', '--pool', firstPool(stack), '--json'], env);
    // Assess: before, every key was marked undecryptable and the run exited 0.
    expect(provider.requests.length).toBe(asked);
    expect(await statuses(stack)).toEqual(untouched(stack));
    expect(run.code, run.stderr).toBe(1);
    const summary = JSON.parse(run.stdout) as { checked: number; undecryptable: number; errors: { reason: string }[] };
    expect(summary).toMatchObject({ checked: 0, undecryptable: 0 });
    expect(summary.errors).toHaveLength(4);
    for (const error of summary.errors) expect(error.reason).toContain(stack.keyName);
    const line = oneLine({ stdout: '', stderr: run.stderr });
    expect(line).toMatch(/^keypool maintain: 4 key\(s\) not checked: /);
    expect(line).toContain(wrong.file);
  });
});

describe('the local server holding another key than the one the data was sealed under', () => {
  let server: LocalServer;
  let stack: Stack;

  beforeAll(async () => {
    // The server seals and opens with the test run's key; the stack's keys were sealed under its own.
    stack = await stackWithKeys(1, 5);
    server = await startTestServer(stack.tableName);
  });

  afterAll(async () => {
    await server.close();
  });

  it('answers 503 sealing_misconfigured with Retry-After, marks no key, gives every use back, and logs both keys', async () => {
    // Prepare
    const api = poolApi(server.url);
    const pool = firstPool(stack);
    const capture = captureOutput();
    const answers = [];
    try {
      // Act: before, three leases marked the whole pool undecryptable and answered 409.
      for (let i = 0; i < 3; i++) answers.push(await api.lease(pool));
    } finally {
      capture.stop();
    }
    // Assess
    for (const answer of answers) {
      const body = expectError(answer, 503, 'sealing_misconfigured');
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(body.retryAfterSeconds).toBe(Number(answer.headers.get('retry-after')));
      expect(body.message).toContain(stack.keyName);
    }
    expect(await statuses(stack)).toEqual(untouched(stack));
    const logged = capture.lines();
    expect(logged).toContain('sealing_misconfigured');
    expect(logged).toContain(stack.keyName);
    for (const secret of stack.secrets) expect(logged + answers.map((a) => a.text).join('')).not.toContain(secret);
  });
});
