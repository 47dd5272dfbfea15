/**
 * `npm run bench:proxy`: proxy mode against direct calls to the same fake provider, in one run.
 * Figures, not a timed test. keypool runs as `npm start` does (bin/start.js, its own process, so
 * its RSS is its own) over DynamoDB Local; the fake provider and the callers run here.
 *   0. a warm-up, not measured (DynamoDB Local's JIT compiler, the code paths of both sides)
 *   1. one caller, a provider that answers at once: keypool's added latency (p50, p99)
 *   2. 32 callers, a provider that answers in 1 s (a generation), in phase and staggered:
 *      throughput proxied / direct, added latency (p50, p99), keypool's peak RSS
 * and, for scale, the lease route's own latency in the same run (one caller): the floor of what
 * taking a use costs on this DynamoDB, which proxy mode pays once per call. Each scenario has
 * a pool of its own, with keys enough for its calls.
 * Options: --calls N (scenario 1, default 1000), --warmup N (rounds, default 1000), --seconds S
 * (scenario 2, default 10), --callers N (default 32), --delay-ms N (default 1000).
 * Uses KEYPOOL_DYNAMODB_ENDPOINT if set, else starts an in-memory DynamoDB Local.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startDynamoLocal } from '../lib/local/dynamodb-local.js';
import { MAX_IMPORT_BATCH } from '../lib/domain/primitives.js';
import { type FakeProvider, startFakeProvider } from '../test/support/fake-provider.js';
import { type RunningStack, spawnStack } from '../test/support/stack-process.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const GENERATE = 'v2beta/stable-image/generate/core';
/** Uses a key serves at the default cap (3): each pool gets keys enough that it never runs dry in a run. */
const USES_PER_KEY = 4;

