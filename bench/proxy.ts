/**
 * `npm run bench:proxy`: proxy mode against direct calls to the same fake provider, in one run.
 * Figures, not a timed test. keypool runs as `npm start` does (bin/start.js, its own process, so
 * its RSS is its own) over DynamoDB Local; the fake provider and the callers run here.
 *   1. one caller, a provider that answers at once: keypool's added latency (p50, p99)
 *   2. 32 callers, a provider that answers in 1 s (a generation): throughput proxied / direct,
 *      added latency (p50, p99), keypool's peak RSS
 * and, for scale, the lease route's own latency in the same run (one caller): the floor of what
 * taking a use costs on this DynamoDB, which proxy mode pays once per call.
 * Options: --calls N (scenario 1, default 300), --seconds S (scenario 2, default 10),
 * --callers N (default 32), --delay-ms N (default 1000).
 * Uses KEYPOOL_DYNAMODB_ENDPOINT if set, else starts an in-memory DynamoDB Local.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startDynamoLocal } from '../lib/local/dynamodb-local.js';
import { type FakeProvider, startFakeProvider } from '../test/support/fake-provider.js';
import { type RunningStack, spawnStack } from '../test/support/stack-process.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const GENERATE = 'v2beta/stable-image/generate/core';
/**
 * Keys per pool, at the default cap (3: four uses each). A proxied use holds its key's lease
 * slot until its bound passes (proxyTimeoutSeconds + 30 s) unless it is given back, and a key
 * has 8 slots: keys enough that no pool runs dry within a run.
 */
const KEYS = 400;

const { values: options } = parseArgs({
  options: {
    calls: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '10' },
    callers: { type: 'string', default: '32' },
    'delay-ms': { type: 'string', default: '1000' },
  },
});

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const sortedOf = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

/** One generation request, its answer read whole; ms from send to the last byte. */
async function timed(url: string, headers: Record<string, string>): Promise<number> {
  const form = new FormData();
  form.set('prompt', 'a lighthouse at dusk');
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', body: form, headers: { accept: 'image/*', ...headers } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`answer ${response.status}`);
  return performance.now() - started;
}

/** `callers` loops calling for `seconds`: every call's latency and the calls per second. */
async function load(
  callers: number,
  seconds: number,
  call: (i: number) => Promise<number>,
): Promise<{ latencies: number[]; perSecond: number }> {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      for (let i = 0; performance.now() < until; i++) latencies.push(await call(caller * 1_000_000 + i));
    }),
  );
  return { latencies, perSecond: latencies.length / ((performance.now() - started) / 1000) };
}

/** keypool's own measure of its added time (the audit lines' addedMs) for the proxied calls it logged after `from` characters of output. */
function auditedAddedMs(output: string, from: number): number[] {
  return output
    .slice(from)
    .split('\n')
    .filter((line) => line.includes('"audit":"proxy"'))
    .map((line) => (JSON.parse(line) as { addedMs: number }).addedMs);
}

/** The peak RSS (VmHWM) of a process, MiB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** `npm start` in its own process, its proxy calling `provider`. */
async function startKeypool(endpoint: string, provider: FakeProvider, dir: string): Promise<RunningStack> {
  const keyFile = join(dir, 'sealing-key');
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  return spawnStack(
    {
      KEYPOOL_DYNAMODB_ENDPOINT: endpoint,
      KEYPOOL_TABLE: `bench-proxy-${Date.now()}`,
      KEYPOOL_SEALING_KEY_FILE: keyFile,
      KEYPOOL_DATA_DIR: dir,
      STABILITY_API_BASE_URL: provider.url,
    },
    120_000,
  );
}

