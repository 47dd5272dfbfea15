/**
 * `npx tsx bench/sealer.ts [--ops N] [--runs N] [--json]`: what sealing costs.
 *
 * (a) Latency of seal and open with the raw AES keyring (the local stack's; KMS adds one
 *     network round trip per seal and per cold open on top), per operation over N ops after a
 *     warm-up: open cold (cache miss: a distinct ciphertext each time, the whole decrypt) and
 *     open warm (cache hit). The same cold open through the fake KMS shows the cost of an
 *     open with a KMS key minus the network.
 * (b) Bundle bytes and module-init time of entries bundled exactly as the stack bundles
 *     (infra/bundling.ts), with and without the opener (what a function that opens secrets
 *     loads): a bare handler, the floor handler (DynamoDB document client) and the lease function.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { EsdkSealer } from '../lib/adapters/esdk-sealer.js';
import { keyIdFor } from '../lib/domain/keys.js';
import { esbuildOptions, PROJECT_ROOT } from '../infra/bundling.js';
import { measureInit } from '../test/support/bundles.js';
import { FakeKms, fakeKeyArn } from '../test/support/fake-kms.js';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    runs: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const ops = Number(values.ops);
const runs = Number(values.runs);
if (!Number.isInteger(ops) || ops < 100) throw new Error('--ops must be a whole number >= 100');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive whole number');

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

interface Latency {
  case: string;
  ops: number;
  medianMs: number;
  p99Ms: number;
  meanMs: number;
}

async function timed(label: string, count: number, op: (i: number) => Promise<unknown>): Promise<Latency> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await op(i);
    samples.push(performance.now() - t0);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    case: label,
    ops: count,
    medianMs: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    meanMs: samples.reduce((a, b) => a + b, 0) / count,
  };
}

/** Fake provider keys: 64 characters, like the real ones. */
const secrets = Array.from({ length: ops }, () => `sk-test-${randomBytes(28).toString('hex')}`);
const contexts = secrets.map((s) => ({ pool: 'stability', keyId: keyIdFor(s) }));
const secretAt = (i: number): string => secrets[i] ?? '';
const contextAt = (i: number) => contexts[i] ?? { pool: 'stability', keyId: keyIdFor('') };

async function latencies(): Promise<{
  rows: Latency[];
  sealedChars: { local: number; kms: number };
  sealedBytes: { local: number; kms: number };
}> {
  // The cache holds every ciphertext of the run, so the warm pass measures hits (with the
  // default bound of 1,000 entries, a FIFO pass over 2,000 keys would miss every time).
  const local = new EsdkSealer({ current: { kind: 'local', key: randomBytes(32) }, cache: { maxEntries: ops } });
  const kms = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms: new FakeKms() });

  // Warm-up: JIT, the ESDK's lazy module state, the crypto engine.
  for (let i = 0; i < Math.min(200, ops); i++)
    await local.open(await local.seal(secretAt(i), contextAt(i)), contextAt(i));
  local.forgetOpened();

  const sealedLocal: string[] = [];
  const sealedKms: string[] = [];
  const rows = [
    await timed('seal (raw AES)', ops, async (i) => sealedLocal.push(await local.seal(secretAt(i), contextAt(i)))),
    await timed('open cold: cache miss (raw AES)', ops, (i) => local.open(sealedLocal[i] ?? '', contextAt(i))),
    await timed('open warm: cache hit (raw AES)', ops, (i) => local.open(sealedLocal[i] ?? '', contextAt(i))),
  ];
  for (let i = 0; i < ops; i++) sealedKms.push(await kms.seal(secretAt(i), contextAt(i)));
  rows.push(
    await timed('open cold: cache miss (KMS keyring, fake KMS: no network)', ops, (i) =>
      kms.open(sealedKms[i] ?? '', contextAt(i)),
    ),
  );
  const first = (xs: string[]) => xs[0] ?? '';
  const stats = local.stats();
  if (stats.cacheHits !== ops)
    throw new Error(`the warm pass should be all cache hits, got ${stats.cacheHits} of ${ops}`);
  return {
    rows,
    sealedChars: { local: first(sealedLocal).length, kms: first(sealedKms).length },
    sealedBytes: {
      local: Buffer.from(first(sealedLocal), 'base64').length,
      kms: Buffer.from(first(sealedKms), 'base64').length,
    },
  };
}

// Entries built from source text (esbuild stdin) so the bench leaves no files behind.
const OPENER = `import { createEsdkOpener } from './lib/adapters/esdk-opener.js';
const opener = createEsdkOpener({ current: { kind: 'kms', keyArn: process.env.KEYPOOL_SEALING_KEY_ARN ?? 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000' } });
export const open = (sealed, context) => opener.open(sealed, context);
`;
const ENTRIES: Record<string, string> = {
  bare: 'export const handler = async () => null;\n',
  'bare+opener': `${OPENER}export const handler = async () => null;\n`,
  floor: "export { handler } from './bench/floor-handler.js';\n",
  'floor+opener': `${OPENER}export { handler } from './bench/floor-handler.js';\n`,
  lease: "export { handler } from './functions/lease.js';\n",
  'lease+opener': `${OPENER}export { handler } from './functions/lease.js';\n`,
};

interface BundleRow {
  entry: string;
  bytes: number;
  initMs: number;
}