const { values: options } = parseArgs({
  options: {
    calls: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '1000' },
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

/**
 * `callers` loops calling for `seconds`: every call's latency and the calls per second. In phase,
 * every caller starts at once, so with a provider of fixed delay all of them call at the same
 * instant, round after round; staggered, caller i starts i/callers of `staggerMs` later, as
 * independent callers do.
 */
async function load(
  callers: number,
  seconds: number,
  call: (i: number) => Promise<number>,
  staggerMs = 0,
): Promise<{ latencies: number[]; perSecond: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      await new Promise((done) => setTimeout(done, (caller / callers) * staggerMs));
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
  const warmup = Number(options.warmup);
  const dir = mkdtempSync(join(tmpdir(), 'keypool-bench-proxy-'));
  const dynamo = process.env.KEYPOOL_DYNAMODB_ENDPOINT ? undefined : await startDynamoLocal({ port: await freePort() });
  const endpoint = process.env.KEYPOOL_DYNAMODB_ENDPOINT ?? dynamo?.endpoint ?? '';
  const provider = await startFakeProvider();
  const keypool = await startKeypool(endpoint, provider, dir);
  try {
    /** A pool of its own for `uses` proxied (or leased) uses, each key known to the provider, answering at once. */
    const addPool = async (pool: string, uses: number): Promise<string[]> => {
      const secrets = Array.from(
        { length: Math.ceil(uses / USES_PER_KEY) + 10 },
        () => `sk-test-bench-${randomBytes(16).toString('hex')}`,
      );
      await json(`${keypool.url}/pools/${pool}`, 'PUT', {});
      for (let i = 0; i < secrets.length; i += MAX_IMPORT_BATCH)
        await json(`${keypool.url}/pools/${pool}/keys`, 'POST', {
          keys: secrets.slice(i, i + MAX_IMPORT_BATCH).map((apiKey) => ({ apiKey })),
        });
      for (const secret of secrets) provider.setKey(secret, { credits: 1e9, delayMs: 0 });
      return secrets;
    };
    const pools = {
      warm: await addPool('bench-warm', warmup),
      one: await addPool('bench-one', calls),
      leases: await addPool('bench-leases', warmup + calls),
      many: await addPool('bench-many', 2 * Math.ceil((callers * (seconds * 1000 + delayMs)) / delayMs) + callers),
    };
    const direct = (secrets: readonly string[]) => (i: number) =>
      timed(`${provider.url}/${GENERATE}`, { authorization: `Bearer ${secrets[i % secrets.length] ?? ''}` });
    const proxied = (pool: string) => () => timed(`${keypool.url}/pools/${pool}/proxy/${GENERATE}`, {});
    const lease = async (): Promise<number> => {
      const started = performance.now();
      await json(`${keypool.url}/pools/bench-leases/leases`, 'POST', {});
      return performance.now() - started;
    };

    // 0. Warm-up, not measured: DynamoDB Local is a JVM whose compiler takes a thousand or so
    // requests to reach its pace, and keypool's and this process's code paths are compiled too.
    for (let i = 0; i < warmup; i++) await Promise.all([direct(pools.warm)(i), proxied('bench-warm')(), lease()]);

    // 1. One caller, an instant provider.
    const one = { direct: [] as number[], proxied: [] as number[] };
    const oneFrom = keypool.output().length;
    for (let i = 0; i < calls; i++) {
      one.direct.push(await direct(pools.one)(i));
      one.proxied.push(await proxied('bench-one')());
    }
    const d1 = sortedOf(one.direct);
    const p1 = sortedOf(one.proxied);
    const a1 = sortedOf(auditedAddedMs(keypool.output(), oneFrom));
    const leases: number[] = [];
    for (let i = 0; i < calls; i++) leases.push(await lease());
    const l1 = sortedOf(leases);

    // 2. Many callers, a provider that takes `delayMs`: in phase, then staggered.
    for (const secret of pools.many) provider.setKey(secret, { credits: 1e9, delayMs });
    const many = async (staggerMs: number) => {
      const directLoad = await load(callers, seconds, direct(pools.many), staggerMs);
      const from = keypool.output().length;
      const proxiedLoad = await load(callers, seconds, proxied('bench-many'), staggerMs);
      return {
        direct: { perSecond: directLoad.perSecond, sorted: sortedOf(directLoad.latencies) },
        proxied: { perSecond: proxiedLoad.perSecond, sorted: sortedOf(proxiedLoad.latencies) },
        audited: sortedOf(auditedAddedMs(keypool.output(), from)),
      };
    };
    const rssBefore = peakRssMb(keypool.pid);
    const inPhase = await many(0);
    const staggered = await many(delayMs);
    const rssPeak = peakRssMb(keypool.pid);

    const ms = (n: number): string => `${n.toFixed(2)} ms`;
    const p50p99 = (sorted: readonly number[]): string =>
      `p50 ${ms(percentile(sorted, 50))}   p99 ${ms(percentile(sorted, 99))}`;
    const added = (proxiedSorted: readonly number[], directSorted: readonly number[]): string =>
      `p50 ${ms(percentile(proxiedSorted, 50) - percentile(directSorted, 50))}   p99 ${ms(percentile(proxiedSorted, 99) - percentile(directSorted, 99))}`;
    const manyLines = (title: string, run: Awaited<ReturnType<typeof many>>): string[] => [
      `  ${title}:`,
      `    direct    ${run.direct.perSecond.toFixed(2)} calls/s   ${p50p99(run.direct.sorted)}`,
      `    proxied   ${run.proxied.perSecond.toFixed(2)} calls/s   ${p50p99(run.proxied.sorted)}`,
      `    throughput ratio proxied/direct ${(run.proxied.perSecond / run.direct.perSecond).toFixed(3)}x`,
      `    added     ${added(run.proxied.sorted, run.direct.sorted)}`,
      `    keypool's own (audit addedMs) ${p50p99(run.audited)}`,
    ];
    const lines = [
      `proxy mode vs direct calls to the same fake provider (keypool: npm start over DynamoDB Local; ${warmup} warm-up rounds, not measured)`,
      ``,
      `1 caller, instant provider, ${calls} calls each:`,
      `  direct    ${p50p99(d1)}`,
      `  proxied   ${p50p99(p1)}`,
      `  added     ${added(p1, d1)}`,
      `  keypool's own (audit addedMs) ${p50p99(a1)}`,
      `  for scale: a lease (POST /pools/{pool}/leases) ${p50p99(l1)}`,
      ``,
      `${callers} callers, provider answers in ${delayMs} ms, ${seconds} s each:`,
      ...manyLines('in phase (all start at once: every round, all call at the same instant)', inPhase),
      ...manyLines(`staggered (caller i starts i/${callers} of ${delayMs} ms later)`, staggered),
      `  keypool peak RSS ${rssPeak.toFixed(0)} MiB (${rssBefore.toFixed(0)} MiB before the loads)`,
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
