/**
 * Taking a key whose secret cannot be opened out of its pool: what the lease path, reseal and
 * maintenance each do when an open fails for good.
 */
import type { UndecryptableReason } from '../domain/errors.js';

/** Marks a key whose secret cannot be opened; with `lease`, also ends that lease and refunds its use. */
export interface UndecryptableMark {
  keyId: string;
  pool: string;
  /** the ciphertext that failed to open: the mark applies only while the item still holds it */
  sealed: string;
  /** why it did not open: the status's reason */
  reason?: UndecryptableReason;
  /** when (ISO 8601): the status's time (default: now) */
  at?: string;
  /** the lease just written for it, still open (or, `proxied`, still holding the PROXIED mark) */
  lease?: { slot: number; nonce: string; proxied?: boolean };
}

export interface UndecryptableMarker {
  /**
   * Takes a key whose secret cannot be opened out of the pool (status undecryptable, set by
   * sealing) in one conditional write, keeping the status it had (`prior`) for a revive to
   * restore. False when the key holds another ciphertext, the lease is no longer open, or the
   * key is not in the pool.
   */
  markUndecryptable(mark: UndecryptableMark): Promise<boolean>;
}
