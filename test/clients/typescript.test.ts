/**
 * The TypeScript client (clients/typescript) as a user gets it: `npm pack` of the package,
 * installed into a fresh temporary project (not the source folder, not this repository's
 * node_modules), against `npm start` over this run's DynamoDB Local. The tests below load the
 * installed build; the example program runs there with plain node. Everything stays on loopback.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSignature } from '../../clients/typescript/test/support/sigv4.js';
import { NO_AWS_CREDENTIALS, type Seen, withEnv } from '../../clients/typescript/test/support/recorder.js';
import { fakeKey, uniqueName } from '../support/dynamo.js';
import { FAKE_PNG, type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { type RunningStack, startLocalStack } from '../support/local-stack.js';
import { poolApi } from '../support/pool-api.js';

type Client = typeof import('@keypool/client');

const PACKAGE = fileURLToPath(new URL('../../clients/typescript', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLE = join(PACKAGE, 'examples', 'lease-and-count.js');
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

const exec = promisify(execFile);

/**
 * This process's environment without npm's own variables (the run's workspace, prefix, ...);
 * with `noCredentials`, also without AWS credentials, so the default chain finds none.
 */
function plainEnv(extra: Record<string, string> = {}, noCredentials = false): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)),
  );
  for (const [name, value] of Object.entries(noCredentials ? NO_AWS_CREDENTIALS : {})) {
    if (value === undefined) Reflect.deleteProperty(env, name);
    else env[name] = value;
  }
  return { ...env, ...extra };
}

interface Packed {
  filename: string;
  size: number;
  files: { path: string }[];
}

/** `npm pack --json` of the package into `into`: what a user installs. */
async function pack(into: string): Promise<Packed> {
  const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', into], {
    cwd: PACKAGE,
    env: plainEnv(),
    maxBuffer: 1 << 24,
  });
  const [packed] = JSON.parse(stdout) as Packed[];
  if (!packed) throw new Error(`npm pack printed no package:\n${stdout}`);
  return packed;
}

/** A loopback tap in front of the stack: forwards every request as it came and keeps it for the verifier. */
async function startTap(target: string): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const arrived = {
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(arrived);
      const headers = Object.entries(request.headers).filter(
        (entry): entry is [string, string] =>
          typeof entry[1] === 'string' && !['host', 'connection', 'content-length'].includes(entry[0]),
      );
      void fetch(`${target}${arrived.path}`, {
        method: arrived.method,
        headers,
        ...(arrived.body.length ? { body: arrived.body } : {}),
      }).then(async (answer) => {
        response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        response.end(Buffer.from(await answer.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    seen,
    close: () => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))),
  };
}

