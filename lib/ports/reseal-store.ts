/** `keypool reseal`'s port: every secret of a pool read, and replaced only where it is still as read. */
import type { KeyStatus, StatusStamp } from '../domain/types.js';
import type { SecretPages } from './key-pages.js';
import type { UndecryptableMarker } from './undecryptable.js';

/** `keypool reseal`'s write: the secret as found is replaced by one sealed under the current key. */
export interface SecretReplacement {
  keyId: string;
  pool: string;
  /** the stored form as read: the write applies only while the item still holds exactly this */
  from: { secret: string; sealed: boolean };
  sealed: string;
  /** an undecryptable key that opened again: back to the status it had before (`prior`) */
  revive: boolean;
  /** for a revive: the status the key had before it was marked, as read (none: marked before it was kept; active) */
  prior?: StatusStamp;
  /**
   * For a secret still in plain text: the key's status as read. When that status keeps a key in
   * the usage index, the write puts the key back there (a lease that met it set it aside), and
   * it applies only while the status is still this one.
   */
  seenStatus?: KeyStatus;
  /** for a secret still in plain text: its mask, written where the item has none (items from before keys kept one) */
  maskedKey?: string;
}

export interface ResealStore extends SecretPages, UndecryptableMarker {
  /** Replaces a key's stored secret, conditioned on what was read; false if it changed meanwhile. */
  replaceSecret(replacement: SecretReplacement): Promise<boolean>;
}