async function json(url: string, method: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function main(): Promise<void> {
  const calls = Number(options.calls);
  const seconds = Number(options.seconds);
  const callers = Number(options.callers);
  const delayMs = Number(options['delay-ms']);
  const dir = mkdtempSync(join(tmpdir(), 'keypool-bench-proxy-'));
  const dynamo = process.env.KEYPOOL_DYNAMODB_ENDPOINT ? undefined : await startDynamoLocal({ port: await freePort() });
  const endpoint = process.env.KEYPOOL_DYNAMODB_ENDPOINT ?? dynamo?.endpoint ?? '';
  const provider = await startFakeProvider();
  const keypool = await startKeypool(endpoint, provider, dir);
  try {
    const newSecrets = (): string[] =>
      Array.from({ length: KEYS }, () => `sk-test-bench-${randomBytes(16).toString('hex')}`);
    const secrets = newSecrets();
    for (const [pool, keys] of [
      ['bench', secrets],
      ['bench-leases', newSecrets()],
    ] as const) {
      await json(`${keypool.url}/pools/${pool}`, 'PUT', {});
      await json(`${keypool.url}/pools/${pool}/keys`, 'POST', { keys: keys.map((apiKey) => ({ apiKey })) });
    }
    const setDelay = (ms: number): void => {
      for (const secret of secrets) provider.setKey(secret, { credits: 1e9, delayMs: ms });
    };
    const direct = (i: number): Promise<number> =>
      timed(`${provider.url}/${GENERATE}`, { authorization: `Bearer ${secrets[i % KEYS] ?? ''}` });
    const proxied = (): Promise<number> => timed(`${keypool.url}/pools/bench/proxy/${GENERATE}`, {});

    // 1. One caller, an instant provider.
    setDelay(0);
    for (let i = 0; i < 30; i++) await Promise.all([direct(i), proxied()]);
    const one = { direct: [] as number[], proxied: [] as number[] };
    const oneFrom = keypool.output().length;
    for (let i = 0; i < calls; i++) {
      one.direct.push(await direct(i));
      one.proxied.push(await proxied());
    }
    const d1 = sortedOf(one.direct);
    const p1 = sortedOf(one.proxied);
    const a1 = sortedOf(auditedAddedMs(keypool.output(), oneFrom));
    const leases: number[] = [];
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      await json(`${keypool.url}/pools/bench-leases/leases`, 'POST', {});
      leases.push(performance.now() - started);
    }
    const l1 = sortedOf(leases);

    // 2. Many callers, a provider that takes `delayMs`.
    setDelay(delayMs);
    const directLoad = await load(callers, seconds, direct);
    const rssBefore = peakRssMb(keypool.pid);
    const twoFrom = keypool.output().length;
    const proxiedLoad = await load(callers, seconds, proxied);
    const rssPeak = peakRssMb(keypool.pid);
    const d2 = sortedOf(directLoad.latencies);
    const p2 = sortedOf(proxiedLoad.latencies);
    const a2 = sortedOf(auditedAddedMs(keypool.output(), twoFrom));

    const ms = (n: number): string => `${n.toFixed(2)} ms`;
    const lines = [
      `proxy mode vs direct calls to the same fake provider (keypool: npm start over DynamoDB Local, ${KEYS} keys)`,
      ``,
      `1 caller, instant provider, ${calls} calls each:`,
      `  direct    p50 ${ms(percentile(d1, 50))}   p99 ${ms(percentile(d1, 99))}`,
      `  proxied   p50 ${ms(percentile(p1, 50))}   p99 ${ms(percentile(p1, 99))}`,
      `  added     p50 ${ms(percentile(p1, 50) - percentile(d1, 50))}   p99 ${ms(percentile(p1, 99) - percentile(d1, 99))}`,
      `  keypool's own (audit addedMs) p50 ${ms(percentile(a1, 50))}   p99 ${ms(percentile(a1, 99))}`,
      `  for scale: a lease (POST /pools/{pool}/leases) p50 ${ms(percentile(l1, 50))}   p99 ${ms(percentile(l1, 99))}`,
      ``,
      `${callers} callers, provider answers in ${delayMs} ms, ${seconds} s each:`,
      `  direct    ${directLoad.perSecond.toFixed(2)} calls/s   p50 ${ms(percentile(d2, 50))}   p99 ${ms(percentile(d2, 99))}`,
      `  proxied   ${proxiedLoad.perSecond.toFixed(2)} calls/s   p50 ${ms(percentile(p2, 50))}   p99 ${ms(percentile(p2, 99))}`,
      `  throughput ratio proxied/direct ${(proxiedLoad.perSecond / directLoad.perSecond).toFixed(3)}x`,
      `  added     p50 ${ms(percentile(p2, 50) - percentile(d2, 50))}   p99 ${ms(percentile(p2, 99) - percentile(d2, 99))}`,
      `  keypool's own (audit addedMs) p50 ${ms(percentile(a2, 50))}   p99 ${ms(percentile(a2, 99))}`,
      `  keypool peak RSS ${rssPeak.toFixed(0)} MiB (${rssBefore.toFixed(0)} MiB before the proxied load)`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await keypool.stop();
    await provider.close();
    await dynamo?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
