/**
 * A KMS stand-in for unit tests: the three calls the ESDK's KMS keyring makes, with KMS's
 * rules that matter here — a data key opens only under the key that wrapped it and with the
 * exact encryption context it was wrapped with (else InvalidCiphertextException / IncorrectKeyException).
 * Counts every call and records the contexts it was given, so tests can prove what reaches KMS.
 */
import { randomBytes } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { type SigV4Options, verifySigV4 } from './s3-sigv4.js';
import type { KmsClientLike } from '../../lib/adapters/wrapping-keys.js';

interface Wrapped {
  keyId: string;
  plaintext: Buffer;
  context: Record<string, string>;
}

class KmsError extends Error {
  constructor(override readonly name: string) {
    super(`${name} (fake KMS)`);
  }
}

const sameContext = (a: Record<string, string> = {}, b: Record<string, string> = {}) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

export const fakeKeyArn = (n: number): string =>
  `arn:aws:kms:eu-west-1:111122223333:key/0000000${n}-1111-2222-3333-444455556666`;

export class FakeKms implements KmsClientLike {
  readonly calls = { generateDataKey: 0, encrypt: 0, decrypt: 0 };
  /** the EncryptionContext of every call, in order */
  readonly contexts: { operation: string; context: Record<string, string> | undefined }[] = [];
  readonly #wrapped = new Map<string, Wrapped>();
  #failures: string[] = [];

  /** The next `count` calls throw a KMS error with this name. */
  failNext(name: string, count = 1): void {
    for (let i = 0; i < count; i++) this.#failures.push(name);
  }

  async generateDataKey(input: { KeyId: string; NumberOfBytes?: number; EncryptionContext?: Record<string, string> }) {
    this.calls.generateDataKey++;
    this.contexts.push({ operation: 'GenerateDataKey', context: input.EncryptionContext });
    await this.#maybeFail();
    const plaintext = randomBytes(input.NumberOfBytes ?? 32);
    const blob = this.#wrap(input.KeyId, plaintext, input.EncryptionContext ?? {});
    // KMS answers with copies the caller may zero.
    return { KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext), CiphertextBlob: blob };
  }

  async encrypt(input: { KeyId: string; Plaintext: Uint8Array; EncryptionContext?: Record<string, string> }) {
    this.calls.encrypt++;
    this.contexts.push({ operation: 'Encrypt', context: input.EncryptionContext });
    await this.#maybeFail();
    return {
      KeyId: input.KeyId,
      CiphertextBlob: this.#wrap(input.KeyId, Buffer.from(input.Plaintext), input.EncryptionContext ?? {}),
    };
  }

  async decrypt(input: { KeyId?: string; CiphertextBlob: Uint8Array; EncryptionContext?: Record<string, string> }) {
    this.calls.decrypt++;
    this.contexts.push({ operation: 'Decrypt', context: input.EncryptionContext });
    await this.#maybeFail();
    const wrapped = this.#wrapped.get(Buffer.from(input.CiphertextBlob).toString('hex'));
    if (!wrapped || !sameContext(wrapped.context, input.EncryptionContext))
      throw new KmsError('InvalidCiphertextException');
    if (input.KeyId !== undefined && input.KeyId !== wrapped.keyId) throw new KmsError('IncorrectKeyException');
    return { KeyId: wrapped.keyId, Plaintext: new Uint8Array(wrapped.plaintext) };
  }

  #wrap(keyId: string, plaintext: Buffer, context: Record<string, string>): Uint8Array {
    // Real blobs are ~184 bytes for a 32-byte key; the size only matters for the size figures.
    const blob = randomBytes(184);
    this.#wrapped.set(blob.toString('hex'), { keyId, plaintext: Buffer.from(plaintext), context: { ...context } });
    return new Uint8Array(blob);
  }

  /** A tick like a network call, then the scheduled failure if any. */
  async #maybeFail(): Promise<void> {
    await Promise.resolve();
    const name = this.#failures.shift();
    if (name) throw new KmsError(name);
  }
}

const BLOBS = ['CiphertextBlob', 'Plaintext'];
const isBase64 = (value: unknown): boolean =>
  typeof value === 'string' && value.length > 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0;
const OPERATIONS = { GenerateDataKey: 'generateDataKey', Encrypt: 'encrypt', Decrypt: 'decrypt' } as const;

/**
 * KMS's JSON protocol (awsJson1_1) in front of `kms`, as a request listener for a loopback
 * server that AWS_ENDPOINT_URL_KMS names: blobs travel as base64, errors as `__type` with status
 * 400 (as KMS answers ThrottlingException too, which the SDK retries by its name). Each call's
 * operation is appended to `targets`. With `signing`, a request whose SigV4 signature does not
 * verify (test/support/s3-sigv4.ts, with service `kms`) is refused as KMS refuses it.
 */
export function kmsJsonProtocol(kms: FakeKms, targets: string[] = [], signing?: SigV4Options): RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const received = Buffer.concat(chunks);
      const body = received.toString();
      const verdict = signing ? verifySigV4(req, received, { ...signing, service: 'kms' }) : undefined;
      if (verdict && !verdict.ok) {
        const type =
          verdict.code === 'InvalidAccessKeyId' ? 'UnrecognizedClientException' : 'InvalidSignatureException';
        res
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify({ __type: type, message: verdict.message }));
        return;
      }
      const target = String(req.headers['x-amz-target']).replace('TrentService.', '');
      targets.push(target);
      const input = JSON.parse(body) as Record<string, unknown>;
      // As KMS does, a blob is a base64 string or the request does not deserialize.
      const malformed = BLOBS.find((blob) => blob in input && !isBase64(input[blob]));
      if (malformed !== undefined) {
        res
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify({ __type: 'SerializationException', message: `${malformed} is not a base64 string` }));
        return;
      }
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
  };
}
