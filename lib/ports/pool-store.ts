/**
 * The port for pools' policies. The DynamoDB adapter (lib/adapters/dynamo-pool-store.ts) makes
 * each write one conditional request; every use case that names a pool reads it through
 * PoolDirectory (lib/use-cases/pool-directory.ts) or asks for the methods it needs.
 */
import type { PoolPolicy, PoolSettings } from '../domain/types.js';

/** Where pools' policies live. */
export interface PoolStore {
  get(pool: string): Promise<PoolPolicy | undefined>;
  /**
   * Creates the pool with the defaults for what `settings` leaves out, or changes only what
   * `settings` gives on an existing one; one conditional write, no read.
   */
  put(pool: string, settings: Partial<PoolSettings>, nowIso: string): Promise<PoolPolicy>;
  /** Creates the pool with the defaults if it does not exist; an existing one is left as it is. */
  ensure(pool: string, nowIso: string): Promise<PoolPolicy>;
  /** Every pool, by name. */
  list(): Promise<PoolPolicy[]>;
  /** Deletes the pool's record (its keys are the caller's to retire first); false when there is none. */
  remove(pool: string): Promise<boolean>;
  /**
   * Ends a pending reshard (previousShards removed): one conditional write that applies only
   * while the pool still has exactly these shards and previousShards; false otherwise.
   */
  finishReshard(pool: string, layout: { shards: number; previousShards: number }): Promise<boolean>;
}
