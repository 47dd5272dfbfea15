/**
 * Bundles entry points exactly as the CDK stack does (infra/bundling.ts) and measures them:
 * bundle bytes, and module-init time in a fresh Node process with the Lambda's NODE_OPTIONS.
 * Shared by the bundling test and `npm run bench:bundles`.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { BUNDLE_SUBSTITUTES, esbuildOptions, PROJECT_ROOT } from '../../infra/bundling.js';

export interface Bundle {
  name: string;
  /** index.mjs, the file Lambda loads */
  file: string;
  /** every code file of the function's asset (index.mjs and any chunk it loads later), source maps aside */
  bytes: number;
  /** the asset's source maps */
  mapBytes: number;
  metafile: Metafile;
}

/** The bare floor: a handler that only builds a DynamoDB document client and sends one command. */
export const FLOOR_ENTRY = 'bench/floor-handler.ts';

/**
 * The floor's two bundles. `floor` is the yardstick the bundle goals are set against: the bare
 * handler bundled as any handler is, with the AWS SDK's whole default credential chain.
 * `floor-env` is the same handler with keypool's substitutes, its chain cut to the environment
 * (infra/bundle-substitutes/credential-provider-node.ts): what the floor would cost if it took
 * the same cut, so a gain that is only that cut shows as such.
 */
export function bundleFloor(outdir: string, chain: 'sdk' | 'env' = 'sdk'): Promise<Bundle> {
  if (chain === 'env') return bundleEntry('floor-env', FLOOR_ENTRY, outdir);
  const { '@aws-sdk/credential-provider-node': _cut, ...others } = BUNDLE_SUBSTITUTES;
  return bundleEntry('floor', FLOOR_ENTRY, outdir, others);
}

/** Bundles one entry point (relative to the project root) into `outdir/<name>/index.mjs`, as the stack does unless `substitutes` says otherwise. */
export async function bundleEntry(
  name: string,
  entry: string,
  outdir: string,
  substitutes: Readonly<Record<string, string>> = BUNDLE_SUBSTITUTES,
): Promise<Bundle> {
  const file = join(outdir, name, 'index.mjs');
  const result = await build(esbuildOptions(join(PROJECT_ROOT, entry), file, substitutes));
  const metafile = result.metafile ?? { inputs: {}, outputs: {} };
  // Every file esbuild wrote is part of the asset: a chunk loaded on first use counts as much as index.mjs.
  const written = Object.keys(metafile.outputs).map((output) => ({
    map: output.endsWith('.map'),
    // esbuild names outputs relative to its working directory, this process's.
    bytes: statSync(resolve(output)).size,
  }));
  const total = (map: boolean) => written.filter((w) => w.map === map).reduce((sum, w) => sum + w.bytes, 0);
  return { name, file, bytes: total(false), mapBytes: total(true), metafile };
}

/** The environment a deployed function starts with (values are placeholders: init sends nothing). */
export const LAMBDA_LIKE_ENV: Record<string, string> = {
  NODE_OPTIONS: '--enable-source-maps',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDBENCHONLY',
  AWS_SECRET_ACCESS_KEY: 'bench-only',
  KEYPOOL_TABLE: 'keypool-bench',
  POWERTOOLS_SERVICE_NAME: 'keypool',
  POWERTOOLS_LOG_LEVEL: 'WARN',
  POWERTOOLS_METRICS_NAMESPACE: 'keypool',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

const INIT_PROBE = `
const t0 = performance.now();
const c0 = process.cpuUsage();
const mod = await import(process.argv[1]);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(c0);
if (typeof mod.handler !== 'function') { console.error('no handler export'); process.exit(3); }
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000 }));
`;

/**
 * Module-init time of a bundle: the milliseconds from `import()` to a loaded module with a
 * `handler` export, in a fresh `node` process (what a Lambda cold start pays before the
 * first invocation). Rejects if the bundle fails to load.
 */
export async function measureInit(file: string): Promise<number> {
  return (await measureInitCost(file)).wallMs;
}

/**
 * Module init as measureInit, with the CPU time the process spent in it (every thread of it):
 * on a machine others share, the wall time swings with their load, the CPU time far less.
 */
export async function measureInitCost(file: string): Promise<{ wallMs: number; cpuMs: number }> {
  const { ms, cpuMs } = (await runNode(file, INIT_PROBE)) as { ms: number; cpuMs: number };
  return { wallMs: ms, cpuMs };
}

/**
 * Runs `script` (an ES module) in a fresh Node process given the bundle's URL and `args`, in the
 * Lambda's environment changed by `env` (undefined values removed); resolves with its JSON output.
 */
function runNode(
  file: string,
  script: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<unknown> {
  const given: Record<string, string | undefined> = { PATH: process.env.PATH ?? '', ...LAMBDA_LIKE_ENV, ...env };
  const merged = Object.fromEntries(
    Object.entries(given).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, pathToFileURL(file).href, ...args], {
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0)
        return reject(new Error(`${file} did not load or its probe failed (exit ${code}): ${err.slice(0, 500)}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`${file}: unexpected probe output ${out.slice(0, 200)}`));
      }
    });
  });
}

const INVOKE_PROBE = `
const mod = await import(process.argv[1]);
process.stdout.write(JSON.stringify(await mod.handler(JSON.parse(process.argv[2]))));
`;

/**
 * Loads a bundle in a fresh Node process with the Lambda's environment (changed by `env`: an
 * undefined value removes a variable) and calls its handler with `event`.
 */
export function invokeBundle(
  file: string,
  event: unknown,
  env: Record<string, string | undefined> = {},
): Promise<unknown> {
  return runNode(file, INVOKE_PROBE, [JSON.stringify(event)], env);
}

/** The packages a bundle contains, with their bytes in the output (largest first). */
export function packagesIn(bundle: Bundle): { pkg: string; bytes: number }[] {
  const sizes = new Map<string, number>();
  for (const output of Object.values(bundle.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const pkg = match?.[1] ?? '(keypool)';
      sizes.set(pkg, (sizes.get(pkg) ?? 0) + bytesInOutput);
    }
  }
  return [...sizes].map(([pkg, bytes]) => ({ pkg, bytes })).sort((a, b) => b.bytes - a.bytes);
}
