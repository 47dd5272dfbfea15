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

/**
 * What deleting a pool did: the pool deleted, or, when the request's deadline came first, how
 * far its keys' retirement got (the pool stays; the same request again goes on from there).
 */
export type PoolDeletion =
  | {
      pool: string;
      deleted: true;
      /** keys this request retired (keys retired before are not counted) */
      retiredKeys: number;
    }
  | {
      pool: string;
      deleted: false;
      /** keys this request retired */
      retiredKeys: number;
      /** keys of the pool not retired yet, counted after the request stopped retiring (up to MAX_COUNTED_KEYS past where it stopped) */
      remainingKeys: number;
    };

export interface PoolDeletionOptions {
  /** retire each key of the pool first, rather than refusing a pool that holds keys not retired */
  retireKeys?: boolean;
  /**
   * with retireKeys: no page of keys is read and no retirement starts after this moment (ms
   * since the epoch, by the clock), from the request's start, whatever it has or has not
   * retired; absent, every key is retired in this one call
   */
  deadlineMs?: number;
}

/** The longest a request through the API spends retiring a pool's keys: well under API Gateway's 29 s. */
export const POOL_DELETION_BUDGET_MS = 20_000;
/** Kept back from the function's time left: the retirements in flight, the count of what remains, the answer. */
export const POOL_DELETION_RESERVE_MS = 5_000;

/** The deadline of a pool's deletion through the API, from the function's time left (ms). */
export function poolDeletionDeadline(nowMs: number, remainingMs: number): number {
  return nowMs + Math.min(POOL_DELETION_BUDGET_MS, remainingMs - POOL_DELETION_RESERVE_MS);
}

/** Keys read per page while a pool's keys are retired. */
const PAGE = 100;
/** Keys read per page while a pool's keys not retired are only counted (one Query, then batch reads). */
const COUNT_PAGE = 1000;

/** How many of `keys` are not retired. */
const notRetired = (keys: readonly KeyRecord[]): number => keys.filter((key) => key.status !== 'retired').length;

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
   * audit); a key still in plain text cannot be (KeyNotSealed: the pool stays, the other keys it
   * reached retired). With a `deadlineMs` that comes before every key is retired, the pool stays
   * and the answer says how many keys remain (`deleted: false`), unless the request met a key in
   * plain text (KeyNotSealed: no request goes past it before a reseal); calling again goes on
   * where it stopped (keys retired already are skipped, and each is retired once by its
   * conditional write).
   * Leases of the pool are refused from then on (pool_not_found) and its retired keys stay
   * listed once the pool is created again. An import into the pool meanwhile creates it again:
   * keys it adds are not retired (each import lands whole, before or after).
   */
  async deletePool(pool: string, options: PoolDeletionOptions = {}): Promise<PoolDeletion> {
    await this.pools.require(pool);
    let retiredKeys = 0;
    if (options.retireKeys) {
      const walk = await this.retireAll(pool, options.deadlineMs);
      retiredKeys = walk.retired;
      // Before the deadline's answer: a request stopped among keys in plain text would stop
      // there again each time it is sent, however often, until a reseal.
      if (walk.unsealed.length > 0) throw new KeyNotSealed(walk.unsealed);
      if (walk.remaining !== undefined) return { pool, deleted: false, retiredKeys, remainingKeys: walk.remaining };
    } else {
      const left = await this.countNotRetired(pool, MAX_COUNTED_KEYS);
      if (left > 0) throw new PoolNotEmpty(pool, left);
    }
    if (!(await this.poolStore.remove(pool))) throw new PoolNotFound(pool);
    this.pools.forget(pool);
    return { pool, deleted: true, retiredKeys };
  }

  /**
   * Retires the pool's keys a page at a time, until the end of the pool or the deadline: from
   * the start, no page is read and no retirement starts after it, so a pool whose keys this
   * request cannot retire (in plain text, retired already) is bounded as one it retires.
   * `remaining`: the keys not retired when it stopped at the deadline; undefined at the end.
   */
  private async retireAll(
    pool: string,
    deadlineMs: number | undefined,
  ): Promise<{ retired: number; unsealed: string[]; remaining?: number }> {
    let retired = 0;
    const unsealed: string[] = [];
    const late = (): boolean => deadlineMs !== undefined && this.clock() >= deadlineMs;
    /** Stopped at the deadline: `skipped` keys of its last page not tried, the rest read from `after` (undefined: the start). */
    const stop = async (skipped: number, after: string | undefined) => {
      // Past the deadline, within the time kept back for the answer: one page of the rest, as a
      // rest of any size must not be read now (a larger rest is counted over its first 1,000
      // keys). A rest with nothing to retire in it is the end of the pool after all.
      const rest = await this.store.poolKeys(pool, MAX_COUNTED_KEYS, after);
      const remaining = skipped + notRetired(rest.keys);
      return remaining === 0 && rest.lastKeyId === undefined ? { retired, unsealed } : { retired, unsealed, remaining };
    };
    let after: string | undefined;
    for (;;) {
      if (late()) return stop(0, after);
      const page = await this.store.poolKeys(pool, PAGE, after);
      const live = page.keys.filter((key) => key.status !== 'retired');
      const done = await mapLimit(live, this.concurrency, async (key: KeyRecord) => {
        if (late()) return undefined;
        const result = await this.store.retire(this.write(pool, key.keyId, 'pool_deleted'));
        if (result.retired) retired++;
        return result;
      });
      for (const result of done)
        if (result && !result.retired && result.current && result.current.status !== 'retired')
          unsealed.push(result.current.keyId);
      const skipped = done.filter((result) => result === undefined).length;
      if (page.lastKeyId === undefined)
        return skipped > 0 ? { retired, unsealed, remaining: skipped } : { retired, unsealed };
      after = page.lastKeyId;
      if (skipped > 0) return stop(skipped, after);
    }
  }

  /** The pool's keys not retired, counted up to `cap`: a refusal's count reads no further. */
  private async countNotRetired(pool: string, cap: number): Promise<number> {
    let count = 0;
    let from: string | undefined;
    do {
      const page = await this.store.poolKeys(pool, COUNT_PAGE, from);
      count += notRetired(page.keys);
      from = page.lastKeyId;
    } while (from !== undefined && count < cap);
    return count;
  }

  private write(pool: string, keyId: string, reason: RetirementWrite['reason']): RetirementWrite {
    return { keyId, pool, reason, at: new Date(this.clock()).toISOString() };
  }
}
