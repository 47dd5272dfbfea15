/**
 * `npm start` (bin/start.js) as a separate process over the test run's DynamoDB Local and a
 * table of its own: for tests whose client is another process (the Python client), which must
 * meet the stack exactly as a user does.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { freePort } from '../../lib/local/dynamodb-local.js';
import { dynamoEndpoint, uniqueName } from './dynamo.js';

const START = fileURLToPath(new URL('../../bin/start.js', import.meta.url));

export interface RunningStack {
  /** the API's base URL, http://127.0.0.1:<port> */
  url: string;
  /** what the stack printed so far */
  output: () => string;
  /** Ctrl-C, then waits for it to exit */
  stop: () => Promise<void>;
}

/** Starts `npm start` (with `env` on top of this process's) and waits for "keypool is up" (or fails with what it printed). */
export async function startLocalStack(timeoutMs = 60_000, env: Record<string, string> = {}): Promise<RunningStack> {
  const port = await freePort();
  const child = spawn(process.execPath, [START], {
    env: {
      ...process.env,
      KEYPOOL_PORT: String(port),
      KEYPOOL_CONSOLE_PORT: String(await freePort()),
      KEYPOOL_DYNAMODB_ENDPOINT: dynamoEndpoint(),
      KEYPOOL_TABLE: uniqueName('stack'),
      KEYPOOL_SEALING_KEY_FILE: inject('sealingKeyFile'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGINT');
    await exited;
  };
  const deadline = Date.now() + timeoutMs;
  while (!output.includes('keypool is up')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`npm start did not come up:\n${output}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  return { url: `http://127.0.0.1:${port}`, output: () => output, stop };
}