async function bundles(): Promise<BundleRow[]> {
  const outdir = mkdtempSync(join(tmpdir(), 'keypool-sealer-bench-'));
  try {
    const files = new Map<string, string>();
    for (const [name, contents] of Object.entries(ENTRIES)) {
      const outfile = join(outdir, name, 'index.mjs');
      const { entryPoints: _ignored, ...options } = esbuildOptions('unused', outfile);
      await build({
        ...options,
        stdin: { contents, resolveDir: PROJECT_ROOT, sourcefile: `${name}.ts`, loader: 'ts' },
      });
      files.set(name, outfile);
    }
    const init = new Map<string, number[]>([...files.keys()].map((n) => [n, []]));
    // Interleaved rounds, so a busy machine slows every entry alike.
    for (let round = 0; round < runs; round++)
      for (const [name, file] of files) init.get(name)?.push(await measureInit(file));
    return [...files].map(([entry, file]) => {
      const sorted = [...(init.get(entry) ?? [])].sort((a, b) => a - b);
      return { entry, bytes: statSync(file).size, initMs: quantile(sorted, 0.5) };
    });
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

interface KmsCallsRow {
  containers: number;
  leases: number;
  kmsDecrypts: number;
  per1000Leases: number;
}

/**
 * KMS Decrypt calls per 1,000 leases, counted: 250 keys leased four times each (the default cap,
 * maxUses 3), each lease served by a container picked at random (seeded), each container with
 * its own EsdkSealer and opened-secret cache over a counting fake KMS — as each warm Lambda
 * container has its own.
 */
async function kmsCalls(): Promise<KmsCallsRow[]> {
  const keys = 250;
  const usesPerKey = 4;
  const rows: KmsCallsRow[] = [];
  for (const containers of [1, 2, 5, 10, 50]) {
    const kms = new FakeKms();
    const sealers = Array.from(
      { length: containers },
      () => new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms }),
    );
    const sealed = await Promise.all(
      Array.from({ length: keys }, async (_, i) => {
        const apiKey = `sk-test-kms-count-${String(i).padStart(6, '0')}`;
        const context = { pool: 'bench', keyId: keyIdFor(apiKey) };
        return { context, sealed: await (sealers[0] as EsdkSealer).seal(apiKey, context) };
      }),
    );
    const before = kms.calls.decrypt;
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    // Leases in use order: every key once, then every key again (LRU), four rounds.
    for (let round = 0; round < usesPerKey; round++) {
      for (const { context, sealed: value } of sealed)
        await (sealers[Math.floor(random() * containers)] as EsdkSealer).open(value, context);
    }
    const decrypts = kms.calls.decrypt - before;
    rows.push({
      containers,
      leases: keys * usesPerKey,
      kmsDecrypts: decrypts,
      per1000Leases: Math.round((decrypts / (keys * usesPerKey)) * 1000),
    });
  }
  return rows;
}

const lat = await latencies();
const kmsRows = await kmsCalls();
const bundleRows = await bundles();

if (values.json) {
  console.log(
    JSON.stringify({ node: process.version, ops, runs, latency: lat, kmsCalls: kmsRows, bundles: bundleRows }, null, 2),
  );
} else {
  console.log(`sealer latency, ${ops} ops each after a warm-up (node ${process.version}, one process, sequential)\n`);
  console.log('case                                                        median ms   p99 ms   mean ms');
  for (const r of lat.rows)
    console.log(
      `${r.case.padEnd(58)} ${r.medianMs.toFixed(4).padStart(9)} ${r.p99Ms.toFixed(4).padStart(8)} ${r.meanMs.toFixed(4).padStart(9)}`,
    );
  console.log(
    `\nsealed size of a 64-character key: raw AES ${lat.sealedChars.local} chars (${lat.sealedBytes.local} bytes binary); KMS ${lat.sealedChars.kms} chars (${lat.sealedBytes.kms} bytes, with a 184-byte KMS blob)`,
  );
  console.log(
    '\nKMS Decrypt calls per 1,000 leases (maxUses 3: four leases per key; each lease on a random warm container)\n',
  );
  console.log('containers   leases   KMS Decrypt   per 1,000 leases');
  for (const r of kmsRows)
    console.log(
      `${String(r.containers).padStart(10)} ${String(r.leases).padStart(8)} ${String(r.kmsDecrypts).padStart(13)} ${String(r.per1000Leases).padStart(18)}`,
    );
  console.log(
    `\nbundles as the stack builds them (minified ESM, node24), init = median of ${runs} fresh-process imports\n`,
  );
  console.log('entry          bytes    +bytes vs without   init ms');
  for (const r of bundleRows) {
    const base = bundleRows.find((b) => b.entry === r.entry.replace('+opener', ''));
    // A percentage of the bare handler's few bytes says nothing: bytes only there.
    const percent =
      base && base.bytes > 10_000 ? ` (+${(((r.bytes - base.bytes) / base.bytes) * 100).toFixed(0)}%)` : '';
    const delta = r.entry.endsWith('+opener') && base ? `+${r.bytes - base.bytes}${percent}` : '';
    console.log(
      `${r.entry.padEnd(13)} ${String(r.bytes).padStart(8)}   ${delta.padEnd(18)} ${r.initMs.toFixed(1).padStart(7)}`,
    );
  }
}
