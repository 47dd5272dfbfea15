/**
 * Every entry point bundled as the stack bundles it (infra/bundling.ts, the options the
 * NodejsFunction construct gets): one self-contained ES module per function that loads on
 * Node with the Lambda's NODE_OPTIONS, with the AWS SDK inside and zod kept small. Sizes are
 * recorded; `npm run bench:bundles` gives the full figures against the floor.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDecrypt } from '@aws-crypto/decrypt-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { BUNDLE_SUBSTITUTES, cdkBundling, ESBUILD_TARGET, esbuildOptions } from '../../infra/bundling.js';
import { ENTRY_NAMES, ENTRY_POINTS } from '../../infra/entry-points.js';
import { createEsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { LOCAL_PROVIDER, localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { type Bundle, bundleEntry, FLOOR_ENTRY, invokeBundle, measureInit, packagesIn } from '../support/bundles.js';
import type { ProbeEvent } from '../support/sealing-probe.js';

/**
 * Regression guards on bytes against the floor, measured in the same run (the goal, 1.25x in
 * bytes and init time, is reported by `npm run bench:bundles`): a function that never seals or
 * opens (measured 1.20-1.26x); one that does (the Encryption SDK's building blocks and the KMS
 * client, measured 1.51-1.60x: keys the most, since an import also re-seals an undecryptable
 * key); the one-off migration, which also reads S3 (1.94x); proxy mode, which opens keys, keeps
 * answers in S3 and calls the provider (2.04x). Each budget is what its bundles measure plus
 * ~0.03x (plain, at 1.27x, only 0.01x).
 */
const MAX_BYTES_VS_FLOOR = { plain: 1.27, sealing: 1.63, migrate: 1.97, proxy: 2.07 } as const;

/** Which budget a bundle is held to. */
function budgetOf(name: string): keyof typeof MAX_BYTES_VS_FLOOR {
  if (name === 'migrate' || name === 'proxy') return name;
  return ENTRY_POINTS[name as keyof typeof ENTRY_POINTS].secrets !== 'none' ? 'sealing' : 'plain';
}
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
    expect(direct.alias).toEqual(BUNDLE_SUBSTITUTES);
    expect(cdk.esbuildArgs).toEqual({
      '--alias': Object.entries(BUNDLE_SUBSTITUTES).map(([pkg, path]) => `${pkg}=${path}`),
    });
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

  it(`keeps every bundle within its bytes budget against the floor (${Object.entries(MAX_BYTES_VS_FLOOR)
    .map(([kind, bound]) => `${kind} ${bound}x`)
    .join(', ')})`, () => {
    for (const bundle of bundles.values())
      expect(bundle.bytes / floor.bytes, bundle.name).toBeLessThanOrEqual(MAX_BYTES_VS_FLOOR[budgetOf(bundle.name)]);
  });

  it("bundles none of what the substitutes stand for, and the ESDK's encrypt side only where secrets are sealed", () => {
    for (const bundle of bundles.values()) {
      // Prepare
      const packages = packagesIn(bundle).map((p) => p.pkg);
      // Assess
      expect(
        packages.filter((p) => Object.hasOwn(BUNDLE_SUBSTITUTES, p)),
        bundle.name,
      ).toEqual([]);
      if (ENTRY_POINTS[bundle.name as keyof typeof ENTRY_POINTS].secrets === 'encrypt')
        expect(packages, bundle.name).toContain('@aws-crypto/encrypt-node');
      else expect(packages, bundle.name).not.toContain('@aws-crypto/encrypt-node');
    }
  });

  it("keeps the HTTP edge's request schemas out of the scheduled maintain function, which takes no request", () => {
    // Prepare: lib/domain/primitives.ts holds the request schemas, built at import
    const inputs = Object.values((bundles.get('maintain') as Bundle).metafile.outputs).flatMap((o) =>
      Object.keys(o.inputs),
    );
    // Assess
    expect(inputs.filter((input) => input === 'lib/domain/primitives.ts' || input.startsWith('lib/http/'))).toEqual([]);
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

describe('what a bundle seals and opens is what the Encryption SDK seals and opens', () => {
  it('a bundled sealer and opener open a secret sealed outside the bundle, and the ESDK opens what the bundle seals', async () => {
    // Prepare: the substitutes serve only inside a bundle; the sealer outside runs bn.js and readable-stream.
    const probe = await bundleEntry('sealing-probe', 'test/support/sealing-probe.ts', outdir);
    const key = randomBytes(32);
    const context = { pool: 'bundled', keyId: 'k-1' };
    const outside = createEsdkSealer({ current: { kind: 'local', key } });
    const event: ProbeEvent = {
      key: key.toString('hex'),
      context,
      sealed: await outside.seal('sk-test-sealed-outside', context),
      secret: 'sk-test-sealed-in-the-bundle',
    };
    // Act
    const answer = (await invokeBundle(probe.file, event)) as {
      opened: string;
      openedByOpener: string;
      sealed: string;
    };
    // Assess
    expect(answer.opened).toBe('sk-test-sealed-outside');
    expect(answer.openedByOpener).toBe('sk-test-sealed-outside');
    expect(await outside.open(answer.sealed, context)).toBe('sk-test-sealed-in-the-bundle');
    const keyring = new RawAesKeyringNode({
      keyNamespace: LOCAL_PROVIDER,
      keyName: localKeyName(key),
      unencryptedMasterKey: new Uint8Array(key),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
    const { decrypt } = buildDecrypt();
    const { plaintext, messageHeader } = await decrypt(keyring, Buffer.from(answer.sealed, 'base64'));
    expect(plaintext.toString('utf8')).toBe('sk-test-sealed-in-the-bundle');
    expect(messageHeader.encryptionContext).toEqual(context);
  });
});
