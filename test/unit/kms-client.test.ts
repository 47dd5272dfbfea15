/**
 * The sealer's default KMS client (lib/adapters/kms-client.ts: three operations over KMS's
 * JSON protocol, signed by the SDK's signer) speaks KMS's wire protocol as the SDK's KMSClient
 * does: a sealer given no client of its own seals and opens through it against a KMS stand-in
 * over loopback HTTP (the fake KMS's rules behind KMS's JSON protocol), a KMS error reaches the
 * sealer by its name, and retries, endpoints and signatures are the SDK's.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsClient, kmsEndpoint, KmsServiceError, NodeSha256 } from '../../lib/adapters/kms-client.js';
import { createEsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { SealingUnavailable } from '../../lib/domain/errors.js';
import { fakeKeyArn, FakeKms } from '../support/fake-kms.js';

const BLOBS = ['CiphertextBlob', 'Plaintext'];
const OPERATIONS = { GenerateDataKey: 'generateDataKey', Encrypt: 'encrypt', Decrypt: 'decrypt' } as const;

/** KMS's JSON protocol (awsJson1_1) in front of `kms`: blobs travel as base64, errors as `__type`. */
function kmsOverHttp(kms: FakeKms, targets: string[]): Server {
  return createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target']).replace('TrentService.', '');
      targets.push(target);
      const input = JSON.parse(body) as Record<string, unknown>;
      for (const blob of BLOBS) if (typeof input[blob] === 'string') input[blob] = Buffer.from(input[blob], 'base64');
      const method = OPERATIONS[target as keyof typeof OPERATIONS];
      const call = kms[method].bind(kms) as (input: unknown) => Promise<Record<string, unknown>>;
      call(input).then(
        (output) => {
          const answer = Object.fromEntries(
            Object.entries(output).map(([k, v]) => [
              k,
              v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
            ]),
          );
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(answer));
        },
        (error: unknown) =>
          res
            .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
            .end(JSON.stringify({ __type: (error as Error).name, message: (error as Error).message })),
      );
    });
  });
}

const kms = new FakeKms();
const targets: string[] = [];
const server = kmsOverHttp(kms, targets);
const ENV = ['AWS_ENDPOINT_URL_KMS', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;
const saved = { ...process.env };

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.AWS_ENDPOINT_URL_KMS = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID = 'AKIDTESTONLY';
  process.env.AWS_SECRET_ACCESS_KEY = 'test-only';
});

afterAll(async () => {
  for (const name of ENV) Reflect.deleteProperty(process.env, name);
  Object.assign(process.env, Object.fromEntries(ENV.flatMap((name) => (saved[name] ? [[name, saved[name]]] : []))));
  await new Promise((resolve) => server.close(resolve));
});

describe('the default KMS client', () => {
  it('seals with GenerateDataKey and opens with Decrypt over KMS JSON protocol', async () => {
    // Prepare: no `kms` option, so the sealer builds its own client for the key's region.
    const context = { pool: 'kms', keyId: 'k-1' };
    const sealer = createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) } });
    const fresh = createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, cache: false });
    // Act
    const sealed = await sealer.seal('sk-test-over-http', context);
    const opened = await fresh.open(sealed, context);
    // Assess
    expect(opened).toBe('sk-test-over-http');
    expect(targets).toEqual(['GenerateDataKey', 'Decrypt']);
    expect(kms.contexts.map((c) => c.context)).toEqual([context, context]);
  });

  it("passes KMS's error on by its name", async () => {
    // Prepare
    const sealer = createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) } });
    kms.failNext('KMSInternalException');
    // Act
    const failure = await sealer.seal('sk-test-over-http', { pool: 'kms', keyId: 'k-2' }).catch((e: unknown) => e);
    // Assess
    expect(failure).toBeInstanceOf(SealingUnavailable);
    expect((failure as SealingUnavailable).causes).toEqual(['KMSInternalException']);
  });
});

/** A server that answers each request with the next scripted answer and records what it got. */
function scripted(answers: { status: number; body: unknown }[]) {
  const seen: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      const answer = answers.shift() ?? { status: 500, body: { __type: 'NoMoreAnswers' } };
      res
        .writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'req-1' })
        .end(JSON.stringify(answer.body));
    });
  });
  return { server, seen };
}

async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const DECRYPT = {
  KeyId: fakeKeyArn(1),
  CiphertextBlob: new Uint8Array([1, 2, 3]),
  EncryptionContext: { pool: 'p', keyId: 'k-1' },
};

