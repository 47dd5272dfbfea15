/**
 * The opening half of the SecretSealer over the AWS Encryption SDK's message format (EsdkSealer
 * in esdk-sealer.ts adds sealing, with the ESDK's own encrypt): what the functions that only
 * open (lease, maintain, proxy) load. It opens with no ESDK code at all (sealed-message.ts
 * parses and decrypts the one message shape we write; wrapping-keys.ts unwraps its data key as
 * the ESDK's keyrings do). The sealer as a whole: envelope encryption, a fresh data key per
 * secret, wrapped by KMS on AWS or by a local 256-bit key elsewhere (same code path, wrapping
 * key chosen by configuration). The sealed form is the base64 of one ESDK message.
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
import type { SealContext } from '../domain/types.js';
import type { SecretOpener } from '../ports/secret-sealer.js';
import {
  SealingMisconfigured,
  SealingUnavailable,
  SecretUndecryptable,
  type UndecryptableReason,
} from '../domain/errors.js';
import { CONTEXT_KEY_ID, CONTEXT_POOL } from '../domain/sealing-names.js';
import { cachedKmsClients } from './kms-client.js';
import { cacheKeyFor, OpenedSecretCache, type OpenedSecretCacheOptions } from './opened-secret-cache.js';
import { openSealedMessage, SEALING_SUITE, SealedMessage } from './sealed-message.js';
import {
  type HeldKey,
  heldKey,
  type KmsClientLike,
  LOCAL_KEY_NAME,
  LOCAL_PROVIDER,
  shownRef,
  type WrappingKeyRef,
  type WrappingKeySpec,
} from './wrapping-keys.js';

export { SEALING_SUITE } from './sealed-message.js';

export interface EsdkSealerOptions {
  /** seals every new secret; also opens */
  current: WrappingKeySpec;
  /** open only: the keys being rotated away from, until `keypool reseal` has moved every secret */
  previous?: readonly WrappingKeySpec[];
  /** opened-secret cache bounds; `false` turns the cache off (every open decrypts) */
  cache?: OpenedSecretCacheOptions | false;
  /** the KMS client (or one per region); default: a cached client per region (kms-client.ts) */
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

/** The KMS client per region that `kms` (the option) gives. */
export function kmsClientsOf(kms: EsdkSealerOptions['kms']): (region: string) => KmsClientLike {
  return kms === undefined ? cachedKmsClients : typeof kms === 'function' ? kms : () => kms;
}

/**
 * Encrypts `plaintext` for `context`, recording the KMS failures it meets by name in
 * `failures`; what EsdkSealer (esdk-sealer.ts) passes to sealWith.
 */
export type SealMessage = (plaintext: Buffer, context: Record<string, string>, failures: string[]) => Promise<Buffer>;

/** A secret is an API key: far below this. A bound keeps a planted message from costing much. */
const MAX_SEALED_BYTES = 64 * 1024;
/** KMS errors that blame the ciphertext (or its context), not the service or our permissions. */
const CIPHERTEXT_ERRORS = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

/** What a sealed string's header says, read without decrypting. */
export type SealedInfo =
  | { sealed: false }
  | {
      sealed: true;
      suiteId: number;
      context: Readonly<Record<string, string>>;
      wrappedBy: readonly WrappingKeyRef[];
    };

/**
 * Parses the ESDK message header of `sealed`: the suite, the encryption context and which
 * wrapping keys wrapped the data key. `{ sealed: false }` for anything that is not a complete
 * header of the message shape keypool seals (sealed-message.ts: format V2, a committing suite,
 * one data key, framed): a plain legacy secret, garbage, a truncated value, and also an ESDK
 * message of another shape (V1, several data keys), which keypool never wrote. Never decrypts.
 */
export function inspectSealed(sealed: string): SealedInfo {
  const bytes = decodeSealed(sealed);
  return describeSealed(bytes ? SealedMessage.parse(bytes) : false);
}

