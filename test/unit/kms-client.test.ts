/**
 * The sealer's default KMS client (lib/adapters/kms-client.ts: three calls over KMS's JSON
 * protocol, signed by hand) speaks KMS's wire protocol: a sealer given no client of its own
 * seals and opens through it against a KMS stand-in over loopback HTTP (the fake KMS's rules
 * behind KMS's JSON protocol, every signature checked by test/support/s3-sigv4.ts), a KMS error
 * reaches the sealer by the name the SDK gives it, and a throttled call is tried again.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { jsonErrorCode } from '../../lib/adapters/aws-http.js';
import { cacheKmsClients, kmsClient } from '../../lib/adapters/kms-client.js';
import { SealingUnavailable } from '../../lib/domain/errors.js';
import { fakeKeyArn, FakeKms, kmsJsonProtocol } from '../support/fake-kms.js';

const kms = new FakeKms();
const targets: string[] = [];
const server = createServer(
  kmsJsonProtocol(kms, targets, {
    credentials: { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'test-only' },
    region: 'eu-west-1',
  }),
);
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

  it('tries a throttled call again, as the SDK retries ThrottlingException by its name', async () => {
    // Prepare
    const sealer = createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) } });
    const before = targets.length;
    kms.failNext('ThrottlingException');
    // Act
    const sealed = await sealer.seal('sk-test-over-http', { pool: 'kms', keyId: 'k-3' });
    // Assess
    expect(sealed.length).toBeGreaterThan(0);
    expect(targets.slice(before)).toEqual(['GenerateDataKey', 'GenerateDataKey']);
  });

  it("is refused by KMS's signature check when signed with another secret, and that is KMS unavailable, not a secret undecryptable", async () => {
    // Prepare
    const sealer = createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) } });
    const sealed = await sealer.seal('sk-test-over-http', { pool: 'kms', keyId: 'k-4' });
    process.env.AWS_SECRET_ACCESS_KEY = 'another-secret';
    // A client of its own: the default one per region keeps the credentials it first found.
    const fresh = createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, cache: false, kms: kmsClient });
    // Act
    const failure = await fresh.open(sealed, { pool: 'kms', keyId: 'k-4' }).catch((e: unknown) => e);
    process.env.AWS_SECRET_ACCESS_KEY = 'test-only';
    // Assess
    expect(failure).toBeInstanceOf(SealingUnavailable);
    expect((failure as SealingUnavailable).causes).toEqual(['InvalidSignatureException']);
  });

  it('takes a 200 with no Decrypt answer in it (an empty body) for KMS unavailable, not for a secret undecryptable', async () => {
    // Prepare: sealed through the fake KMS; opened through an endpoint that answers 200 and nothing.
    const context = { pool: 'kms', keyId: 'k-5' };
    const sealed = await createEsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms }).seal(
      'sk-test-over-http',
      context,
    );
    const empty = createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end());
    });
    await new Promise<void>((resolve) => empty.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(empty.address() as AddressInfo).port}`;
    const opener = createEsdkSealer({
      current: { kind: 'kms', keyArn: fakeKeyArn(1) },
      cache: false,
      kms: (region) => kmsClient(region, { AWS_ENDPOINT_URL_KMS: endpoint }),
    });
    try {
      // Act
      const failure = await opener.open(sealed, context).catch((e: unknown) => e);
      // Assess: no KMS error named the ciphertext, so nothing here is evidence against the key.
      expect(failure).toBeInstanceOf(SealingUnavailable);
    } finally {
      await new Promise((resolve) => empty.close(resolve));
    }
  });

  it("reads an error's code as the SDK does: __type, then code, then the header, without namespace or suffix", () => {
    expect(jsonErrorCode(undefined, undefined, 'InvalidCiphertextException:http://internal.amazon.com/coral/')).toBe(
      'InvalidCiphertextException',
    );
    expect(jsonErrorCode('com.amazonaws.kms#IncorrectKeyException', undefined, 'KMSInternalException')).toBe(
      'IncorrectKeyException',
    );
    expect(jsonErrorCode(undefined, 'DisabledException', 'KMSInternalException')).toBe('DisabledException');
    expect(jsonErrorCode('ThrottlingException,extra', undefined, undefined)).toBe('ThrottlingException');
    expect(jsonErrorCode({}, undefined, undefined)).toBe('Unknown');
  });
});

describe('one KMS client per region, kept once KMS answered there', () => {
  /** A client per build, failing as `answer` says, with the number built. */
  function builder(answer: () => Promise<never> | undefined) {
    const built: FakeKms[] = [];
    const build = () => {
      const client = new FakeKms();
      const decrypt = client.decrypt.bind(client);
      client.decrypt = (input) => answer() ?? decrypt(input);
      built.push(client);
      return client;
    };
    return { built, clients: cacheKmsClients(build) };
  }
  const input = { KeyId: fakeKeyArn(1), CiphertextBlob: new Uint8Array(1) };
  const statusError = () =>
    Object.assign(new Error('refused'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });

  it('keeps the client of a region where KMS answered, even with an error carrying an HTTP status', async () => {
    // Prepare
    const { built, clients } = builder(() => Promise.reject(statusError()));
    // Act
    await clients('eu-west-1')
      .decrypt(input)
      .catch(() => undefined);
    const again = clients('eu-west-1');
    // Assess
    expect(built).toHaveLength(1);
    expect(again).toBe(built[0]);
  });

  it('builds a new client for a region where no answer came back (no HTTP status: a bogus region fills no cache)', async () => {
    // Prepare
    const { built, clients } = builder(() => Promise.reject(new Error('getaddrinfo ENOTFOUND')));
    // Act
    await clients('nowhere-1')
      .decrypt(input)
      .catch(() => undefined);
    clients('nowhere-1');
    // Assess
    expect(built).toHaveLength(2);
  });
});

