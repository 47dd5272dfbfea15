/** A reshard's port: where each key of a pool sits in the usage order, and a move home. */
import type { KeyPageRead } from './key-pages.js';

/** Where a key sits in its pool's sharded usage order: what a reshard reads (never the secret). */
export interface KeyPlacement {
  keyId: string;
  pool: string;
  /** the shard it belongs in (its home) */
  shard: number;
  /** the shard whose index partition holds it now; undefined while it is out of the index */
  indexedIn: number | undefined;
}

/** A reshard's write: the key's home (and its index entry, if it has one) moves from `from` to `to`. */
export interface KeyMove {
  keyId: string;
  pool: string;
  /** the placement as read: the write applies only while the key is still exactly there */
  from: Pick<KeyPlacement, 'shard' | 'indexedIn'>;
  to: number;
}

export type KeyMoveResult =
  | { moved: true }
  /** the key moved or left (or entered) the index since it was read: `current` is where it is now (undefined: gone) */
  | { moved: false; current: KeyPlacement | undefined };

export interface ReshardStore {
  /** One page of the pool's keys in key-id order with where each sits in the usage order (a reshard's read). */
  placements(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyPlacement>>;
  /**
   * Moves one key to another shard, in one conditional write that applies only while the key
   * is where `from` says; never touches its count, its sort key or its lease slots.
   */
  rehome(move: KeyMove): Promise<KeyMoveResult>;
}
