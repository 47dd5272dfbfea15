/**
 * The port for sealed secrets: a provider key is stored only as a ciphertext bound to the item
 * it belongs to (its pool and key id), and opened only where a key is handed out. The adapter
 * (lib/adapters/esdk-sealer.ts) does the cryptography; the domain sees strings and three errors
 * (SecretUndecryptable, SealingMisconfigured, SealingUnavailable in ../domain/errors.ts).
 */
import type { SealContext } from '../domain/types.js';

export interface SecretSealer {
  /** Seals `secret` under the current wrapping key, bound to `context`; a compact string for storage. */
  seal(secret: string, context: SealContext): Promise<string>;
  /**
   * The secret, if `sealed` was sealed for exactly this `context` under a wrapping key the
   * sealer holds (current or previous). Rejects with SecretUndecryptable when the ciphertext
   * itself cannot be opened (malformed, another item's, or failing authentication under a held
   * key), with SealingMisconfigured when it was sealed under a wrapping key the sealer does not
   * hold (a wrong setting: change nothing), and with SealingUnavailable when the key service
   * failed (retry). Only SecretUndecryptable is a verdict on the key.
   */
  open(sealed: string, context: SealContext): Promise<string>;
  /**
   * True when `sealed` is not a ciphertext under the current wrapping key: sealed under a
   * previous key, under an unknown key, not a sealed value at all (a plain legacy secret) or
   * malformed. Reads the message header only: no decryption, no key-service call.
   */
  resealNeeded(sealed: string): Promise<boolean>;
}

/** What a process that only opens holds (lease, maintenance): no seal. */
export type SecretOpener = Pick<SecretSealer, 'open' | 'resealNeeded'>;
