/**
 * The proxied contenders' provider: a loopback HTTP server in a process of its own that answers
 * every generation at once (200, a 20-byte PNG) and counts the calls made with each key (the
 * bearer token). Its own process so the benchmark's CPU per use is the callers', not the
 * provider's; every proxied contender calls the same server, so its cost falls on all alike.
 *
 *   GET /__calls    the calls per key since the last GET /__calls (JSON), then starts over
 *
 * Run as a script it listens on a free port and prints `listening <port>`; startProviderStub
 * spawns it and hands back its URL, its counts and its end.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The PNG signature and an IEND chunk: what a generation answers. */
const IMAGE = Buffer.from('89504e470d0a1a0a0000000049454e44ae426082', 'hex');
const CALLS_PATH = '/__calls';

/** The server: counts calls per bearer key, answers each at once. */
function serve(): void {
  let calls = new Map<string, number>();
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === CALLS_PATH) {
      const body = JSON.stringify(Object.fromEntries(calls));
      calls = new Map();
      response.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const key = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    calls.set(key, (calls.get(key) ?? 0) + 1);
    // The body is read to its end before the answer, as a provider does.
    request.resume();
    request.once('end', () => {
      response.writeHead(200, { 'content-type': 'image/png', 'content-length': String(IMAGE.byteLength) }).end(IMAGE);
    });
  });
  server.keepAliveTimeout = 5_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  process.once('disconnect', () => process.exit(0));
}

export interface ProviderStub {
  url: string;
  /** the calls made with each key (the secret) since the last ask */
  takeCalls(): Promise<Map<string, number>>;
  stop(): void;
}

/** Starts the stub in a child process (the same Node.js and loader as this one). */
export async function startProviderStub(): Promise<ProviderStub> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const match = /listening (\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the provider stub ended (${code ?? 'signal'})`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    takeCalls: async () => {
      const response = await fetch(`${url}${CALLS_PATH}`);
      return new Map(Object.entries((await response.json()) as Record<string, number>));
    },
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) serve();
