/** A pool's keys a page at a time, in key-id order: what every sweep of a pool reads by. */
import type { StoredKey } from '../domain/types.js';

export interface KeyPageRead<K> {
  /** the page's keys in key-id order (a key deleted meanwhile is simply missing) */
  keys: K[];
  /** the last key id the page read when more may follow; undefined at the end of the pool */
  lastKeyId: string | undefined;
}

/** The pool's keys with their secrets, for the sweeps that open them (reseal, maintenance). */
export interface SecretPages {
  /** One page of the pool's keys with their secrets (maintenance asks the provider about each). */
  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>>;
}