describe("keypool's KMS client against the SDK's", () => {
  it('sends the request the SDK sends: same target, content type, body and signed scope', async () => {
    // Prepare
    const { server, seen } = scripted([
      { status: 200, body: { KeyId: fakeKeyArn(1), Plaintext: 'AAEC' } },
      { status: 200, body: { KeyId: fakeKeyArn(1), Plaintext: 'AAEC' } },
    ]);
    const endpoint = await listening(server);
    const env = { ...process.env, AWS_ENDPOINT_URL_KMS: endpoint };
    try {
      // Act
      const ours = await kmsClient('eu-west-1', env).decrypt(DECRYPT);
      const sdk = await new KMSClient({ region: 'eu-west-1', endpoint }).send(new DecryptCommand(DECRYPT));
      // Assess
      expect(ours.Plaintext).toEqual(sdk.Plaintext);
      expect(ours.KeyId).toBe(sdk.KeyId);
      const [mine, theirs] = seen;
      for (const header of ['content-type', 'x-amz-target', 'content-length'])
        expect(mine?.headers[header], header).toBe(theirs?.headers[header]);
      // The same fields and values (the SDK orders the keys by its schema, we keep the input's).
      expect(JSON.parse(mine?.body ?? '')).toEqual(JSON.parse(theirs?.body ?? ''));
      expect(mine?.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
      const scope = (h: unknown) => /Credential=\w+\/\d{8}\/eu-west-1\/kms\/aws4_request/.exec(String(h))?.[0];
      expect(scope(mine?.headers.authorization)).toBeDefined();
      expect(scope(mine?.headers.authorization)).toBe(scope(theirs?.headers.authorization));
    } finally {
      server.close();
    }
  });

  it("signs as the SDK's signer does with its own hash", async () => {
    // Prepare: the same request, signing date and credentials; only the SHA-256 differs.
    const request = {
      method: 'POST',
      protocol: 'https:',
      hostname: 'kms.eu-west-1.amazonaws.com',
      path: '/',
      query: {},
      headers: { host: 'kms.eu-west-1.amazonaws.com', 'x-amz-target': 'TrentService.Decrypt' },
      body: '{"KeyId":"k"}',
    };
    const credentials = { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'test-only', sessionToken: 'token' };
    const signingDate = new Date('2026-01-01T00:00:00Z');
    const sign = (sha256: ConstructorParameters<typeof SignatureV4>[0]['sha256']) =>
      new SignatureV4({ service: 'kms', region: 'eu-west-1', credentials, sha256 }).sign(request, { signingDate });
    // Act
    const [ours, reference] = await Promise.all([sign(NodeSha256), sign(Sha256)]);
    // Assess
    expect(ours.headers.authorization).toBe(reference.headers.authorization);
  });

  it('retries throttling and 5xx answers as the SDK does, never a client error', async () => {
    // Prepare
    const { server, seen } = scripted([
      { status: 400, body: { __type: 'com.amazonaws.kms#ThrottlingException', message: 'slow down' } },
      { status: 503, body: { __type: 'KMSInternalException' } },
      { status: 200, body: { KeyId: fakeKeyArn(1), Plaintext: 'AAEC' } },
      { status: 400, body: { __type: 'com.amazonaws.kms#AccessDeniedException', message: 'no' } },
    ]);
    const env = { ...process.env, AWS_ENDPOINT_URL_KMS: await listening(server) };
    try {
      // Act
      const opened = await kmsClient('eu-west-1', env).decrypt(DECRYPT);
      const refused = await kmsClient('eu-west-1', env)
        .decrypt(DECRYPT)
        .catch((e: unknown) => e);
      // Assess
      expect(opened.Plaintext).toEqual(new Uint8Array([0, 1, 2]));
      expect(seen).toHaveLength(4);
      expect(refused).toBeInstanceOf(KmsServiceError);
      expect(refused).toMatchObject({
        name: 'AccessDeniedException',
        message: 'no',
        $fault: 'client',
        $metadata: { httpStatusCode: 400, requestId: 'req-1', attempts: 1 },
      });
    } finally {
      server.close();
    }
  });

  it("gives up after AWS_MAX_ATTEMPTS, with KMS's last error", async () => {
    // Prepare
    const busy = { status: 400, body: { __type: 'ThrottlingException' } };
    const { server, seen } = scripted([busy, busy, busy]);
    const env = { ...process.env, AWS_ENDPOINT_URL_KMS: await listening(server), AWS_MAX_ATTEMPTS: '2' };
    try {
      // Act
      const failure = await kmsClient('eu-west-1', env)
        .decrypt(DECRYPT)
        .catch((e: unknown) => e);
      // Assess
      expect(seen).toHaveLength(2);
      expect(failure).toMatchObject({ name: 'ThrottlingException', $metadata: { attempts: 2 } });
    } finally {
      server.close();
    }
  });

  it("calls the endpoint KMS's endpoint rules give: partition, FIPS, dual-stack, override", () => {
    expect(kmsEndpoint('eu-west-1', {}).href).toBe('https://kms.eu-west-1.amazonaws.com/');
    expect(kmsEndpoint('cn-north-1', {}).href).toBe('https://kms.cn-north-1.amazonaws.com.cn/');
    expect(kmsEndpoint('us-gov-west-1', { AWS_USE_FIPS_ENDPOINT: 'true' }).href).toBe(
      'https://kms-fips.us-gov-west-1.amazonaws.com/',
    );
    expect(kmsEndpoint('eu-west-1', { AWS_USE_DUALSTACK_ENDPOINT: 'true' }).href).toBe(
      'https://kms.eu-west-1.api.aws/',
    );
    expect(kmsEndpoint('eu-west-1', { AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:4566' }).href).toBe(
      'http://127.0.0.1:4566/',
    );
    // A region comes from a key ARN in a message header: never a host of its choosing.
    expect(() => kmsEndpoint('evil.example#', {})).toThrow(RangeError);
  });
});
