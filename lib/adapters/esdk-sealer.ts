/**
 * SecretSealer over the AWS Encryption SDK: envelope encryption, a fresh data key per secret,
 * wrapped by KMS on AWS or by a local 256-bit key elsewhere (same code path, keyring chosen by
 * configuration). The sealed form is the base64 of one ESDK message.
 *
 * Algorithm suite: AES-256-GCM, HKDF-SHA512, key commitment, NO signature
 * (ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY). A signature only protects readers from
 * writers who may decrypt but must not encrypt. Here the roles that decrypt (lease, maintain)
 * and the roles that encrypt (import, migrate, reseal) are one trust domain — the same
 * operator, the same table they can all write — and a forged ciphertext could only plant a
 * secret the forger already knows. Without the signature a message is ~100 bytes smaller and
 * opening skips an ECDSA P-384 verification. Commitment stays: it makes a message decrypt to
 * one plaintext only, whoever wraps its data key.
 *
 * Binding: the encryption context {pool, keyId} is authenticated by the message (and, with
 * KMS, by KMS itself, which logs it in CloudTrail and lets IAM conditions test it). On open
 * the context in the header must equal the expected one exactly, before any key is used.
 */
import { createHmac } from 'node:crypto';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import { cacheKmsClients, KmsKeyringNode } from '@aws-crypto/kms-keyring-node';
import { AlgorithmSuiteIdentifier, CommitmentPolicy, type KeyringNode } from '@aws-crypto/material-management-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import type { SealContext } from '../domain/types.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { SealingUnavailable, SecretUndecryptable, type UndecryptableReason } from '../domain/errors.js';
import { CONTEXT_KEY_ID, CONTEXT_POOL, KMS_KEY_ARN } from '../domain/sealing-names.js';
import { openMessage, ParsedMessage } from './esdk-open.js';
import { cacheKeyFor, OpenedSecretCache, type OpenedSecretCacheOptions } from './opened-secret-cache.js';

/** The one suite this sealer writes and accepts (see the header comment for why unsigned). */
export const SEALING_SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;

/** The ESDK provider id of a KMS-wrapped data key. */
export const KMS_PROVIDER = 'aws-kms';
/** The raw AES keyring's namespace (its provider id) for local keys. */
export const LOCAL_PROVIDER = 'keypool-local';

/** A wrapping key, as configuration names it. */
export type WrappingKeySpec =
  /** a symmetric KMS key, by key ARN (not an alias: the message records the key ARN, and rotation detection compares them) */
  | { kind: 'kms'; keyArn: string }
  /** a 256-bit key held by this process (the local stack, tests) */
  | { kind: 'local'; key: Uint8Array };

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

export interface EsdkSealerOptions {
  /** seals every new secret; also opens */
  current: WrappingKeySpec;
  /** open only: the keys being rotated away from, until `keypool reseal` has moved every secret */
  previous?: readonly WrappingKeySpec[];
  /** opened-secret cache bounds; `false` turns the cache off (every open decrypts) */
  cache?: OpenedSecretCacheOptions | false;
  /** the KMS client (or one per region); default: the ESDK's cached client per region */
  kms?: KmsClientLike | ((region: string) => KmsClientLike);
}

/** How often the sealer did what, for metrics and tests. Counts only: no content. */
export interface SealerStats {
  seals: number;
  opens: number;
  cacheHits: number;
  /** opens that unwrapped a data key (a KMS Decrypt with a KMS key) */
  unwraps: number;
}

// Messages we write hold exactly one encrypted data key (one wrapping key per seal). Refusing
// more bounds what a planted ciphertext can make the opener do (one unwrap, one KMS call).
const CLIENT_OPTIONS = {
  commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
  maxEncryptedDataKeys: 1,
} as const;
const { encrypt } = buildEncrypt(CLIENT_OPTIONS);

/** A secret is an API key: far below this. A bound keeps a planted message from costing much. */
const MAX_SEALED_BYTES = 64 * 1024;
/** KMS errors that blame the ciphertext (or its context), not the service or our permissions. */
const CIPHERTEXT_ERRORS = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

/** What a sealed string's header says, read without decrypting. */
export type SealedInfo =
  | { sealed: false }
  | {
      sealed: true;
      suiteId: AlgorithmSuiteIdentifier;
      context: Readonly<Record<string, string>>;
      wrappedBy: readonly WrappingKeyRef[];
    };

/**
 * Parses the ESDK message header of `sealed`: the suite, the encryption context and which
 * wrapping keys wrapped the data key. `{ sealed: false }` for anything that is not a complete
 * ESDK message header (a plain legacy secret, garbage, a truncated value). Never decrypts.
 */
export function inspectSealed(sealed: string): SealedInfo {
  const bytes = decodeSealed(sealed);
  return describeSealed(bytes ? parseSealed(bytes) : false);
}

