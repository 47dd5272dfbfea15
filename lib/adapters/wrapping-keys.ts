/**
 * The wrapping keys a sealer holds (lib/adapters/esdk-opener.ts): how configuration names one,
 * how a message header names it (a KMS key ARN, or a fingerprint of a local key, never the key),
 * and how each unwraps a message's data key: KMS Decrypt for a KMS key, AES-256-GCM for a local
 * one, exactly as the ESDK's KMS and raw AES keyrings do. No ESDK code here: the functions that
 * only open load this; the keyrings that seal are built in esdk-keyrings.ts.
 */
import { createHmac } from 'node:crypto';
import { KMS_KEY_ARN } from '../domain/sealing-names.js';
import { decipher, type EncryptedDataKey, needs } from './sealed-message.js';

/** The ESDK provider id of a KMS-wrapped data key. */
export const KMS_PROVIDER = 'aws-kms';
/** The raw AES keyring's namespace (its provider id) for local keys. */
export const LOCAL_PROVIDER = 'keypool-local';

/** A wrapping key, as configuration names it. */
export type WrappingKeySpec =
  /** a symmetric KMS key, by key ARN (not an alias: the message records the key ARN, and rotation detection compares them) */
  | { kind: 'kms'; keyArn: string }
  /**
   * a 256-bit key held by this process (the local stack, tests); `label` says where it came
   * from in messages (`key file <path>`), beside its fingerprint name, never the key
   */
  | { kind: 'local'; key: Uint8Array; label?: string };

/** Which wrapping key wrapped a message's data key, as the message header records it. */
export interface WrappingKeyRef {
  provider: string;
  /** the key ARN for KMS; `local-<16 hex>` (a fingerprint, not the key) for local keys */
  key: string;
}

/** The KMS operations the keyring calls (the AWS SDK v3 `KMS` client satisfies it). */
export interface KmsClientLike {
  generateDataKey(input: {
    KeyId: string;
    NumberOfBytes?: number;
    EncryptionContext?: Record<string, string>;
    GrantTokens?: string[];
  }): Promise<{
    KeyId?: string;
    Plaintext?: Uint8Array;
    CiphertextBlob?: Uint8Array;
  }>;
  encrypt(input: {
    KeyId: string;
    Plaintext: Uint8Array;
    EncryptionContext?: Record<string, string>;
    GrantTokens?: string[];
  }): Promise<{
    KeyId?: string;
    CiphertextBlob?: Uint8Array;
  }>;
  decrypt(input: {
    KeyId?: string;
    CiphertextBlob: Uint8Array;
    EncryptionContext?: Record<string, string>;
    GrantTokens?: string[];
  }): Promise<{
    KeyId?: string;
    Plaintext?: Uint8Array;
  }>;
}

/**
 * A name for a local key that identifies it without revealing it: an HMAC of a fixed label
 * under the key. Two different keys get different names, so the header says which one sealed
 * a message and a wrong key is never even tried.
 */
export function localKeyName(key: Uint8Array): string {
  return `local-${createHmac('sha256', key).update('keypool sealing key name v1').digest('hex').slice(0, 16)}`;
}
export const LOCAL_KEY_NAME = /^local-[0-9a-f]{16}/;

/**
 * A wrapping key a message header names, fit for a message or a log line: a KMS key ARN or a
 * local key's fingerprint name as it is, anything else (a header is whatever the table holds)
 * by a placeholder, so no stored text reaches an answer.
 */
export function shownRef(ref: WrappingKeyRef): string {
  if (ref.provider === KMS_PROVIDER) return KMS_KEY_ARN.test(ref.key) ? ref.key : '(a KMS key that is not a key ARN)';
  if (ref.provider === LOCAL_PROVIDER)
    return new RegExp(`${LOCAL_KEY_NAME.source}$`).test(ref.key) ? ref.key : '(an unrecognised local key)';
  return '(a key of an unknown provider)';
}

/** What a spec's messages will say in their header. Throws for a malformed spec. */
export function wrappingKeyRef(spec: WrappingKeySpec): WrappingKeyRef {
  if (spec.kind === 'kms') {
    if (!KMS_KEY_ARN.test(spec.keyArn)) {
      throw new RangeError(
        'a KMS wrapping key must be given as a key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias or a bare id',
      );
    }
    return { provider: KMS_PROVIDER, key: spec.keyArn };
  }
  if (spec.key.byteLength !== 32)
    throw new RangeError(`a local wrapping key is 32 bytes (256 bits), got ${spec.key.byteLength}`);
  return { provider: LOCAL_PROVIDER, key: localKeyName(spec.key) };
}

/**
 * One wrapping key the sealer holds, and how it unwraps a data key for one open: the KMS errors
 * that call meets are recorded (by name) in `failures`, which belong to that call alone.
 */
export interface HeldKey {
  ref: WrappingKeyRef;
  /** how messages name it: the ARN, or `<label> (local-<16 hex>)` */
  shown: string;
  /** the data key (32 bytes, the caller zeroes it), or a rejection when this key cannot unwrap it */
  unwrap: (dataKey: EncryptedDataKey, context: Readonly<Record<string, string>>, failures: string[]) => Promise<Buffer>;
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) ? name : 'Error';
}

