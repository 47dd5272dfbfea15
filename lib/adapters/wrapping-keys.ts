/**
 * The wrapping keys a sealer holds (lib/adapters/esdk-sealer.ts): how configuration names one,
 * how a message header names it (a KMS key ARN, or a fingerprint of a local key, never the key),
 * and the keyring each becomes. A KMS keyring is built per call so its client records that
 * call's failures by name (SealingUnavailable's causes).
 */
import { createHmac } from 'node:crypto';
import { KmsKeyringClass } from '@aws-crypto/kms-keyring';
import {
  immutableClass,
  KeyringNode,
  type Newable,
  type NodeAlgorithmSuite,
} from '@aws-crypto/material-management-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { KMS_KEY_ARN } from '../domain/sealing-names.js';

/**
 * The ESDK's KMS keyring over Node's keyring base: KmsKeyringNode (@aws-crypto/kms-keyring-node)
 * is this same class, built the same way, plus a default client provider that loads the
 * aggregated KMS client at import. We always pass our own provider (kms-client.ts).
 */
// As the ESDK does it: KeyringNode is abstract, the factory's parameter a concrete constructor.
class KmsKeyring extends KmsKeyringClass<NodeAlgorithmSuite, KmsClientLike>(
  KeyringNode as unknown as Newable<KeyringNode>,
) {}
immutableClass(KmsKeyring);

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
 * One wrapping key the sealer holds, and its keyring for one seal or open: the KMS errors that
 * call meets are recorded (by name) in `failures`, which belong to that call alone.
 */
export interface HeldKey {
  ref: WrappingKeyRef;
  /** how messages name it: the ARN, or `<label> (local-<16 hex>)` */
  shown: string;
  keyring: (failures: string[]) => KeyringNode;
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) ? name : 'Error';
}

/** Records each KMS call's failure (its name only) in `failures`, then rethrows. */
function recording(client: KmsClientLike, failures: string[]): KmsClientLike {
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

/**
 * The keyring for one wrapping key: KmsKeyringNode with the key ARN as generator (seal =
 * GenerateDataKey, open = Decrypt), built per call so its client records that call's failures
 * (concurrent calls each get their own; no AsyncLocalStorage, whose promise hooks would tax
 * every promise of the process on Node.js 20), or one RawAesKeyringNode (AES-256-GCM key
 * wrapping: no KMS, nothing to record).
 */
export function heldKey(spec: WrappingKeySpec, kms: (region: string) => KmsClientLike | false): HeldKey {
  const ref = wrappingKeyRef(spec);
  if (spec.kind === 'kms') {
    const keyring = (failures: string[]): KeyringNode => {
      const clientProvider = (region: string) => {
        const client = kms(region);
        return client ? recording(client, failures) : false;
      };
      // KmsKeyring extends KeyringNode through the ESDK's class factory (KmsKeyringClass(KeyringNode)),
      // which the lint rule cannot follow; at run time it is a KeyringNode.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
      const built: KeyringNode = new KmsKeyring({ generatorKeyId: spec.keyArn, clientProvider });
      return built;
    };
    return { ref, shown: ref.key, keyring };
  }
  const local = new RawAesKeyringNode({
    keyNamespace: LOCAL_PROVIDER,
    keyName: ref.key,
    // The keyring keeps its own copy; the caller may zero theirs.
    unencryptedMasterKey: new Uint8Array(spec.key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  return { ref, shown: spec.label ? `${spec.label} (${ref.key})` : ref.key, keyring: () => local };
}
