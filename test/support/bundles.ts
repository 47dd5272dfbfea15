/**
 * Bundles entry points exactly as the CDK stack does (infra/bundling.ts) and measures them:
 * bundle bytes, and module-init time in a fresh Node process with the Lambda's NODE_OPTIONS.
 * Shared by the bundling test and `npm run bench:bundles`.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { esbuildOptions, PROJECT_ROOT } from '../../infra/bundling.js';

export interface Bundle {
  name: string;
  /** index.mjs, the file Lambda loads */
  file: string;
  bytes: number;
  mapBytes: number;
  metafile: Metafile;
}

/** The bare floor: a handler that only builds a DynamoDB document client and sends one command. */
export const FLOOR_ENTRY = 'bench/floor-handler.ts';

/** Bundles one entry point (relative to the project root) into `outdir/<name>/index.mjs`. */
export async function bundleEntry(name: string, entry: string, outdir: string): Promise<Bundle> {
  const file = join(outdir, name, 'index.mjs');
  const result = await build(esbuildOptions(join(PROJECT_ROOT, entry), file));
  return {
    name,
    file,
    bytes: statSync(file).size,
    mapBytes: statSync(`${file}.map`).size,
    metafile: result.metafile ?? { inputs: {}, outputs: {} },
  };
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
const mod = await import(process.argv[1]);
const ms = performance.now() - t0;
if (typeof mod.handler !== 'function') { console.error('no handler export'); process.exit(3); }
process.stdout.write(JSON.stringify({ ms }));
`;

/**
 * Module-init time of a bundle: the milliseconds from `import()` to a loaded module with a
 * `handler` export, in a fresh `node` process (what a Lambda cold start pays before the
 * first invocation). Rejects if the bundle fails to load.
 */
export function measureInit(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', INIT_PROBE, pathToFileURL(file).href], {
      env: { PATH: process.env.PATH ?? '', ...LAMBDA_LIKE_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${file} did not load (exit ${code}): ${err.slice(0, 500)}`));
      try {
        resolve((JSON.parse(out) as { ms: number }).ms);
      } catch {
        reject(new Error(`${file}: unexpected probe output ${out.slice(0, 200)}`));
      }
    });
  });
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
