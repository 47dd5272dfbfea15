/**
 * `npm run bench:bundles [-- --runs N] [-- --json]`: each Lambda entry point's bundle bytes and
 * module-init time against the floor (a handler that only builds a DynamoDB document client
 * and sends one command), bundled the way the CDK stack bundles and measured in the same run.
 * Init runs are interleaved (one of each entry per round) so a busy machine slows all alike;
 * the CPU time of the init is printed beside its wall time, being far steadier under load.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../infra/bundling.js';
import { ENTRY_NAMES, ENTRY_POINTS } from '../infra/entry-points.js';
import { type Bundle, bundleEntry, FLOOR_ENTRY, measureInitCost, packagesIn } from '../test/support/bundles.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, json: { type: 'boolean', default: false } },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive whole number');

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const outdir = mkdtempSync(join(tmpdir(), 'keypool-bundles-'));
try {
  const bundles: Bundle[] = [await bundleEntry('floor', FLOOR_ENTRY, outdir)];
  for (const name of ENTRY_NAMES) {
    const { file } = ENTRY_POINTS[name];
    if (existsSync(join(PROJECT_ROOT, file))) bundles.push(await bundleEntry(name, file, outdir));
    else console.error(`skipped ${name}: ${file} does not exist`);
  }

  const samples = new Map<string, number[]>(bundles.map((b) => [b.name, []]));
  const cpuSamples = new Map<string, number[]>(bundles.map((b) => [b.name, []]));
  for (let round = 0; round < runs; round++) {
    for (const bundle of bundles) {
      const { wallMs, cpuMs } = await measureInitCost(bundle.file);
      samples.get(bundle.name)?.push(wallMs);
      cpuSamples.get(bundle.name)?.push(cpuMs);
    }
  }

  const floor = bundles[0];
  const floorInit = median(samples.get('floor') ?? []);
  const floorCpu = median(cpuSamples.get('floor') ?? []);
  if (!floor) throw new Error('no floor bundle');
  const floorPackages = new Map(packagesIn(floor).map((p) => [p.pkg, p.bytes]));
  const rows = bundles.map((b) => {
    const init = median(samples.get(b.name) ?? []);
    const cpu = median(cpuSamples.get(b.name) ?? []);
    // What this bundle carries beyond the floor, largest first.
    const top = packagesIn(b)
      .map((p) => ({ pkg: p.pkg, bytes: p.bytes - (floorPackages.get(p.pkg) ?? 0) }))
      .filter((p) => p.bytes > 1024)
      .sort((x, y) => y.bytes - x.bytes)
      .slice(0, 5);
    return {
      entry: b.name,
      bytes: b.bytes,
      bytesVsFloor: b.bytes / floor.bytes,
      mapBytes: b.mapBytes,
      initMs: init,
      initVsFloor: init / floorInit,
      initCpuMs: cpu,
      initCpuVsFloor: cpu / floorCpu,
      overFloor: top.map((p) => `${p.pkg} +${(p.bytes / 1024).toFixed(0)}K`).join(', '),
    };
  });

  if (values.json) {
    console.log(JSON.stringify({ runs, node: process.version, rows }, null, 2));
  } else {
    console.log(
      `bundle bytes and module-init time (median of ${runs}, node ${process.version}, NODE_OPTIONS=--enable-source-maps)\n`,
    );
    console.log('entry      bytes      x floor   init ms   x floor   init cpu ms   x floor   beyond the floor');
    const ratio = (x: number) => `${x.toFixed(2).padStart(6)}x`;
    for (const r of rows) {
      console.log(
        `${r.entry.padEnd(10)} ${String(r.bytes).padStart(9)}  ${ratio(r.bytesVsFloor)}  ${r.initMs.toFixed(1).padStart(8)}  ${ratio(r.initVsFloor)}  ${r.initCpuMs.toFixed(1).padStart(12)}  ${ratio(r.initCpuVsFloor)}   ${r.overFloor}`,
      );
    }
    console.log(
      '\nbytes: every code file of the asset (source maps aside); goal: lease, keys, maintain at most 1.25x the floor in bytes and in init time',
    );
  }
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
