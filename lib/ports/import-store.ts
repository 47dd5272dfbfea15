/** The import's port (KeyImport): a new key, sealed, written only where its id is not. */
import type { KeyRecord, StoredKey } from '../domain/types.js';

export interface ImportStore {
  /** Inserts a new key unless its id exists; returns the stored key (without its secret) either way. */
  insert(key: StoredKey): Promise<{ inserted: boolean; key: KeyRecord }>;
  /**
   * Brings a retired key back as `key` says (its pool, its new ciphertext, active, its home in
   * that pool), its count, lease slots and history kept: one conditional write that applies only
   * while the key is still retired in the pool it was seen in. Answers the key as it is then.
   */
  revive(key: StoredKey, seenPool: string): Promise<{ revived: boolean; key: KeyRecord | undefined }>;
  /**
   * Gives a key marked undecryptable in `key.pool` the ciphertext `key` holds (its secret sealed
   * anew for that pool and key id) and the status it had before the mark (`seen.prior`), its
   * count, lease slots and history kept: one conditional write that applies only while the key
   * is still marked as `seen` was. Answers the key as it is then.
   */
  replaceUndecryptable(key: StoredKey, seen: KeyRecord): Promise<{ replaced: boolean; key: KeyRecord | undefined }>;
}