/** What a parsed header says; the open path parses once and reads this from the same parse. */
function describeSealed(message: SealedMessage | false): SealedInfo {
  if (!message) return { sealed: false };
  const { suiteId, context, dataKey } = message.header;
  const { providerId, providerInfo } = dataKey;
  return {
    sealed: true,
    suiteId,
    context: { ...context },
    wrappedBy: [
      {
        provider: providerId,
        key:
          providerId === LOCAL_PROVIDER ? (LOCAL_KEY_NAME.exec(providerInfo)?.[0] ?? '(unrecognised)') : providerInfo,
      },
    ],
  };
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
 * The AWS Encryption SDK opener. Build it once per process (module scope in a Lambda) so its
 * cache of opened secrets serves every invocation of a warm container.
 */
export class EsdkOpener implements SecretOpener {
  readonly #current: HeldKey;
  readonly #held: readonly HeldKey[];
  readonly #cache: OpenedSecretCache | undefined;
  readonly #inFlight = new Map<string, Promise<string>>();
  readonly #stats: SealerStats = { seals: 0, opens: 0, cacheHits: 0, unwraps: 0 };

  constructor(options: EsdkSealerOptions) {
    const provider = kmsClientsOf(options.kms);
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

  /**
   * Seals with `seal` (under the current wrapping key); rejects with SealingUnavailable if KMS
   * fails. For EsdkSealer, which holds the encrypt side.
   */
  protected async sealWith(seal: SealMessage, secret: string, context: SealContext): Promise<string> {
    checkContext(context);
    if (typeof secret !== 'string' || secret.length === 0) throw new RangeError('there is no secret to seal');
    this.#stats.seals++;
    const plaintext = Buffer.from(secret, 'utf8');
    const failures: string[] = [];
    try {
      return (await seal(plaintext, exactContext(context), failures)).toString('base64');
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
    const message = bytes ? SealedMessage.parse(bytes) : false;
    const info = describeSealed(message);
    if (!message || !info.sealed) throw undecryptable('malformed');
    if (info.suiteId !== SEALING_SUITE) throw undecryptable('unexpected-algorithm');
    // Checked before any key is used (a ciphertext copied from another item costs no KMS call),
    // on the very header openSealedMessage then authenticates: a context edited to pass here fails there.
    if (!sameContext(info.context, exactContext(context))) throw undecryptable('context-mismatch');
    const holder = this.#held.find((held) => info.wrappedBy.some((ref) => sameRef(ref, held.ref)));
    // Sealed under a key this process does not hold: its configuration is wrong, not the key.
    if (!holder)
      throw new SealingMisconfigured(
        context,
        info.wrappedBy.map(shownRef),
        this.#held.map((held) => held.shown),
      );

    const failures: string[] = [];
    // One message, one data key, one matching wrapping key: exactly one unwrap (one KMS Decrypt).
    this.#stats.unwraps++;
    let plaintext: Buffer;
    try {
      // The ESDK's decrypt, check for check, over the one buffer (sealed-message.ts).
      plaintext = await openSealedMessage(
        message,
        (dataKey, headerContext) => holder.unwrap(dataKey, headerContext, failures),
        { maxBodySize: MAX_SEALED_BYTES },
      );
    } catch {
      // The refusal's text is for debugging, not for answers.
      if (failures.length > 0 && !failures.every((name) => CIPHERTEXT_ERRORS.has(name)))
        throw new SealingUnavailable('open', failures);
      throw undecryptable('authentication-failed');
    }
    try {
      return plaintext.toString('utf8');
    } finally {
      plaintext.fill(0);
    }
  }
}

/** An opener over its wrapping keys, with the default cache: what the wiring builds per process where nothing is sealed. */
export function createEsdkOpener(options: EsdkSealerOptions): EsdkOpener {
  return new EsdkOpener(options);
}