describe('the wire, against the SDK', () => {
  it("sends the body, target and content type the SDK's KMSClient sends for the same input, Buffers and Uint8Arrays alike", async () => {
    // Prepare: a loopback endpoint that keeps what each request carried and answers an empty object.
    const seen: { target: string; type: string; body: unknown }[] = [];
    const wire = createServer((request: IncomingMessage, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({
          target: String(request.headers['x-amz-target']),
          type: String(request.headers['content-type']),
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => wire.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(wire.address() as AddressInfo).port}`;
    const credentials = { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'test-only' };
    const sdk = new KMSClient({ endpoint, region: 'eu-west-1', credentials });
    const ours = kmsClient('eu-west-1', { AWS_ENDPOINT_URL_KMS: endpoint });
    const context = { pool: 'p', keyId: 'k' };
    const blob = Buffer.from('0123456789abcdef0123456789abcdef-tail').subarray(0, 32);
    const inputs = {
      decrypt: { KeyId: fakeKeyArn(1), CiphertextBlob: blob, EncryptionContext: context },
      decryptBytes: { KeyId: fakeKeyArn(1), CiphertextBlob: new Uint8Array(blob), EncryptionContext: context },
      encrypt: { KeyId: fakeKeyArn(1), Plaintext: blob, EncryptionContext: context },
      generate: { KeyId: fakeKeyArn(1), NumberOfBytes: 32, EncryptionContext: context },
    };
    try {
      // Act: each input through the SDK, then through ours (whose answer, an empty object, is no KMS answer: only the request matters here).
      await sdk.send(new DecryptCommand(inputs.decrypt));
      await ours.decrypt(inputs.decrypt).catch(() => undefined);
      await sdk.send(new DecryptCommand(inputs.decryptBytes));
      await ours.decrypt(inputs.decryptBytes).catch(() => undefined);
      await sdk.send(new EncryptCommand(inputs.encrypt));
      await ours.encrypt(inputs.encrypt).catch(() => undefined);
      await sdk.send(new GenerateDataKeyCommand(inputs.generate));
      await ours.generateDataKey(inputs.generate).catch(() => undefined);
    } finally {
      sdk.destroy();
      wire.close();
    }
    // Assess: pairwise the same.
    expect(seen).toHaveLength(8);
    for (let i = 0; i < seen.length; i += 2) expect(seen[i + 1], seen[i]?.target).toEqual(seen[i]);
    expect((seen[0]?.body as { CiphertextBlob: unknown }).CiphertextBlob).toBe(blob.toString('base64'));
  });
});
