import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DATA_DIR_LOCK } from '../../lib/local/data-dir-lock.js';
import { freePort } from '../../lib/local/dynamodb-local.js';
import { runKeypool } from '../support/cli.js';
import { createTestTable, uniqueName } from '../support/dynamo.js';
import { randomKeySealer } from '../support/sealing.js';
import { seedKeys } from '../support/seed.js';
import { documentClient } from '../../lib/adapters/dynamo-client.js';

const START = fileURLToPath(new URL('../../bin/start.js', import.meta.url));

interface Started {
  output: () => string;
  exited: Promise<number | null>;
  /** true once the process has exited */
  done: () => boolean;
  signal: (s: NodeJS.Signals) => void;
  pid: number;
}

function start(env: Record<string, string>): Started {
  const child = spawn(process.execPath, [START], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  let ended = false;
  const exited = new Promise<number | null>((done) =>
    child.once('exit', (code) => {
      ended = true;
      done(code);
    }),
  );
  return { output: () => output, exited, done: () => ended, signal: (s) => child.kill(s), pid: child.pid ?? 0 };
}

/** The DynamoDB Local processes `pid` started that still run (Linux: /proc). */
async function dynamoChildrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const children = text.split(' ').filter(Boolean).map(Number);
  const commands = await Promise.all(
    children.map((child) => readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')),
  );
  return children.filter((_, i) => commands[i]?.includes('DynamoDBLocal'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((done) => child.once('exit', done));
  return child.pid ?? 0;
}

/** A start's own DynamoDB Local over `dataDir`, with the data dir's sealing key (not the test run's). */
function ownDataDir(dataDir: string): Record<string, string> {
  return { KEYPOOL_DATA_DIR: dataDir, KEYPOOL_DYNAMODB_ENDPOINT: '', KEYPOOL_SEALING_KEY_FILE: '' };
}

/** Fresh ports for the three listeners of a start. */
async function stackPorts(): Promise<
  Record<'KEYPOOL_PORT' | 'KEYPOOL_CONSOLE_PORT' | 'KEYPOOL_DYNAMODB_LOCAL_PORT', string>
> {
  return {
    KEYPOOL_PORT: String(await freePort()),
    KEYPOOL_CONSOLE_PORT: String(await freePort()),
    KEYPOOL_DYNAMODB_LOCAL_PORT: String(await freePort()),
  };
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start', () => {
  it('serves the API over a persistent DynamoDB Local, keeps data and its sealing key across restarts, and stops both on Ctrl-C', async () => {
    // Prepare: no sealing variable (the test run's key file is not passed on), so the data dir's key is used.
    const dataDir = mkdtempSync(join(tmpdir(), 'keypool-data-'));
    const env = { ...(await stackPorts()), ...ownDataDir(dataDir) };
    const keyFile = join(dataDir, 'sealing-key');
    const api = `http://127.0.0.1:${env.KEYPOOL_PORT}`;
    const consoleUrl = `http://127.0.0.1:${env.KEYPOOL_CONSOLE_PORT}`;
    // Act: first run imports a key
    const first = start(env);
    await until(() => first.output().includes('keypool is up'), 60_000);
    const health = await (await fetch(`${api}/health`)).json();
    const imported = await fetch(`${api}/pools/stability/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ keys: [{ apiKey: 'sk-test-persisted-0123456789' }] }),
    });
    const keyAfterFirst = readFileSync(keyFile);
    const modeAfterFirst = statSync(keyFile).mode & 0o777;
    first.signal('SIGINT');
    const firstCode = await first.exited;
    // Act: second run sees it
    const second = start(env);
    await until(() => second.output().includes('keypool is up'), 60_000);
    const listed = (await (await fetch(`${api}/pools/stability/keys`)).json()) as { keys: unknown[] };
    const leased = (await (await fetch(`${api}/pools/stability/leases`, { method: 'POST' })).json()) as {
      apiKey?: string;
    };
    const consolePage = await fetch(`${consoleUrl}/pools/stability`);
    const consoleHtml = await consolePage.text();
    // A CLI in another terminal, in another directory, with exactly the environment the banner printed.
    const printed = /^ {2}CLI {8}export (.*?) {3}\(in another terminal/m.exec(second.output())?.[1] ?? '';
    const cliEnv = Object.fromEntries(printed.split(' ').map((word) => word.split('=') as [string, string]));
    const cliLease = await runKeypool(
      ['lease', '--json'],
      {
        ...cliEnv,
        KEYPOOL_DYNAMODB_ENDPOINT: '',
        KEYPOOL_SEALING_KEY_FILE: '',
        AWS_REGION: '',
        AWS_DEFAULT_REGION: '',
      },
      undefined,
      mkdtempSync(join(tmpdir(), 'keypool-other-terminal-')),
    );
    second.signal('SIGINT');
    const secondCode = await second.exited;
    // Assess
    expect(health).toEqual({ status: 'ok' });
    expect(imported.status).toBe(201);
    expect(first.output()).toContain(`API        ${api}`);
    // The console beside the API, over the same table: the key, masked.
    expect(first.output()).toContain(`Console    ${consoleUrl}`);
    expect(consolePage.status).toBe(200);
    expect(consoleHtml).toContain('sk-...6789');
    expect(consoleHtml).not.toContain('sk-test-persisted-0123456789');
    expect(firstCode).toBe(0);
    expect(existsSync(join(dataDir, DATA_DIR_LOCK))).toBe(false);
    expect(second.output()).toContain('(existed)');
    expect(listed.keys).toHaveLength(1);
    expect(secondCode).toBe(0);
    // The sealing key: generated on the first start (32 bytes, mode 0600), reused on the next, so
    // the key imported before the restart still opens.
    expect(first.output()).toContain(`Sealing    key file ${keyFile} (created now, mode 0600`);
    expect(second.output()).toContain(`Sealing    key file ${keyFile} (existing, mode 0600`);
    expect(keyAfterFirst).toHaveLength(32);
    expect(modeAfterFirst).toBe(0o600);
    expect(readFileSync(keyFile).equals(keyAfterFirst)).toBe(true);
    expect(leased.apiKey).toBe('sk-test-persisted-0123456789');
    // The banner names what the CLI needs, since neither the port nor the data dir is the default.
    expect(printed).toBe(`KEYPOOL_DYNAMODB_LOCAL_PORT=${env.KEYPOOL_DYNAMODB_LOCAL_PORT} KEYPOOL_DATA_DIR=${dataDir}`);
    expect(cliLease.code, cliLease.stderr).toBe(0);
    expect(JSON.parse(cliLease.stdout)).toMatchObject({ apiKey: 'sk-test-persisted-0123456789', usageCount: 1 });
    await expect(fetch(`${api}/health`)).rejects.toThrow();
  }, 180_000);

  it('refuses to start over a table that holds sealed keys when its data dir has no key: one line naming the file, no key created, no key marked', async () => {
    // Prepare: a table whose keys another stack sealed, and a fresh data dir for this one.
    const table = await createTestTable('start-nokey');
    const pool = uniqueName('sealed');
    const ids = await seedKeys({
      client: documentClient({ endpoint: table.endpoint, region: undefined }),
      tableName: table.tableName,
      pool,
      count: 5,
      sealer: randomKeySealer(),
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'keypool-fresh-'));
    const port = await freePort();
    // Act
    const run = start({
      KEYPOOL_PORT: String(port),
      KEYPOOL_CONSOLE_PORT: String(await freePort()),
      KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint,
      KEYPOOL_TABLE: table.tableName,
      KEYPOOL_DATA_DIR: dataDir,
      KEYPOOL_SEALING_KEY_FILE: '',
    });
    await until(() => run.done() || run.output().includes('keypool is up'), 60_000);
    if (!run.done()) {
      // Before: it came up with a new key, and three leases took the whole pool out (undecryptable).
      for (let i = 0; i < 3; i++) await fetch(`http://127.0.0.1:${port}/pools/${pool}/leases`, { method: 'POST' });
      run.signal('SIGINT');
    }
    const code = await run.exited;
    // Assess
    const statuses = await Promise.all(ids.map(async (id) => (await table.store.get(id))?.status));
    expect(statuses).toEqual(ids.map(() => 'active'));
    expect(code).toBe(1);
    expect(run.output().trim().split('\n')).toHaveLength(1);
    expect(run.output()).toMatch(
      new RegExp(
        `^keypool: table "${table.tableName}" at ${table.endpoint} holds sealed keys, but there is no sealing key at ${join(dataDir, 'sealing-key')}`,
      ),
    );
    expect(existsSync(join(dataDir, 'sealing-key'))).toBe(false);
  }, 120_000);

  it('stops the DynamoDB Local it started when a later step refuses to start, so the next start finds its port free', async () => {
    // Prepare: a sealing key file that does not exist, which is read only after DynamoDB Local is up.
    const dataDir = mkdtempSync(join(tmpdir(), 'keypool-refused-'));
    const dbPort = await freePort();
    // Act
    const run = start({
      KEYPOOL_PORT: String(await freePort()),
      KEYPOOL_CONSOLE_PORT: String(await freePort()),
      KEYPOOL_DYNAMODB_LOCAL_PORT: String(dbPort),
      KEYPOOL_DATA_DIR: dataDir,
      KEYPOOL_DYNAMODB_ENDPOINT: '',
      KEYPOOL_SEALING_KEY_FILE: join(dataDir, 'no-such-key'),
    });
    const code = await run.exited;
    // Before: the java process outlived the start and still held the port (and the data dir).
    const stillAnswers = await fetch(`http://127.0.0.1:${dbPort}`).then(
      () => true,
      () => false,
    );
    // Assess
    expect(code).toBe(1);
    expect(run.output()).toMatch(/^keypool: no sealing key at /);
    expect(stillAnswers).toBe(false);
    expect(existsSync(join(dataDir, DATA_DIR_LOCK))).toBe(false);
  }, 120_000);

  it('stops the DynamoDB Local it is starting when it is told to stop before it is up', async () => {
    // Prepare
    const dataDir = mkdtempSync(join(tmpdir(), 'keypool-stopped-early-'));
    const run = start({ ...(await stackPorts()), ...ownDataDir(dataDir) });
    let java: number[] = [];
    for (let i = 0; i < 1500 && java.length === 0 && !run.done(); i++) {
      java = await dynamoChildrenOf(run.pid);
      if (java.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    // Act: a process manager's SIGTERM while DynamoDB Local is still starting
    run.signal('SIGTERM');
    await run.exited;
    // Before: the start died of the signal and its java process went on, holding the port and the data dir.
    const left = await until(() => java.every((pid) => !alive(pid)), 15_000).then(
      () => [],
      () => java.filter(alive),
    );
    for (const pid of left) process.kill(pid, 'SIGKILL');
    // Assess
    expect(java).toHaveLength(1);
    expect(run.output()).not.toContain('keypool is up');
    expect(left).toEqual([]);
    expect(existsSync(join(dataDir, DATA_DIR_LOCK))).toBe(false);
  }, 120_000);

  it('refuses a second start on the same data dir, on other ports too, in one line naming the running one; takes over a lock its holder left', async () => {
    // Prepare: a data dir whose lock was left by a start that is gone (killed outright).
    const dataDir = mkdtempSync(join(tmpdir(), 'keypool-locked-'));
    const lockFile = join(dataDir, DATA_DIR_LOCK);
    writeFileSync(lockFile, JSON.stringify({ pid: await deadPid(), ports: { API: 1 } }));
    const base = ownDataDir(dataDir);
    const ports = await stackPorts();
    const first = start({ ...base, ...ports });
    await until(() => first.done() || first.output().includes('keypool is up'), 60_000);
    const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { pid: number; dynamoPid: number };
    const [java] = await dynamoChildrenOf(first.pid);
    // Act: a second start on the same data dir with ports of its own, then the same ports.
    const otherPorts = await stackPorts();
    const second = start({ ...base, ...otherPorts });
    await until(() => second.done() || second.output().includes('keypool is up'), 60_000);
    if (!second.done()) second.signal('SIGINT'); // before: it came up, a second DynamoDB Local on the same file
    const secondCode = await second.exited;
    const samePorts = start({ ...base, ...ports });
    const samePortsCode = await samePorts.exited;
    first.signal('SIGTERM');
    const firstCode = await first.exited;
    // Assess
    const refusal = `keypool: data dir ${dataDir} is in use by another keypool (pid ${first.pid}, DynamoDB Local pid ${java}; API ${ports.KEYPOOL_PORT}, console ${ports.KEYPOOL_CONSOLE_PORT}, DynamoDB Local ${ports.KEYPOOL_DYNAMODB_LOCAL_PORT}): stop it first, or set KEYPOOL_DATA_DIR to another directory`;
    expect(first.output()).toContain('keypool is up');
    expect(second.output().trim()).toBe(refusal);
    expect(secondCode).toBe(1);
    expect(lock).toMatchObject({ pid: first.pid, dynamoPid: java });
    expect(samePortsCode).toBe(1);
    expect(samePorts.output().trim()).toBe(refusal);
    expect(firstCode).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  }, 120_000);

  it('fails with one actionable line when the API port is taken', async () => {
    // Prepare
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((done) => blocker.listen(port, '127.0.0.1', done));
    try {
      // Act
      const run = start({ KEYPOOL_PORT: String(port), KEYPOOL_DYNAMODB_ENDPOINT: '' });
      const code = await run.exited;
      // Assess
      expect(code).toBe(1);
      expect(run.output().trim()).toBe(
        `keypool: port ${port} (keypool API) is already in use: stop what holds it or set KEYPOOL_PORT to another port`,
      );
    } finally {
      blocker.close();
    }
  });

  it('fails with one actionable line, before starting anything, when the console is given the API port', async () => {
    // Prepare
    const port = String(await freePort());
    const dbPort = await freePort();
    // Act
    const run = start({
      KEYPOOL_PORT: port,
      KEYPOOL_CONSOLE_PORT: port,
      KEYPOOL_DYNAMODB_LOCAL_PORT: String(dbPort),
      KEYPOOL_DATA_DIR: mkdtempSync(join(tmpdir(), 'keypool-same-port-')),
      KEYPOOL_DYNAMODB_ENDPOINT: '',
      KEYPOOL_SEALING_KEY_FILE: '',
    });
    const code = await run.exited;
    // Assess: before, DynamoDB Local and the API came up first, then the console failed on a bare EADDRINUSE.
    expect(code).toBe(1);
    expect(run.output().trim()).toBe(
      `keypool: KEYPOOL_PORT and KEYPOOL_CONSOLE_PORT are both ${port}: give each its own port`,
    );
  });

  it('fails with one actionable line when Java is missing', async () => {
    // Prepare: a PATH with no java on it
    const emptyDir = mkdtempSync(join(tmpdir(), 'keypool-nopath-'));
    // Act
    const run = start({
      PATH: emptyDir,
      KEYPOOL_PORT: String(await freePort()),
      KEYPOOL_CONSOLE_PORT: String(await freePort()),
      KEYPOOL_DYNAMODB_LOCAL_PORT: String(await freePort()),
      KEYPOOL_DYNAMODB_ENDPOINT: '',
    });
    const code = await run.exited;
    // Assess
    expect(code).toBe(1);
    expect(run.output().trim()).toMatch(
      /^keypool: Java 17\+ is needed to run DynamoDB Local: install it .*KEYPOOL_DYNAMODB_ENDPOINT$/,
    );
  });
});
