/**
 * The KMS client the sealer calls, one per region: the three calls it sends (GenerateDataKey to
 * seal, Decrypt to open, Encrypt for further wrapping keys) over KMS's JSON protocol
 * (awsJson1_1: a POST to `/` naming `TrentService.<operation>`, blobs as base64), signed and
 * retried by AwsHttp (aws-http.ts) as the SDK's KMSClient would: the SDK's client is 28 KB of
 * every function that seals or opens, for three calls of one shape. An error reaches the sealer
 * by the name the SDK gives it (`InvalidCiphertextException`, `KMSInternalException`, ...),
 * which is what decides between an undecryptable secret and KMS being unavailable
 * (esdk-opener.ts). The endpoint is the region's, or the one the environment names for KMS
 * (`AWS_ENDPOINT_URL_KMS`, then `AWS_ENDPOINT_URL`, as the SDK reads them).
 */
import { AwsHttp, awsDomain, AwsServiceError, configuredEndpoint, endpointTarget, isJsonObject } from './aws-http.js';
import type { KmsClientLike } from './wrapping-keys.js';

/** KMS answers are a few hundred bytes: a data key, a key ARN, a ciphertext blob. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The fields KMS's JSON protocol carries as base64 (in the input: the blob to decrypt, the plaintext to encrypt). */
const BLOBS = new Set(['CiphertextBlob', 'Plaintext']);

/**
 * The input with its blobs as base64, as KMS's JSON protocol spells them. Converted before
 * JSON.stringify: a Buffer would reach a replacer already turned by its own toJSON into
 * `{ type: 'Buffer', data: [...] }`, which KMS cannot read.
 */
function encodeInput(input: object): string {
  const fields: Record<string, unknown> = { ...input };
  for (const name of BLOBS) {
    const value = fields[name];
    if (value instanceof Uint8Array)
      fields[name] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  }
  return JSON.stringify(fields);
}

/** What the three calls answer that the sealer reads. */
interface KmsAnswer {
  KeyId?: string;
  Plaintext?: Uint8Array;
  CiphertextBlob?: Uint8Array;
}

/** A blob as bytes of their own (not in Node's shared pool: a plaintext data key is zeroed where it is used). */
function blob(value: unknown): Uint8Array | undefined {
  if (typeof value !== 'string') return undefined;
  const bytes = Buffer.alloc(Buffer.byteLength(value, 'base64'));
  return bytes.subarray(0, bytes.write(value, 'base64'));
}

/** The fields of an answer the sealer reads, each of its type or absent. */
function decodeAnswer(answer: Record<string, unknown>): KmsAnswer {
  const plaintext = blob(answer.Plaintext);
  const ciphertext = blob(answer.CiphertextBlob);
  return {
    ...(typeof answer.KeyId === 'string' ? { KeyId: answer.KeyId } : {}),
    ...(plaintext ? { Plaintext: plaintext } : {}),
    ...(ciphertext ? { CiphertextBlob: ciphertext } : {}),
  };
}

/** A KMS client for `region` (the region of the key ARN the keyring calls). */
export function kmsClient(region: string, env: NodeJS.ProcessEnv = process.env): KmsClientLike {
  const aws = new AwsHttp({ service: 'kms', region });
  const endpoint = endpointTarget(configuredEndpoint('KMS', env) ?? `https://kms.${region}.${awsDomain(region)}`);
  const call = (operation: string, input: object, required: readonly (keyof KmsAnswer)[]): Promise<KmsAnswer> =>
    aws.retrying(async () => {
      const answer = await aws.postJson(endpoint, {
        version: '1.1',
        target: `TrentService.${operation}`,
        body: Buffer.from(encodeInput(input)),
        maxBytes: MAX_ANSWER_BYTES,
      });
      const { document } = answer;
      if (answer.error) throw new AwsServiceError(answer.error.code, answer.status, answer.error.message);
      if (!isJsonObject(document))
        throw new AwsServiceError('MalformedAnswer', answer.status, 'KMS answered no JSON object');
      // An answer without what the operation returns is no answer of KMS's: a failure by name
      // (KMS unavailable), never an unwrap that simply failed (which reads as the secret's fault).
      const decoded = decodeAnswer(document);
      const missing = required.filter((field) => decoded[field] === undefined);
      if (missing.length > 0) {
        decoded.Plaintext?.fill(0);
        throw new AwsServiceError('MalformedAnswer', answer.status, `KMS answered without ${missing.join(', ')}`);
      }
      return decoded;
    });
  return {
    generateDataKey: (input) => call('GenerateDataKey', input, ['KeyId', 'Plaintext', 'CiphertextBlob']),
    encrypt: (input) => call('Encrypt', input, ['KeyId', 'CiphertextBlob']),
    decrypt: (input) => call('Decrypt', input, ['KeyId', 'Plaintext']),
  };
}

/**
 * `build` per region, kept once KMS answered there (a response, or an error with an HTTP
 * status: the region is live), so a bogus region in a header fills no cache; as the ESDK's
 * cacheClients (kms-keyring: kms_client_supplier.js) does.
 */
export function cacheKmsClients(build: (region: string) => KmsClientLike): (region: string) => KmsClientLike {
  const kept = new Map<string, KmsClientLike>();
  return (region) => {
    const cached = kept.get(region);
    if (cached) return cached;
    const client = build(region);
    const keep = <T>(answer: Promise<T>): Promise<T> =>
      answer.then(
        (value) => {
          kept.set(region, client);
          return value;
        },
        (error: unknown) => {
          if ((error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode)
            kept.set(region, client);
          throw error;
        },
      );
    return {
      generateDataKey: (input) => keep(client.generateDataKey(input)),
      encrypt: (input) => keep(client.encrypt(input)),
      decrypt: (input) => keep(client.decrypt(input)),
    };
  };
}

/** One client per region, cached once KMS answered there. */
export const cachedKmsClients: (region: string) => KmsClientLike = cacheKmsClients(kmsClient);
