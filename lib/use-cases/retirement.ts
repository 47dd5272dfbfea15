/**
 * The operator's retirements: a key no longer wanted, or a whole pool. A retired key is never
 * leased again and its secret is destroyed; its record (id, masked key, counts, who retired it
 * and when) stays for the audit, listed with its pool's keys. Only an import with `revive`
 * brings one back (KeyImport).
 */
import { KeyNotFound, KeyNotSealed, MAX_COUNTED_KEYS, PoolNotEmpty, PoolNotFound } from '../domain/errors.js';
import { KEY_ID_PATTERN, toKeyView } from '../domain/keys.js';
import type { KeyRecord, KeyView } from '../domain/types.js';
import type { KeyAdminStore, Retirement as RetirementWrite } from '../ports/key-admin-store.js';
import type { PoolStore } from '../ports/pool-store.js';
import { mapLimit } from '../shared/map-limit.js';
import type { PoolDirectory } from './pool-directory.js';

export interface RetirementOptions {
  store: Pick<KeyAdminStore, 'retire' | 'poolKeys'>;
  poolStore: Pick<PoolStore, 'remove'>;
  pools: PoolDirectory;
  clock?: () => number;
  /** keys retired at once when a pool is deleted with its keys */
  concurrency?: number;
}

/** What deleting a pool did. */
export interface PoolDeletion {
  pool: string;
  deleted: true;
  /** keys this deletion retired (keys retired before are not counted) */
  retiredKeys: number;
}

/** Keys read per page while a pool is deleted. */
const PAGE = 100;

export class Retirement {
  private readonly store: RetirementOptions['store'];
  private readonly poolStore: RetirementOptions['poolStore'];
  private readonly pools: PoolDirectory;
  private readonly clock: () => number;
  private readonly concurrency: number;

  constructor(options: RetirementOptions) {
    this.store = options.store;
    this.poolStore = options.poolStore;
    this.pools = options.pools;
    this.clock = options.clock ?? Date.now;
    this.concurrency = options.concurrency ?? 8;
  }

  /**
   * Retires one key of the pool (one conditional write: RetirementWrite). A key retired already
   * is answered as it is, retired when it first was; KeyNotFound when the pool has no such key.
   */
  async retireKey(pool: string, keyId: string): Promise<KeyView> {
    await this.pools.require(pool);
    if (!KEY_ID_PATTERN.test(keyId)) throw new KeyNotFound(keyId);
    const result = await this.store.retire(this.write(pool, keyId, 'retired'));
    const key = result.retired ? result.key : result.current;
    if (!key) throw new KeyNotFound(keyId);
    if (key.status !== 'retired') throw new KeyNotSealed([keyId]);
    return toKeyView(key, this.clock());
  }

  /**
   * Deletes the pool's record. A pool that holds keys not retired is refused (PoolNotEmpty)
   * unless `retireKeys`: then each of them is retired first (kept, with its pool's name, for the
   * audit); a key still in plain text cannot be (KeyNotSealed: the pool stays, its other keys
   * retired). Leases of the pool are refused from then on (pool_not_found) and its retired keys
   * stay listed once the pool is created again. An import into the pool meanwhile creates it
   * again: keys it adds are not retired (each import lands whole, before or after).
   */
  async deletePool(pool: string, options: { retireKeys?: boolean } = {}): Promise<PoolDeletion> {
    await this.pools.require(pool);
    let retiredKeys = 0;
    let notRetired = 0;
    const unsealed: string[] = [];
    let after: string | undefined;
    do {
      const page = await this.store.poolKeys(pool, PAGE, after);
      const live = page.keys.filter((key) => key.status !== 'retired');
      if (options.retireKeys) {
        const done = await mapLimit(live, this.concurrency, (key: KeyRecord) =>
          this.store.retire(this.write(pool, key.keyId, 'pool_deleted')),
        );
        retiredKeys += done.filter((result) => result.retired).length;
        for (const result of done)
          if (!result.retired && result.current && result.current.status !== 'retired')
            unsealed.push(result.current.keyId);
      } else notRetired += live.length;
      after = page.lastKeyId;
    } while (after !== undefined && notRetired < MAX_COUNTED_KEYS);
    if (notRetired > 0) throw new PoolNotEmpty(pool, notRetired);
    if (unsealed.length > 0) throw new KeyNotSealed(unsealed);
    if (!(await this.poolStore.remove(pool))) throw new PoolNotFound(pool);
    this.pools.forget(pool);
    return { pool, deleted: true, retiredKeys };
  }

  private write(pool: string, keyId: string, reason: RetirementWrite['reason']): RetirementWrite {
    return { keyId, pool, reason, at: new Date(this.clock()).toISOString() };
  }
}
