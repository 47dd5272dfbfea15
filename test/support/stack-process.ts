/**
 * `npm start` (bin/start.js) as a process of its own on free ports, with the given settings on
 * top of this process's environment: what the client tests (test/support/local-stack.ts) and
 * the proxy benchmark run, so they meet the stack exactly as a user does.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/local/dynamodb-local.js';

const START = fileURLToPath(new URL('../../bin/start.js', import.meta.url));

export interface RunningStack {
  /** the API's base URL, http://127.0.0.1:<port> */
  url: string;
  /** the stack's process id */
  pid: number;
  /** what the stack printed so far */
  output: () => string;
  /** Ctrl-C, then waits for it to exit */
  stop: () => Promise<void>;
}

/** Starts `npm start` with `env` and waits for "keypool is up" (or fails with what it printed). */
export async function spawnStack(env: Record<string, string>, timeoutMs = 60_000): Promise<RunningStack> {
  const port = await freePort();
  const child = spawn(process.execPath, [START], {
    env: { ...process.env, KEYPOOL_PORT: String(port), KEYPOOL_CONSOLE_PORT: String(await freePort()), ...env },
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
  return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? 0, output: () => output, stop };
}
