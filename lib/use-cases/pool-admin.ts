/** The operator's use cases over pools: set a pool's policy, read one, list them. */
import { PoolNotFound } from '../domain/errors.js';
import type { PoolStore } from '../ports/pool-store.js';
import type { PoolDirectory } from './pool-directory.js';
import type { PoolPolicy, PoolSettings } from '../domain/types.js';

export interface PoolAdminOptions {
  poolStore: Pick<PoolStore, 'get' | 'put' | 'list'>;
  pools: PoolDirectory;
  clock?: () => number;
}

export class PoolAdmin {
  private readonly store: Pick<PoolStore, 'get' | 'put' | 'list'>;
  private readonly pools: PoolDirectory;
  private readonly clock: () => number;

  constructor(options: PoolAdminOptions) {
    this.store = options.poolStore;
    this.pools = options.pools;
    this.clock = options.clock ?? Date.now;
  }

  /** Creates the pool (defaults for what is not given) or changes only what is given. */
  async set(pool: string, settings: Partial<PoolSettings>): Promise<PoolPolicy> {
    const policy = await this.store.put(pool, settings, new Date(this.clock()).toISOString());
    this.pools.remember(policy);
    return policy;
  }

  /** The pool as stored now (an operator reads past the cache); PoolNotFound if there is none. */
  async get(pool: string): Promise<PoolPolicy> {
    const policy = await this.store.get(pool);
    if (!policy) throw new PoolNotFound(pool);
    return policy;
  }

  /** Every pool, by name. */
  list(): Promise<PoolPolicy[]> {
    return this.store.list();
  }
}
