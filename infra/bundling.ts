/**
 * How every Lambda entry point is bundled, in one place: the CDK construct passes these
 * options to NodejsFunction (local esbuild, no Docker), and the bundling test and
 * `npm run bench:bundles` hand the same options to esbuild directly.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';
import { type BundlingOptions, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Node.js 24 is the Lambda runtime; esbuild targets the same language level. */
export const ESBUILD_TARGET = 'node24';

/**
 * Some dependencies are CommonJS and `require` Node built-ins at run time; in an ES module
 * bundle that needs a real `require`, which this banner provides.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __kpRequire } from 'node:module'; const require = __kpRequire(import.meta.url);";

/** Prefer packages' ES module builds: they tree-shake, CommonJS builds do not. */
export const MAIN_FIELDS = ['module', 'main'];

/**
 * Packages the bundles load in place of what they would otherwise carry, each a few lines of
 * ours (infra/bundle-substitutes/ says why each is safe). bn.js and asn1.js serve the
 * Encryption SDK's ECDSA signature support, which keypool refuses (only serialize's frame
 * lengths use bn.js on the sealing path, and the substitute gives the same bytes);
 * readable-stream is Node's own streams for older Node.js: together ~150 KB of every function
 * that seals (the functions that only open carry no ESDK code: lib/adapters/sealed-message.ts).
 * The AWS SDK's default credential chain is cut to the environment, where Lambda puts the
 * execution role's credentials: ~130 KB of every function that calls AWS.
 */
export const BUNDLE_SUBSTITUTES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries({
    'bn.js': 'bn',
    'asn1.js': 'asn1',
    'readable-stream': 'readable-stream',
    '@aws-sdk/credential-provider-node': 'credential-provider-node',
  }).map(([pkg, file]) => [pkg, join(PROJECT_ROOT, 'infra', 'bundle-substitutes', `${file}.ts`)]),
);

/** The NodejsFunction bundling options: ESM, minified, source maps, the AWS SDK bundled with the code. */
export function cdkBundling(): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: ESBUILD_TARGET,
    minify: true,
    sourceMap: true,
    // The map only needs positions (stack traces); leaving sources out keeps the asset small.
    sourcesContent: false,
    mainFields: MAIN_FIELDS,
    banner: ESM_REQUIRE_BANNER,
    // Our pinned SDK version, not whatever the runtime ships: bundled, never external.
    bundleAwsSDK: true,
    externalModules: [],
    esbuildArgs: { '--alias': Object.entries(BUNDLE_SUBSTITUTES).map(([pkg, path]) => `${pkg}=${path}`) },
  };
}

/**
 * The same bundle as cdkBundling(), for esbuild's API: one entry point to `outfile` (index.mjs).
 * `substitutes` is for the benchmark's floor only, which keeps the SDK's own credential chain.
 */
export function esbuildOptions(
  entry: string,
  outfile: string,
  substitutes: Readonly<Record<string, string>> = BUNDLE_SUBSTITUTES,
): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: MAIN_FIELDS,
    banner: { js: ESM_REQUIRE_BANNER },
    external: [],
    alias: { ...substitutes },
    metafile: true,
    logLevel: 'silent',
  };
}
