/**
 * Pools' policies as the use cases read them: from the PoolStore, kept for a short while in
 * memory so the hot path (a lease) makes no extra read. A policy change reaches a warm
 * process within `ttlMs` (default 10 s; docs/leasing.md). A pool that does not
 * exist is never remembered: it is read again on the next request, so a pool created a
 * moment ago is found at once.
 */
import { PoolNotFound } from '../domain/errors.js';
import type { PoolStore } from '../ports/pool-store.js';
import type { PoolPolicy } from '../domain/types.js';

export const POLICY_CACHE_MS = 10_000;
/** More pools than this and the least recently read are forgotten first. */
export const POLICY_CACHE_ENTRIES = 1_000;

export interface PoolDirectoryOptions {
  store: Pick<PoolStore, 'get'>;
  clock?: () => number;
  ttlMs?: number;
}

export class PoolDirectory {
  private readonly store: Pick<PoolStore, 'get'>;
  private readonly clock: () => number;
  private readonly ttlMs: number;
  /** Map order is read order: the first entry is the least recently read. */
  private readonly cache = new Map<string, { policy: PoolPolicy; until: number }>();

  constructor(options: PoolDirectoryOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    this.ttlMs = options.ttlMs ?? POLICY_CACHE_MS;
  }

  /** The pool's policy; PoolNotFound if there is no such pool. */
  async require(pool: string): Promise<PoolPolicy> {
    const nowMs = this.clock();
    const cached = this.cache.get(pool);
    if (cached && cached.until > nowMs) {
      this.cache.delete(pool);
      this.cache.set(pool, cached);
      return cached.policy;
    }
    const policy = await this.store.get(pool);
    if (!policy) {
      this.cache.delete(pool);
      throw new PoolNotFound(pool);
    }
    this.remember(policy, nowMs);
    return policy;
  }

  /** Forgets a pool this process just deleted: the next request reads it again (and finds none). */
  forget(pool: string): void {
    this.cache.delete(pool);
  }

  /** Remembers a policy this process just wrote or read, so it serves the next request. */
  remember(policy: PoolPolicy, nowMs: number = this.clock()): void {
    this.cache.delete(policy.pool);
    this.cache.set(policy.pool, { policy, until: nowMs + this.ttlMs });
    if (this.cache.size > POLICY_CACHE_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}
