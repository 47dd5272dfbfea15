/**
 * Every entry point bundled as the stack bundles it (infra/bundling.ts, the options the
 * NodejsFunction construct gets): one self-contained ES module per function that loads on
 * Node with the Lambda's NODE_OPTIONS, with the AWS SDK inside and zod kept small. Sizes are
 * recorded; `npm run bench:bundles` gives the full figures against the floor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { cdkBundling, ESBUILD_TARGET, esbuildOptions } from '../../infra/bundling.js';
import { ENTRY_NAMES, ENTRY_POINTS } from '../../infra/entry-points.js';
import { type Bundle, bundleEntry, FLOOR_ENTRY, measureInit, packagesIn } from '../support/bundles.js';

/** A regression guard, not the goal (1.2x, reported by the bench): catches a dependency that balloons a bundle. */
const MAX_BYTES_VS_FLOOR = 1.5;
/** @aws-crypto packages the AWS SDK itself uses for checksums: not the Encryption SDK. */
const SDK_HASHING = new Set([
  '@aws-crypto/sha256-js',
  '@aws-crypto/crc32',
  '@aws-crypto/crc32c',
  '@aws-crypto/util',
  '@aws-crypto/supports-web-crypto',
  '@aws-crypto/sha1-browser',
  '@aws-crypto/sha256-browser',
]);

const outdir = mkdtempSync(join(tmpdir(), 'keypool-bundles-test-'));
const bundles = new Map<string, Bundle>();
let floor: Bundle;

beforeAll(async () => {
  floor = await bundleEntry('floor', FLOOR_ENTRY, outdir);
  for (const name of ENTRY_NAMES) bundles.set(name, await bundleEntry(name, ENTRY_POINTS[name].file, outdir));
  console.log(
    `bundle bytes (floor ${floor.bytes}): ` +
      [...bundles.values()].map((b) => `${b.name} ${b.bytes} (${(b.bytes / floor.bytes).toFixed(2)}x)`).join(', '),
  );
});

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** Module specifiers a bundle leaves to the runtime (esbuild's record of external imports). */
function runtimeImports(bundle: Bundle): string[] {
  return [
    ...new Set(
      Object.values(bundle.metafile.outputs).flatMap((output) =>
        output.imports.filter((i) => i.external).map((i) => i.path),
      ),
    ),
  ];
}

const isBuiltin = (specifier: string) =>
  specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0] ?? '');

describe('the stack bundles every entry point the same way', () => {
  it('gives NodejsFunction the options the bundles here are built with: ESM, minified, source maps, SDK bundled', () => {
    // Prepare
    const cdk = cdkBundling();
    const direct = esbuildOptions('entry.ts', 'out/index.mjs');
    // Assess
    expect(cdk).toMatchObject({
      format: OutputFormat.ESM,
      minify: true,
      sourceMap: true,
      bundleAwsSDK: true,
      externalModules: [],
      target: ESBUILD_TARGET,
    });
    expect(direct).toMatchObject({
      format: 'esm',
      minify: true,
      sourcemap: true,
      external: [],
      target: ESBUILD_TARGET,
      bundle: true,
      platform: 'node',
    });
    expect(direct.banner?.js).toBe(cdk.banner);
    expect(direct.mainFields).toEqual(cdk.mainFields);
  });

  it.each(ENTRY_NAMES)('%s: one self-contained ES module that imports nothing but Node built-ins', (name) => {
    // Prepare
    const bundle = bundles.get(name);
    // Assess
    expect(bundle?.bytes).toBeGreaterThan(0);
    const imports = runtimeImports(bundle as Bundle);
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((s) => !isBuiltin(s))).toEqual([]);
    const packages = packagesIn(bundle as Bundle).map((p) => p.pkg);
    // Only the functions that touch the table carry a DynamoDB client: meta never builds one.
    if (ENTRY_POINTS[name].table.items.length > 0) expect(packages).toContain('@aws-sdk/client-dynamodb');
    else expect(packages.filter((p) => p.startsWith('@aws-sdk/'))).toEqual([]);
  });

  it.each(ENTRY_NAMES)('%s: loads on Node with --enable-source-maps and exports handler', async (name) => {
    // Act: rejects when the module fails to load or has no handler export.
    const ms = await measureInit(bundles.get(name)?.file ?? '');
    // Assess
    expect(ms).toBeGreaterThan(0);
  });

  it('keeps zod to zod/mini: no classic API, no locale (lib/http/validation-messages.ts writes the messages)', () => {
    for (const bundle of bundles.values()) {
      // What reached the output, not everything esbuild parsed.
      const inputs = Object.values(bundle.metafile.outputs)
        .flatMap((output) =>
          Object.entries(output.inputs)
            .filter(([, use]) => use.bytesInOutput > 0)
            .map(([input]) => input),
        )
        .filter((input) => input.includes('node_modules/zod/'));
      expect(inputs.length, bundle.name).toBeGreaterThan(0);
      expect(
        inputs.filter((i) => i.includes('/v4/classic/')),
        bundle.name,
      ).toEqual([]);
      expect(
        inputs.filter((i) => i.includes('/v4/locales/')),
        bundle.name,
      ).toEqual([]);
    }
  });

  it(`keeps every DynamoDB-only bundle under ${MAX_BYTES_VS_FLOOR}x the floor (a handler that only builds a DynamoDB client and sends one command)`, () => {
    for (const bundle of bundles.values()) {
      // The functions that seal or open carry the Encryption SDK and the KMS client (~+290 KB:
      // measured 2.06-2.09x); the one-off migration also reads S3 (+100 KB) and runs by hand,
      // where a cold start does not matter. Each has its own bound: the floor plus what it adds.
      const sealing = ENTRY_POINTS[bundle.name as keyof typeof ENTRY_POINTS].secrets !== 'none';
      const bound = MAX_BYTES_VS_FLOOR + (sealing ? 0.7 : 0) + (bundle.name === 'migrate' ? 0.5 : 0);
      expect(bundle.bytes / floor.bytes, bundle.name).toBeLessThanOrEqual(bound);
    }
  });

  it('bundles the sealing library and the KMS client only into the functions that seal or open secrets', () => {
    for (const bundle of bundles.values()) {
      // Prepare
      const packages = packagesIn(bundle).map((p) => p.pkg);
      const sealingPackages = packages.filter(
        (p) => p === '@aws-sdk/client-kms' || (p.startsWith('@aws-crypto/') && !SDK_HASHING.has(p)),
      );
      // Assess
      if (ENTRY_POINTS[bundle.name as keyof typeof ENTRY_POINTS].secrets === 'none')
        expect(sealingPackages, bundle.name).toEqual([]);
      else expect(sealingPackages, bundle.name).toContain('@aws-sdk/client-kms');
    }
  });
});
