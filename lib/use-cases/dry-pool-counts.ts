/**
 * What a `no_usable_key` refusal says about its pool: the pool's keys counted by why a lease
 * cannot use them (lib/domain/dry-pool.ts), kept per pool in this process for at most a minute.
 *
 * Why a cache and not counters: counters kept where statuses change would add a second write
 * (to a per-pool counter item) to every lease that revives a rest, every completion that
 * reports, every maintenance change and every operator's change, and one hot counter item per
 * pool would throttle the pool's busiest writes; a key that is over the cap or whose rest ends
 * changes no status at all, so counters would need the same read anyway. The count is read
 * only on a refusal, at most once a minute per pool and process: a lease's cost stays flat,
 * and a pool that keeps refusing costs one paged read of its records a minute.
 *
 * Why a refusal does not wait for the count: the read is one page of 100 keys after another
 * (0.16 to 0.53 s per 1,000 keys on DynamoDB Local: npm run bench:dry-count), so in a pool of tens of thousands of keys the
 * first refusal of each process would take seconds, and past the lease function's timeout a
 * clean 409 would become a timeout. A refusal waits for the count at most waitMs; without it
 * the refusal answers without counts (as when the count cannot be read), and the read goes on
 * for the refusals after it. The read stops paging when its minute is up: a count that old
 * would serve nobody, and a process frozen between invocations (a Lambda's) resumes a read only
 * to end it.
 */
import { countKeys, type CountedKey, type DryPool, dryPool, type PoolCount } from '../domain/dry-pool.js';
import type { LeaseStore } from '../ports/lease-store.js';

/** How old a pool's count may be when a refusal answers with it. */
export const DRY_POOL_COUNT_MS = 60_000;
/** More pools than this and the least recently counted are forgotten first. */
export const DRY_POOL_COUNT_ENTRIES = 1_000;
/** How long a refusal waits for a count under way before it answers without one. */
export const DRY_POOL_WAIT_MS = 300;
/** Keys read per page of a count (one pool-keys query and one batch read each). */
const COUNT_PAGE = 100;

export interface DryPoolCountsOptions {
  store: Pick<LeaseStore, 'keyStates'>;
  clock?: () => number;
  ttlMs?: number;
  /** how long a refusal waits for a count under way (default DRY_POOL_WAIT_MS; Infinity: until the count ends) */
  waitMs?: number;
}

export class DryPoolCounts {
  private readonly store: Pick<LeaseStore, 'keyStates'>;
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly waitMs: number;
  /** per pool, the count being read or read (undefined: the read failed), and until when it serves; Map order is count order */
  private readonly cache = new Map<string, { count: Promise<PoolCount | undefined>; until: number }>();

  constructor(options: DryPoolCountsOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    this.ttlMs = options.ttlMs ?? DRY_POOL_COUNT_MS;
    this.waitMs = options.waitMs ?? DRY_POOL_WAIT_MS;
  }

  /**
   * Why the pool has no key for a lease under `maxUses`: from the pool's count if this process
   * took one less than ttlMs ago (refusals meanwhile, concurrent ones included, share it), else
   * from a new one. Undefined when the count could not be read: the refusal is answered without
   * it (and without a new try until ttlMs has passed, so a failing read costs no more), and
   * when the count is not there within waitMs: the read goes on, and serves the next refusals.
   */
  async dry(pool: string, maxUses: number): Promise<DryPool | undefined> {
    const nowMs = this.clock();
    let entry = this.cache.get(pool);
    if (!entry || entry.until <= nowMs) {
      const until = nowMs + this.ttlMs;
      entry = { count: this.read(pool, until).catch(() => undefined), until };
      this.cache.delete(pool);
      this.cache.set(pool, entry);
      if (this.cache.size > DRY_POOL_COUNT_ENTRIES) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
    }
    const count = await within(entry.count, this.waitMs);
    return count && dryPool(count, maxUses, this.clock());
  }

  /** One paged read of the pool's keys (their states only), counted as of its end; it gives up at `untilMs`. */
  private async read(pool: string, untilMs: number): Promise<PoolCount> {
    const keys: CountedKey[] = [];
    let after: string | undefined;
    do {
      if (this.clock() >= untilMs) throw new Error("a pool's count outlasted its time");
      const page = await this.store.keyStates(pool, COUNT_PAGE, after);
      keys.push(...page.keys);
      after = page.lastKeyId;
    } while (after !== undefined);
    return countKeys(keys, this.clock());
  }
}

/** What `value` settles to within `ms`, else undefined (`value` goes on by itself). */
async function within<T>(value: Promise<T>, ms: number): Promise<T | undefined> {
  // setTimeout would read Infinity as 1 ms.
  if (!Number.isFinite(ms)) return value;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([value, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
