/**
 * `npm run bench:bundles [-- --runs N] [-- --json]`: each Lambda entry point's bundle bytes and
 * module-init time against the floor (a handler that only builds a DynamoDB document client
 * and sends one command, with the AWS SDK's whole credential chain, as any handler has it) and
 * against floor-env (the same handler given keypool's cut of that chain to the environment,
 * infra/bundle-substitutes/credential-provider-node.ts), each bundled the way the CDK stack
 * bundles and measured in the same run.
 * Init runs are interleaved (one of each entry per round) so a busy machine slows all alike;
 * the CPU time of the init is printed beside its wall time, being far steadier under load.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../infra/bundling.js';
import { ENTRY_NAMES, ENTRY_POINTS } from '../infra/entry-points.js';
import { type Bundle, bundleEntry, bundleFloor, measureInitCost, packagesIn } from '../test/support/bundles.js';

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
  const bundles: Bundle[] = [await bundleFloor(outdir, 'sdk'), await bundleFloor(outdir, 'env')];
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

  const [floor, floorEnv] = bundles;
  if (!floor || !floorEnv) throw new Error('no floor bundles');
  const medianOf = (map: Map<string, number[]>, name: string) => median(map.get(name) ?? []);
  // What a bundle carries beyond floor-env: the same SDK cut, so what remains is keypool's own.
  const floorPackages = new Map(packagesIn(floorEnv).map((p) => [p.pkg, p.bytes]));
  const rows = bundles.map((b) => {
    const init = medianOf(samples, b.name);
    const cpu = medianOf(cpuSamples, b.name);
    const top = packagesIn(b)
      .map((p) => ({ pkg: p.pkg, bytes: p.bytes - (floorPackages.get(p.pkg) ?? 0) }))
      .filter((p) => p.bytes > 1024)
      .sort((x, y) => y.bytes - x.bytes)
      .slice(0, 5);
    return {
      entry: b.name,
      bytes: b.bytes,
      bytesVsFloor: b.bytes / floor.bytes,
      bytesVsFloorEnv: b.bytes / floorEnv.bytes,
      mapBytes: b.mapBytes,
      initMs: init,
      initVsFloor: init / medianOf(samples, floor.name),
      initCpuMs: cpu,
      initCpuVsFloor: cpu / medianOf(cpuSamples, floor.name),
      initCpuVsFloorEnv: cpu / medianOf(cpuSamples, floorEnv.name),
      overFloorEnv: top.map((p) => `${p.pkg} +${(p.bytes / 1024).toFixed(0)}K`).join(', '),
    };
  });

  if (values.json) {
    console.log(JSON.stringify({ runs, node: process.version, rows }, null, 2));
  } else {
    console.log(
      `bundle bytes and module-init time (median of ${runs}, node ${process.version}, NODE_OPTIONS=--enable-source-maps)\n`,
    );
    console.log(
      'entry          bytes  x floor  x f-env   init ms  x floor  init cpu ms  x floor  x f-env   beyond floor-env',
    );
    const ratio = (x: number) => `${x.toFixed(2).padStart(6)}x`;
    for (const r of rows) {
      console.log(
        `${r.entry.padEnd(10)} ${String(r.bytes).padStart(9)}  ${ratio(r.bytesVsFloor)}  ${ratio(r.bytesVsFloorEnv)}  ${r.initMs.toFixed(1).padStart(8)}  ${ratio(r.initVsFloor)}  ${r.initCpuMs.toFixed(1).padStart(11)}  ${ratio(r.initCpuVsFloor)}  ${ratio(r.initCpuVsFloorEnv)}   ${r.overFloorEnv}`,
      );
    }
    console.log(
      "\nbytes: every code file of the asset (source maps aside). floor: the bare handler with the SDK's whole credential chain;" +
        " f-env (floor-env): the same handler with keypool's cut of it. Goal: lease, keys, maintain, proxy at most 1.25x the floor in bytes and init time",
    );
  }
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
