/** The import's port (KeyImport): a new key, sealed, written only where its id is not. */
import type { KeyRecord, StoredKey } from '../domain/types.js';

export interface ImportStore {
  /** Inserts a new key unless its id exists; returns the stored key (without its secret) either way. */
  insert(key: StoredKey): Promise<{ inserted: boolean; key: KeyRecord }>;
}
