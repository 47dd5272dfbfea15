/** A pool's keys a page at a time, in key-id order: what every sweep of a pool reads by. */
import type { StoredKey } from '../domain/types.js';

export interface KeyPageRead<K> {
  /** the page's keys in key-id order (a key deleted meanwhile is simply missing) */
  keys: K[];
  /** the last key id the page read when more may follow; undefined at the end of the pool */
  lastKeyId: string | undefined;
}

/**
 * The pool's keys with their secrets, for the sweeps that open them (reseal, maintenance). A
 * retired key has no secret any more: it is in no such page, so no sweep looks at it.
 */
export interface SecretPages {
  /** One page of the pool's keys with their secrets, retired keys left out (a page may hold fewer than `limit`). */
  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>>;
}