/** The ESDK message header of decoded bytes, or false for anything that is not one. */
function parseSealed(bytes: Uint8Array): ParsedMessage | false {
  try {
    return ParsedMessage.parse(bytes, { maxEncryptedDataKeys: CLIENT_OPTIONS.maxEncryptedDataKeys });
  } catch {
    return false;
  }
}

/** What a parsed header says; the open path parses once and reads this from the same parse. */
function describeSealed(message: ParsedMessage | false): SealedInfo {
  if (!message) return { sealed: false };
  const { messageHeader } = message.headerInfo;
  return {
    sealed: true,
    suiteId: messageHeader.suiteId,
    context: { ...messageHeader.encryptionContext },
    wrappedBy: messageHeader.encryptedDataKeys.map(({ providerId, providerInfo }) => ({
      provider: providerId,
      key: providerId === LOCAL_PROVIDER ? (LOCAL_KEY_NAME.exec(providerInfo)?.[0] ?? '(unrecognised)') : providerInfo,
    })),
  };
}

/**
 * A name for a local key that identifies it without revealing it: an HMAC of a fixed label
 * under the key. Two different keys get different names, so the header says which one sealed
 * a message and a wrong key is never even tried.
 */
export function localKeyName(key: Uint8Array): string {
  return `local-${createHmac('sha256', key).update('keypool sealing key name v1').digest('hex').slice(0, 16)}`;
}
const LOCAL_KEY_NAME = /^local-[0-9a-f]{16}/;

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
interface HeldKey {
  ref: WrappingKeyRef;
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
function heldKey(spec: WrappingKeySpec, kms: (region: string) => KmsClientLike | false): HeldKey {
  const ref = wrappingKeyRef(spec);
  if (spec.kind === 'kms') {
    const keyring = (failures: string[]): KeyringNode => {
      const clientProvider = (region: string) => {
        const client = kms(region);
        return client ? recording(client, failures) : false;
      };
      // KmsKeyringNode extends KeyringNode through the ESDK's class factory (KmsKeyringClass(KeyringNode)),
      // which the lint rule cannot follow; at run time it is a KeyringNode.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
      const built: KeyringNode = new KmsKeyringNode({ generatorKeyId: spec.keyArn, clientProvider });
      return built;
    };
    return { ref, keyring };
  }
  const local = new RawAesKeyringNode({
    keyNamespace: LOCAL_PROVIDER,
    keyName: ref.key,
    // The keyring keeps its own copy; the caller may zero theirs.
    unencryptedMasterKey: new Uint8Array(spec.key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  return { ref, keyring: () => local };
}

function decodeSealed(sealed: string): Buffer | undefined {
  if (typeof sealed !== 'string' || sealed.length === 0 || sealed.length > (MAX_SEALED_BYTES * 4) / 3 + 4)
    return undefined;
  const bytes = Buffer.from(sealed, 'base64');
  // Buffer.from skips characters that are not base64: insist on the canonical encoding, so a
  // changed character is a changed ciphertext and never silently the same one.
  return bytes.length > 0 && bytes.toString('base64') === sealed ? bytes : undefined;
}

const sameRef = (a: WrappingKeyRef, b: WrappingKeyRef): boolean => a.provider === b.provider && a.key === b.key;

function exactContext(context: SealContext): Record<string, string> {
  return { [CONTEXT_POOL]: context.pool, [CONTEXT_KEY_ID]: context.keyId };
}

function sameContext(actual: Readonly<Record<string, string>>, expected: Record<string, string>): boolean {
  const keys = Object.keys(actual);
  return (
    keys.length === Object.keys(expected).length &&
    keys.every((k) => Object.hasOwn(expected, k) && actual[k] === expected[k])
  );
}

function checkContext(context: SealContext): void {
  if (!context.pool || !context.keyId) throw new RangeError('a seal context needs a pool and a key id');
}

/**
 * The AWS Encryption SDK sealer. Build it once per process (module scope in a Lambda) so its
 * cache of opened secrets serves every invocation of a warm container.
 */
export class EsdkSealer implements SecretSealer {
  readonly #current: HeldKey;
  readonly #held: readonly HeldKey[];
  readonly #cache: OpenedSecretCache | undefined;
  readonly #inFlight = new Map<string, Promise<string>>();
  readonly #stats: SealerStats = { seals: 0, opens: 0, cacheHits: 0, unwraps: 0 };

  constructor(options: EsdkSealerOptions) {
    const kms = options.kms;
    const provider: (region: string) => KmsClientLike | false =
      kms === undefined ? (region) => cacheKmsClients(region) : typeof kms === 'function' ? kms : () => kms;
    this.#current = heldKey(options.current, provider);
    const previous = (options.previous ?? []).map((spec) => heldKey(spec, provider));
    this.#held = [this.#current, ...previous.filter((p) => !sameRef(p.ref, this.#current.ref))];
    this.#cache = options.cache === false ? undefined : new OpenedSecretCache(options.cache);
  }

  /** The wrapping key new secrets are sealed under. */
  get currentKey(): WrappingKeyRef {
    return { ...this.#current.ref };
  }

  /** A copy of the counters. */
  stats(): SealerStats {
    return { ...this.#stats };
  }

  /** Seals under the current wrapping key; rejects with SealingUnavailable if KMS fails. */
  async seal(secret: string, context: SealContext): Promise<string> {
    checkContext(context);
    if (typeof secret !== 'string' || secret.length === 0) throw new RangeError('there is no secret to seal');
    this.#stats.seals++;
    const plaintext = Buffer.from(secret, 'utf8');
    const failures: string[] = [];
    try {
      const { result } = await encrypt(this.#current.keyring(failures), plaintext, {
        suiteId: SEALING_SUITE,
        encryptionContext: exactContext(context),
        plaintextLength: plaintext.length,
      });
      return result.toString('base64');
    } catch {
      // Encryption fails only when the wrapping key does: KMS (named) or a broken local key.
      throw new SealingUnavailable('seal', failures);
    } finally {
      plaintext.fill(0);
    }
  }

  /**
   * Opens a sealed secret for exactly `context`. A warm process answers a repeated open of
   * the same ciphertext in the same context from memory; concurrent opens of one ciphertext
   * share one unwrap.
   */
  async open(sealed: string, context: SealContext): Promise<string> {
    checkContext(context);
    this.#stats.opens++;
    const key = cacheKeyFor(sealed, context);
    const cached = this.#cache?.get(key);
    if (cached !== undefined) {
      this.#stats.cacheHits++;
      return cached;
    }
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const opening = this.#openUncached(sealed, context)
      .then((secret) => {
        this.#cache?.set(key, secret);
        return secret;
      })
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, opening);
    return opening;
  }

  /** True unless `sealed` is a message whose data key the current wrapping key wrapped. */
  resealNeeded(sealed: string): Promise<boolean> {
    const info = inspectSealed(sealed);
    const current =
      info.sealed &&
      info.suiteId === SEALING_SUITE &&
      info.wrappedBy.length === 1 &&
      info.wrappedBy.every((ref) => sameRef(ref, this.#current.ref));
    return Promise.resolve(!current);
  }

  /** Forgets every opened secret (e.g. after a wrapping key was revoked). */
  forgetOpened(): void {
    this.#cache?.clear();
  }

  toJSON(): { sealer: string; currentKey: WrappingKeyRef } {
    return { sealer: 'esdk', currentKey: this.currentKey };
  }

  async #openUncached(sealed: string, context: SealContext): Promise<string> {
    const undecryptable = (reason: UndecryptableReason) =>
      new SecretUndecryptable({ pool: context.pool, keyId: context.keyId }, reason);
    const bytes = decodeSealed(sealed);
    const message = bytes ? parseSealed(bytes) : false;
    const info = describeSealed(message);
    if (!message || !info.sealed) throw undecryptable('malformed');
    if (info.suiteId !== SEALING_SUITE) throw undecryptable('unexpected-algorithm');
    // Checked before any key is used (a ciphertext copied from another item costs no KMS call),
    // on the very header openMessage then authenticates: a context edited to pass here fails there.
    if (!sameContext(info.context, exactContext(context))) throw undecryptable('context-mismatch');
    const holder = this.#held.find((held) => info.wrappedBy.some((ref) => sameRef(ref, held.ref)));
    if (!holder) throw undecryptable('unknown-wrapping-key');

    const failures: string[] = [];
    // One message, one data key, one matching keyring: exactly one unwrap (one KMS Decrypt).
    this.#stats.unwraps++;
    let opened: Awaited<ReturnType<typeof openMessage>>;
    try {
      // The ESDK's decrypt, step for step, over the one buffer (esdk-open.ts says why).
      opened = await openMessage(holder.keyring(failures), message, {
        commitmentPolicy: CLIENT_OPTIONS.commitmentPolicy,
        maxBodySize: MAX_SEALED_BYTES,
      });
    } catch {
      // The ESDK's own error text is not passed on: it is not ours to vouch for.
      if (failures.length > 0 && !failures.every((name) => CIPHERTEXT_ERRORS.has(name)))
        throw new SealingUnavailable('open', failures);
      throw undecryptable('authentication-failed');
    }
    try {
      return opened.plaintext.toString('utf8');
    } finally {
      opened.plaintext.fill(0);
    }
  }
}

/** A sealer over one wrapping key, with the default cache: what the wiring builds per process. */
export function createEsdkSealer(options: EsdkSealerOptions): EsdkSealer {
  return new EsdkSealer(options);
}
