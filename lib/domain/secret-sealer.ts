/**
 * The port for sealed secrets: a provider key is stored only as a ciphertext bound to the item
 * it belongs to (its pool and key id), and opened only where a key is handed out. The adapter
 * (lib/adapters/esdk-sealer.ts) does the cryptography; the domain sees strings and two errors.
 */
import { KeypoolError } from './errors.js';
import { KEY_ID_PATTERN } from './keys.js';
import { POOL_NAME_PATTERN } from './pool-name.js';

/**
 * What a sealed secret is bound to. Opening with any other context fails, so a ciphertext
 * copied onto another item (another key id or another pool) never opens there.
 */
export interface SealContext {
  pool: string;
  keyId: string;
}

export interface SecretSealer {
  /** Seals `secret` under the current wrapping key, bound to `context`; a compact string for storage. */
  seal(secret: string, context: SealContext): Promise<string>;
  /**
   * The secret, if `sealed` was sealed for exactly this `context` under a wrapping key the
   * sealer holds (current or previous). Rejects with SecretUndecryptable when the ciphertext
   * itself cannot be opened, and with SealingUnavailable when the key service failed (retry;
   * never mark the key undecryptable for that).
   */
  open(sealed: string, context: SealContext): Promise<string>;
  /**
   * True when `sealed` is not a ciphertext under the current wrapping key: sealed under a
   * previous key, under an unknown key, not a sealed value at all (a plain legacy secret) or
   * malformed. Reads the message header only: no decryption, no key-service call.
   */
  resealNeeded(sealed: string): Promise<boolean>;
}

/** Why a ciphertext could not be opened; never contains the secret or the ciphertext. */
export type UndecryptableReason =
  /** not a sealed message at all (bad base64, bad header, truncated) */
  | 'malformed'
  /** sealed with an algorithm suite this sealer does not write */
  | 'unexpected-algorithm'
  /** the header binds it to another pool or key id: it was copied from another item */
  | 'context-mismatch'
  /** none of the wrapping keys this sealer holds (current or previous) sealed it */
  | 'unknown-wrapping-key'
  /** a held wrapping key matched but authentication failed: tampered, or the key service refused the ciphertext */
  | 'authentication-failed';

/**
 * A stored ciphertext that cannot be opened, ever, with the keys configured: the lease path
 * must not hand this key out, and the key is shown as `undecryptable` until resealed or
 * re-imported. The message names the key id and pool (both public) and the reason only.
 */
export class SecretUndecryptable extends KeypoolError {
  readonly code = 'secret_undecryptable';
  /** the item, as far as it has the shape of a key id and a pool name (else a placeholder) */
  readonly context: SealContext;
  constructor(
    context: SealContext,
    readonly reason: UndecryptableReason,
  ) {
    const keyId = shownKeyId(context.keyId);
    const pool = shownPool(context.pool);
    super(
      `the secret of key ${keyId === NOT_AN_ID ? keyId : `"${keyId}"`} in pool ${pool === NOT_A_POOL ? pool : `"${pool}"`} cannot be decrypted (${reason})`,
    );
    // Kept on the error for the caller (status, metric per pool), so filtered like the message.
    this.context = { keyId, pool };
  }
}

/**
 * The Retry-After of a sealing_unavailable answer. KMS throttling clears within seconds (the
 * SDK has already retried it); a key that is disabled or unreachable needs an operator, whom
 * the 5xx alarm calls: a short wait serves the first without hammering during the second.
 */
export const SEALING_RETRY_AFTER_SECONDS = 5;

/**
 * The wrapping-key service (KMS) failed for a reason that is not the ciphertext's fault:
 * throttled, unreachable, access denied, key disabled. Retry or alarm; a key must not be
 * marked undecryptable because of this. `causes` holds service error names only (no messages).
 */
export class SealingUnavailable extends KeypoolError {
  readonly code = 'sealing_unavailable';
  /** how long the caller should wait before trying again (the answer's Retry-After) */
  readonly retryAfterSeconds = SEALING_RETRY_AFTER_SECONDS;
  constructor(
    readonly operation: 'seal' | 'open',
    readonly causes: readonly string[],
  ) {
    super(`the wrapping-key service failed during ${operation}${causes.length ? ` (${causes.join(', ')})` : ''}`);
  }
}

// Key ids and pool names are public, but a caller could pass a secret where one belongs: echo
// only values that have the shape of an id or a pool name.
const NOT_AN_ID = '(not a keypool id)';
const NOT_A_POOL = '(not a pool name)';
const shownKeyId = (keyId: string): string => (KEY_ID_PATTERN.test(keyId) ? keyId : NOT_AN_ID);
const shownPool = (pool: string): string => (POOL_NAME_PATTERN.test(pool) ? pool : NOT_A_POOL);
