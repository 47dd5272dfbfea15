/**
 * Taking a key whose secret cannot be opened out of its pool: what the lease path, reseal and
 * maintenance each do when an open fails for good.
 */

/** Marks a key whose secret cannot be opened; with `lease`, also ends that lease and refunds its use. */
export interface UndecryptableMark {
  keyId: string;
  pool: string;
  /** the ciphertext that failed to open: the mark applies only while the item still holds it */
  sealed: string;
  lease?: { slot: number; nonce: string };
}

export interface UndecryptableMarker {
  /** Takes a key whose secret cannot be opened out of the pool (status undecryptable), in one conditional write. */
  markUndecryptable(mark: UndecryptableMark): Promise<boolean>;
}