describe('the TypeScript client, installed from its npm pack tarball', () => {
  let work: string;
  let project: string;
  let packed: Packed;
  let client: Client;
  let stack: RunningStack | undefined;
  let api: ReturnType<typeof poolApi>;
  /** the provider the stack's proxy route calls */
  let proxied: FakeProvider | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'keypool-typescript-'));
    project = join(work, 'app');
    packed = await pack(work);
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // The package's own dependencies come from the registry (the npm cache first), as for any user.
    await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed.filename)], {
      cwd: project,
      env: plainEnv(),
    });
    client = (await import(
      pathToFileURL(join(project, 'node_modules', '@keypool', 'client', 'dist', 'index.js')).href
    )) as Client;
    proxied = await startFakeProvider();
    stack = await startLocalStack(60_000, {
      STABILITY_API_BASE_URL: proxied.url,
      KEYPOOL_DATA_DIR: join(work, 'data'),
    });
    api = poolApi(stack.url);
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    await proxied?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A new pool with `keys` fresh fake keys under `settings`; the secrets. */
  async function newPool(
    keys: number,
    settings: Record<string, unknown> = {},
  ): Promise<{ pool: string; secrets: string[] }> {
    const pool = uniqueName('ts');
    await api.putPool(pool, settings);
    return { pool, secrets: (await api.importKeys(pool, keys)).secrets };
  }

  it('packs the build only, well under 50 kB, with its types first in the exports map', () => {
    // Prepare
    const manifest = JSON.parse(
      readFileSync(join(project, 'node_modules', '@keypool', 'client', 'package.json'), 'utf8'),
    ) as { exports: Record<string, Record<string, string>>; dependencies: Record<string, string> };
    // Assess
    expect(packed.size).toBeLessThan(50_000);
    expect(packed.files.map((file) => file.path).filter((path) => !/^dist\/[a-z-]+\.(js|d\.ts)$/.test(path))).toEqual([
      'README.md',
      'package.json',
    ]);
    expect(Object.keys(manifest.exports['.'] ?? {})).toEqual(['types', 'import']);
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      '@aws-crypto/sha256-js',
      '@aws-sdk/credential-provider-node',
      '@smithy/signature-v4',
    ]);
  });

  it('runs the example program in the fresh project: it leases, completes and prints the count', async () => {
    // Prepare
    const { pool } = await newPool(1);
    const [key] = await api.listAll(pool);
    copyFileSync(EXAMPLE, join(project, 'lease-and-count.js'));
    // Act
    const example = await exec(process.execPath, ['lease-and-count.js'], {
      cwd: project,
      env: plainEnv({ KEYPOOL_URL: stack?.url ?? '', KEYPOOL_POOL: pool }, true),
    });
    // Assess
    const keyId = key?.keyId ?? '';
    expect(example.stdout).toBe(
      `leased ${keyId} (used 0 times before)\ncompleted as success: ${keyId} has now been used 1 times\n`,
    );
    expect((await api.listAll(pool)).map((k) => k.usageCount)).toEqual([1]);
    expect(readFileSync(EXAMPLE, 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(20);
  }, 60_000);

  it("type-checks the example against the package's declarations; a wrong field is an error", async () => {
    // Prepare: the example, and a probe that misspells a lease's field
    copyFileSync(EXAMPLE, join(project, 'lease-and-count.js'));
    writeFileSync(
      join(project, 'probe.js'),
      "// @ts-check\nimport { Keypool } from '@keypool/client';\nconst lease = await new Keypool({ url: 'http://127.0.0.1:1' }).pool('p').lease();\nconsole.log(lease.keyid);\n",
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023'],
          strict: true,
          allowJs: true,
          checkJs: true,
          noEmit: true,
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['lease-and-count.js', 'probe.js'],
      }),
    );
    // Act
    const checked = await exec(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project],
      {
        cwd: project,
      },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (error: unknown) => error as { code: number; stdout: string },
    );
    // Assess: one error, in the probe, naming the field the declarations have
    expect(checked.code).toBe(2);
    expect(checked.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^probe\.js\(4,19\): error TS2551: Property 'keyid' does not exist .* Did you mean 'keyId'\?$/,
      ),
    ]);
  }, 120_000);

  it('twenty concurrent callers on five keys with cap 3: exactly twenty uses counted, none past the cap', async () => {
    // Prepare
    const { pool } = await newPool(5, { maxUses: 3 });
    // Act
    const { signs, granted, after } = await withEnv(NO_AWS_CREDENTIALS, async () => {
      const keypool = new client.Keypool({ url: stack?.url ?? '' });
      const leases = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const lease = await keypool.pool(pool).lease();
          await lease.complete('success');
          return lease;
        }),
      );
      const dry = await keypool
        .pool(pool)
        .lease()
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      return { signs: await keypool.signs(), granted: leases, after: dry };
    });
    // Assess
    const counts = (await api.listAll(pool)).map((key) => key.usageCount);
    const perKey = new Map<string, number>();
    for (const lease of granted) perKey.set(lease.keyId, (perKey.get(lease.keyId) ?? 0) + 1);
    expect(signs).toBe(false);
    expect(granted.every((lease) => lease.usageCount <= 3 && lease.outcome === 'success')).toBe(true);
    expect([...perKey.values()]).toEqual([4, 4, 4, 4, 4]);
    expect(counts).toEqual([4, 4, 4, 4, 4]);
    expect(after).toBeInstanceOf(client.NoUsableKey);
  }, 60_000);

  it("pool.proxy through the stack's proxy route: the provider's image back, one use counted, the key never in the caller's hands", async () => {
    // Prepare
    const { pool, secrets } = await newPool(1);
    proxied?.setKey(secrets[0] ?? '');
    const form = new FormData();
    form.set('prompt', 'a lighthouse at dusk');
    // Act
    const response = await withEnv(NO_AWS_CREDENTIALS, () =>
      new client.Keypool({ url: stack?.url ?? '' })
        .pool(pool)
        .proxy('v2beta/stable-image/generate/core', { body: form, headers: { accept: 'image/*' } }),
    );
    const image = Buffer.from(await response.arrayBuffer());
    // Assess
    expect(response.status).toBe(200);
    expect(image.equals(FAKE_PNG)).toBe(true);
    expect(response.headers.get('x-keypool-outcome')).toBe('success');
    expect(proxied?.requests.at(-1)?.headers.authorization).toBe(`Bearer ${secrets[0] ?? ''}`);
    expect((await api.listAll(pool)).map((key) => key.usageCount)).toEqual([1]);
  }, 60_000);

  it('a key rested by Retry-After: NoUsableKey says when it comes back, and a bounded wait gets it then', async () => {
    // Prepare
    const { pool } = await newPool(1);
    await withEnv(NO_AWS_CREDENTIALS, async () => {
      const keys = new client.Keypool({ url: stack?.url ?? '' }).pool(pool);
      const first = await keys.lease();
      await first.complete('rate_limited', { retryAfterSeconds: '2' });
      // Act
      const dry = await keys.lease().then(
        () => undefined,
        (error: unknown) => error,
      );
      const tooShort = await keys.lease({ maxWaitSeconds: 0.5 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      const waited = await keys.lease({ maxWaitSeconds: 5 });
      // Assess
      expect(dry).toBeInstanceOf(client.NoUsableKey);
      expect((dry as InstanceType<Client['NoUsableKey']>).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect((dry as InstanceType<Client['NoUsableKey']>).retryAfterSeconds).toBeLessThanOrEqual(2);
      expect(tooShort).toBeInstanceOf(client.NoUsableKey);
      expect(waited.keyId).toBe(first.keyId);
      expect(waited.usageCount).toBe(0);
      await waited.complete();
    });
    expect((await api.listAll(pool)).map((key) => key.usageCount)).toEqual([1]);
  }, 60_000);

  it("withKey honours the provider's Retry-After: the 429 gives the use back, the key rests, the wait gets it again", async () => {
    // Prepare
    let provider: FakeProvider | undefined;
    try {
      provider = await startFakeProvider();
      const { pool, secrets } = await newPool(1);
      const secret = secrets[0] ?? fakeKey();
      provider.setKey(secret, { generateStatus: 429, retryAfter: '1' });
      const sleeps: number[] = [];
      const sleep = (ms: number): Promise<void> => (sleeps.push(ms), new Promise((done) => setTimeout(done, ms)));
      const generate = async (apiKey: string, attempt: { signal: AbortSignal }): Promise<Response> => {
        const form = new FormData();
        form.set('prompt', 'a lighthouse at dusk');
        const answer = await fetch(`${provider?.url ?? ''}/v2beta/stable-image/generate/core`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, accept: 'image/*' },
          body: form,
          signal: attempt.signal,
        });
        // The provider's limit has passed for the next attempt.
        provider?.setKey(secret, { generateStatus: undefined });
        return answer;
      };
      // Act
      const response = await withEnv(NO_AWS_CREDENTIALS, () =>
        new client.Keypool({ url: stack?.url ?? '' })
          .pool(pool)
          .withKey(generate, { maxWaitSeconds: 5, sleep, backoffMs: 1 }),
      );
      // Assess
      expect(response.status).toBe(200);
      expect(provider.requestsTo('/v2beta/stable-image/generate/core').map((request) => request.status)).toEqual([
        429, 200,
      ]);
      expect(Math.max(...sleeps)).toBeGreaterThanOrEqual(1000);
      expect((await api.listAll(pool)).map((key) => key.usageCount)).toEqual([1]);
    } finally {
      await provider?.close();
    }
  }, 60_000);

  it('signs every request with the given credentials: the stack answers through a tap, and the verifier re-derives each signature', async () => {
    // Prepare
    const { pool } = await newPool(1);
    const tap = await startTap(stack?.url ?? '');
    try {
      const keys = new client.Keypool({ url: tap.url, region: 'eu-west-1', credentials: CREDENTIALS }).pool(pool);
      // Act
      const lease = await keys.lease({ maxUses: 2 });
      const completion = await lease.complete('success');
      // Assess
      expect(completion?.usageCount).toBe(1);
      expect(tap.seen.map((request) => `${request.method} ${request.path}`)).toEqual([
        `POST /pools/${pool}/leases`,
        `POST /pools/${pool}/leases/${lease.leaseId}/complete`,
      ]);
      for (const request of tap.seen) {
        const check = checkSignature(request, CREDENTIALS.secretAccessKey);
        expect(check).toMatchObject({ accessKeyId: 'AKIDEXAMPLE', region: 'eu-west-1', service: 'execute-api' });
        expect(check.signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'content-type']));
        expect(check.signature).toMatch(/^[0-9a-f]{64}$/);
        expect(check.signature).toBe(check.expected);
        expect(checkSignature(request, 'another-secret').expected).not.toBe(check.signature);
      }
      expect(checkSignature(tap.seen[0] as Seen, CREDENTIALS.secretAccessKey).signedHeaders).toContain(
        'idempotency-key',
      );
    } finally {
      await tap.close();
    }
  }, 60_000);
});