/** Records each KMS call's failure (its name only) in `failures`, then rethrows. */
export function recording(client: KmsClientLike, failures: string[]): KmsClientLike {
  const watch = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      failures.push(errorName(error));
      throw error;
    }
  };
  return {
    generateDataKey: (input) => watch(() => client.generateDataKey(input)),
    encrypt: (input) => watch(() => client.encrypt(input)),
    decrypt: (input) => watch(() => client.decrypt(input)),
  };
}

/** The region of a KMS key ARN (arn:<partition>:kms:<region>:...), as kms-keyring's getRegionFromIdentifier reads it. */
const regionOf = (keyArn: string): string => keyArn.split(':')[3] ?? '';

/**
 * The KMS keyring's decrypt (kms-keyring: kms_keyring.js _onDecrypt, helpers.js decrypt), for
 * the one key ARN we hold: the data key must be a KMS one under exactly that ARN; Decrypt gets
 * the ARN as KeyId and the header's context; KMS must answer with that same ARN and a 32-byte
 * plaintext. The client is asked for per call so its failures are recorded for that call.
 */
function kmsUnwrap(keyArn: string, kms: (region: string) => KmsClientLike): HeldKey['unwrap'] {
  return async ({ providerId, providerInfo, encryptedDataKey }, context, failures) => {
    needs(providerId === KMS_PROVIDER && providerInfo === keyArn, 'Not a data key of this KMS key.');
    const { KeyId, Plaintext } = await recording(kms(regionOf(keyArn)), failures).decrypt({
      KeyId: keyArn,
      CiphertextBlob: encryptedDataKey,
      EncryptionContext: { ...context },
    });
    needs(Plaintext instanceof Uint8Array, 'Malformed KMS response.');
    const dataKey = Buffer.from(Plaintext.buffer, Plaintext.byteOffset, Plaintext.byteLength);
    const answered = KeyId === providerInfo && dataKey.length === 32;
    if (!answered) dataKey.fill(0);
    needs(answered, 'KMS Decryption key does not match the requested key id, or its plaintext is not a data key.');
    return dataKey;
  };
}

/**
 * The encryption context as the ESDK's raw AES keyring authenticates it (serialize:
 * serialize_factory.js serializeEncryptionContext without its length, utf8Sorting off): a pair
 * count, then each key and value with a 2-byte length, keys in localeCompare order; nothing for
 * an empty context.
 */
function serializedContext(context: Readonly<Record<string, string>>): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return Buffer.alloc(0);
  const field = (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    return [length, bytes];
  };
  const count = Buffer.alloc(2);
  count.writeUInt16BE(entries.length);
  return Buffer.concat([count, ...entries.flatMap(([key, value]) => [...field(key), ...field(value)])]);
}

/**
 * The raw AES keyring's decrypt (raw-aes-keyring-node: aesGcmUnwrapKey; raw-keyring:
 * raw_aes_encrypted_data_keys.js) for AES256_GCM_IV12_TAG16_NO_PADDING: the data key must be
 * in our namespace under `keyName`; its provider info is the key name, the tag length in bits
 * (128), the IV length (12) and the IV; the encrypted data key is 32 bytes of key and a 16-byte
 * tag; the AAD is the serialized context. Holds its own copy of the wrapping key.
 */
export function rawAesUnwrap(key: Uint8Array, keyName: string): HeldKey['unwrap'] {
  const wrappingKey = Buffer.from(key);
  const name = Buffer.from(keyName, 'utf8');
  // eslint-disable-next-line @typescript-eslint/require-await -- a rejection, not a throw, like every unwrap
  return async ({ providerId, providerInfo, rawInfo, encryptedDataKey }, context) => {
    needs(providerId === LOCAL_PROVIDER && providerInfo.startsWith(keyName), 'Not a data key of this key.');
    const info = rawInfo.subarray(name.length);
    needs(
      info.length === 4 + 4 + 12 && info.readUInt32BE(0) === 128 && info.readUInt32BE(4) === 12,
      'Malformed providerInfo',
    );
    needs(encryptedDataKey.length === 32 + 16, 'Malformed providerInfo');
    const parts = decipher(
      wrappingKey,
      info.subarray(8),
      serializedContext(context),
      encryptedDataKey.subarray(0, 32),
      encryptedDataKey.subarray(32),
    );
    const dataKey = Buffer.concat(parts);
    for (const part of parts) part.fill(0);
    return dataKey;
  };
}

/** One wrapping key this process holds, ready to unwrap the data keys of messages sealed under it. */
export function heldKey(spec: WrappingKeySpec, kms: (region: string) => KmsClientLike): HeldKey {
  const ref = wrappingKeyRef(spec);
  if (spec.kind === 'kms') return { ref, shown: ref.key, unwrap: kmsUnwrap(spec.keyArn, kms) };
  return {
    ref,
    shown: spec.label ? `${spec.label} (${ref.key})` : ref.key,
    unwrap: rawAesUnwrap(spec.key, ref.key),
  };
}
