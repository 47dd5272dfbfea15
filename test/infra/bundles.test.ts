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
  return [...new Set(Object.values(bundle.metafile.outputs).flatMap((output) => output.imports.filter((i) => i.external).map((i) => i.path)))];
}

const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0] ?? '');

describe('the stack bundles every entry point the same way', () => {
  it('gives NodejsFunction the options the bundles here are built with: ESM, minified, source maps, SDK bundled', () => {
    // Prepare
    const cdk = cdkBundling();
    const direct = esbuildOptions('entry.ts', 'out/index.mjs');
    // Assess
    expect(cdk).toMatchObject({ format: OutputFormat.ESM, minify: true, sourceMap: true, bundleAwsSDK: true, externalModules: [], target: ESBUILD_TARGET });
    expect(direct).toMatchObject({ format: 'esm', minify: true, sourcemap: true, external: [], target: ESBUILD_TARGET, bundle: true, platform: 'node' });
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
    if (ENTRY_POINTS[name].table.length > 0) expect(packages).toContain('@aws-sdk/client-dynamodb');
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
        .flatMap((output) => Object.entries(output.inputs).filter(([, use]) => use.bytesInOutput > 0).map(([input]) => input))
        .filter((input) => input.includes('node_modules/zod/'));
      expect(inputs.length, bundle.name).toBeGreaterThan(0);
      expect(inputs.filter((i) => i.includes('/v4/classic/')), bundle.name).toEqual([]);
      expect(inputs.filter((i) => i.includes('/v4/locales/')), bundle.name).toEqual([]);
    }
  });

  it(`keeps every DynamoDB-only bundle under ${MAX_BYTES_VS_FLOOR}x the floor (a handler that only builds a DynamoDB client and sends one command)`, () => {
    for (const bundle of bundles.values()) {
      // The one-off migration also reads S3, so it carries the S3 client on top of the floor;
      // it runs by hand, where a cold start does not matter. Its own bound is the floor plus that client.
      const bound = bundle.name === 'migrate' ? MAX_BYTES_VS_FLOOR + 0.5 : MAX_BYTES_VS_FLOOR;
      expect(bundle.bytes / floor.bytes, bundle.name).toBeLessThanOrEqual(bound);
    }
  });
});
