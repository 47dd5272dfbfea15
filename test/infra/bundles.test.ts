/**
 * Every entry point bundled as the stack bundles it (infra/bundling.ts, the options the
 * NodejsFunction construct gets): one self-contained ES module per function that loads on
 * Node with the Lambda's NODE_OPTIONS, with the AWS SDK inside and zod kept small. Sizes are
 * recorded; `npm run bench:bundles` gives the full figures against the floor.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import {
  type Bundle,
  bundleEntry,
  bundleFloor,
  invokeBundle,
  LAMBDA_LIKE_ENV,
  measureInit,
  packagesIn,
} from '../support/bundles.js';
import { fakeKeyArn, FakeKms, kmsJsonProtocol } from '../support/fake-kms.js';
import type { ProbeEvent } from '../support/sealing-probe.js';

/**
 * Regression guards on bytes against floor-env, measured in the same run: the bare floor
 * handler bundled as the stack bundles (its AWS SDK credential chain cut to the environment,
 * as every function's is), so a ratio is what keypool's own code and packages add. The goal
 * (1.25x in bytes and init time, against the floor with the SDK's whole chain) is reported by
 * `npm run bench:bundles`. Every function that reaches the table sends through keypool's own
 * DynamoDB client (lib/adapters/dynamo-wire.ts), not the SDK's, which floor-env carries, so most
 * are below it. Measured against floor-env: a function that never seals or opens, 0.65-0.76x;
 * one that only opens secrets (our opener and our KMS calls, no Encryption SDK code, no SDK KMS
 * client), lease 0.86x, maintain 0.79x; keys, which seals with the ESDK's encrypt and keyrings
 * (an import also re-seals an undecryptable key), 1.17x; the one-off migration, which also reads
 * S3 with the SDK's S3 client and scans a legacy table with its DynamoDB client, 2.51x; proxy
 * mode, which opens keys, keeps answers in S3 by its own few signed calls
 * (lib/adapters/s3-rest.ts) and calls the provider, 0.99x. Each budget is what its bundles
 * measure plus ~0.03x.
 */
const MAX_BYTES_VS_FLOOR = { plain: 0.79, opening: 0.89, sealing: 1.2, migrate: 2.54, proxy: 1.02 } as const;

/** Which budget a bundle is held to. */
function budgetOf(name: string): keyof typeof MAX_BYTES_VS_FLOOR {
  if (name === 'migrate' || name === 'proxy') return name;
  const { secrets } = ENTRY_POINTS[name as keyof typeof ENTRY_POINTS];
  return secrets === 'encrypt' ? 'sealing' : secrets === 'decrypt' ? 'opening' : 'plain';
}
/** The files that reached a bundle's output, not everything esbuild parsed. */
function inputsOf(bundle: Bundle): string[] {
  return Object.values(bundle.metafile.outputs).flatMap((output) =>
    Object.entries(output.inputs)
      .filter(([, use]) => use.bytesInOutput > 0)
      .map(([input]) => input),
  );
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

/** What the AWS SDK's default credential chain loads beyond the environment's link. */
const CREDENTIAL_CHAIN_LINKS = [
  '@aws-sdk/nested-clients',
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-sso',
  '@aws-sdk/credential-provider-process',
  '@aws-sdk/credential-provider-web-identity',
  '@aws-sdk/credential-provider-login',
  '@aws-sdk/credential-provider-http',
  '@smithy/credential-provider-imds',
];

const outdir = mkdtempSync(join(tmpdir(), 'keypool-bundles-test-'));
const bundles = new Map<string, Bundle>();
let floorEnv: Bundle;

beforeAll(async () => {
  floorEnv = await bundleFloor(outdir, 'env');
  for (const name of ENTRY_NAMES) bundles.set(name, await bundleEntry(name, ENTRY_POINTS[name].file, outdir));
  console.log(
    `bundle bytes (floor-env ${floorEnv.bytes}): ` +
      [...bundles.values()].map((b) => `${b.name} ${b.bytes} (${(b.bytes / floorEnv.bytes).toFixed(2)}x)`).join(', '),
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
    // Only the functions that touch the table carry a DynamoDB client, keypool's own: meta never
    // builds one. The SDK's DynamoDB packages only in migrate, which scans a legacy table with them.
    const sdkDynamo = packages.filter((p) => /^@aws-sdk\/(client|lib|util)-dynamodb$/.test(p)).sort();
    if (ENTRY_POINTS[name].table.items.length > 0) {
      expect(inputsOf(bundle as Bundle)).toContain('lib/adapters/dynamo-wire.ts');
      expect(sdkDynamo).toEqual(name === 'migrate' ? ['@aws-sdk/client-dynamodb', '@aws-sdk/util-dynamodb'] : []);
    } else expect(packages.filter((p) => p.startsWith('@aws-sdk/'))).toEqual([]);
  });

  it.each(ENTRY_NAMES)('%s: loads on Node with --enable-source-maps and exports handler', async (name) => {
    // Act: rejects when the module fails to load or has no handler export.
    const ms = await measureInit(bundles.get(name)?.file ?? '');
    // Assess
    expect(ms).toBeGreaterThan(0);
  });

  it('keeps zod to zod/mini: no classic API, no locale (lib/http/validation-messages.ts writes the messages)', () => {
    for (const bundle of bundles.values()) {
      const inputs = inputsOf(bundle).filter((input) => input.includes('node_modules/zod/'));
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

  it(`keeps every bundle within its bytes budget against floor-env (${Object.entries(MAX_BYTES_VS_FLOOR)
    .map(([kind, bound]) => `${kind} ${bound}x`)
    .join(', ')})`, () => {
    for (const bundle of bundles.values())
      expect(bundle.bytes / floorEnv.bytes, bundle.name).toBeLessThanOrEqual(MAX_BYTES_VS_FLOOR[budgetOf(bundle.name)]);
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
      // Nor the credential chain's other links, or the STS, SSO and sign-in clients they build.
      expect(
        packages.filter((p) => CREDENTIAL_CHAIN_LINKS.includes(p)),
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

  it('bundles no Encryption SDK package into the functions that only open secrets (lease, maintain, proxy): they open by hand (lib/adapters/sealed-message.ts)', () => {
    const opening = [...bundles.values()].filter(
      (bundle) => ENTRY_POINTS[bundle.name as keyof typeof ENTRY_POINTS].secrets === 'decrypt',
    );
    expect(opening.map((bundle) => bundle.name).sort()).toEqual(['lease', 'maintain', 'proxy']);
    for (const bundle of opening) {
      // Prepare
      const packages = packagesIn(bundle).map((p) => p.pkg);
      // Assess
      expect(
        packages.filter((p) => p.startsWith('@aws-crypto/') && !SDK_HASHING.has(p)),
        bundle.name,
      ).toEqual([]);
    }
  });

  it("bundles neither the SDK's KMS client nor its S3 client, but for the migration's S3 reads: KMS and the answers bucket are reached by keypool's own signed calls (lib/adapters/aws-http.ts)", () => {
    for (const bundle of bundles.values()) {
      // Prepare
      const clients = packagesIn(bundle)
        .map((p) => p.pkg)
        .filter((p) => p === '@aws-sdk/client-kms' || p === '@aws-sdk/client-s3');
      // Assess
      expect(clients, bundle.name).toEqual(bundle.name === 'migrate' ? ['@aws-sdk/client-s3'] : []);
    }
  });

  it('bundles the sealing library and the KMS calls only into the functions that seal or open secrets', () => {
    for (const bundle of bundles.values()) {
      // Prepare
      const inputs = Object.values(bundle.metafile.outputs).flatMap((o) => Object.keys(o.inputs));
      const sealing = packagesIn(bundle).filter((p) => p.pkg.startsWith('@aws-crypto/') && !SDK_HASHING.has(p.pkg));
      const kmsCalls = inputs.includes('lib/adapters/kms-client.ts');
      // Assess
      if (ENTRY_POINTS[bundle.name as keyof typeof ENTRY_POINTS].secrets === 'none') {
        expect(sealing, bundle.name).toEqual([]);
        expect(kmsCalls, bundle.name).toBe(false);
      } else expect(kmsCalls, bundle.name).toBe(true);
    }
  });
});

describe("a bundle's AWS credentials are the environment's, where Lambda puts the execution role's", () => {
  /** A stand-in DynamoDB endpoint: answers every request with an empty GetItem answer and keeps its Authorization header. */
  async function recordingEndpoint(): Promise<{ url: string; authorizations: string[]; close: () => void }> {
    const authorizations: string[] = [];
    const server = createServer((request, response) => {
      authorizations.push(request.headers.authorization ?? '');
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, authorizations, close: () => server.close() };
  }

  it('signs with the credentials in the environment, and without them fails naming what it looked for', async () => {
    // Prepare
    const endpoint = await recordingEndpoint();
    try {
      // Act
      const answer = await invokeBundle(floorEnv.file, {}, { AWS_ENDPOINT_URL_DYNAMODB: endpoint.url });
      const refused = await invokeBundle(
        floorEnv.file,
        {},
        {
          AWS_ENDPOINT_URL_DYNAMODB: endpoint.url,
          AWS_ACCESS_KEY_ID: undefined,
        },
      ).catch((error: unknown) => error);
      // Assess
      expect(answer).toBeNull();
      expect(endpoint.authorizations).toHaveLength(1);
      expect(endpoint.authorizations[0]).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDBENCHONLY\//);
      expect(String(refused)).toContain('Unable to find environment variable credentials.');
    } finally {
      endpoint.close();
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

  it("seals and opens under a KMS key through KMS's JSON protocol, signed with the environment's credentials as KMS checks them", async () => {
    // Prepare: a fake KMS over loopback that refuses any request whose signature does not verify.
    const probe = await bundleEntry('sealing-probe', 'test/support/sealing-probe.ts', outdir);
    const kms = new FakeKms();
    const targets: string[] = [];
    const server = createServer(
      kmsJsonProtocol(kms, targets, {
        credentials: {
          accessKeyId: LAMBDA_LIKE_ENV.AWS_ACCESS_KEY_ID ?? '',
          secretAccessKey: LAMBDA_LIKE_ENV.AWS_SECRET_ACCESS_KEY ?? '',
        },
        region: 'eu-west-1',
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const env = { AWS_ENDPOINT_URL_KMS: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    const context = { pool: 'bundled', keyId: 'k-2' };
    const event: ProbeEvent = { key: '', keyArn: fakeKeyArn(1), context, sealed: '', secret: 'sk-test-sealed-by-kms' };
    try {
      // Act
      const answer = (await invokeBundle(probe.file, event, env)) as { opened: string };
      const refused = await invokeBundle(probe.file, event, { ...env, AWS_SECRET_ACCESS_KEY: 'another' }).catch(
        (error: unknown) => error,
      );
      // Assess
      expect(answer.opened).toBe('sk-test-sealed-by-kms');
      expect(targets).toEqual(['GenerateDataKey', 'Decrypt']);
      expect(String(refused)).toContain('InvalidSignatureException');
    } finally {
      server.close();
    }
  });
});
