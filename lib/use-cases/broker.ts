/**
 * Every use case behind one object, for callers that want them all: the CLI, the in-account
 * client and the tests. The Lambdas use Leasing, KeyAdmin or PoolAdmin directly, so each
 * bundles only its own part.
 */
import { AccountsView } from './accounts-view.js';
import { DryPoolCounts } from './dry-pool-counts.js';
import { KeyAdmin } from './key-admin.js';
import { KeyImport } from './key-import.js';
import type { KeyStore } from '../ports/key-store.js';
import type { PoolStore } from '../ports/pool-store.js';
import { Leasing, type LeasingOptions } from './leasing.js';
import { PoolAdmin } from './pool-admin.js';
import { PoolDirectory } from './pool-directory.js';
import { Retirement } from './retirement.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import type { AccountProvider } from '../ports/balance-provider.js';

export interface BrokerOptions extends Omit<LeasingOptions, 'pools' | 'sealer'> {
  store: KeyStore;
  poolStore: PoolStore;
  sealer: SecretSealer;
  /** how long a pool's policy is kept in memory (default POLICY_CACHE_MS) */
  policyCacheMs?: number;
  /** how long a refusal waits for its pool's count (default DRY_POOL_WAIT_MS; Infinity: the whole count) */
  dryPoolWaitMs?: number;
  importConcurrency?: number;
  /** asks the provider about a key before an import with `verify` stores it */
  verifier?: AccountProvider;
}

export class Broker {
  readonly pools: PoolDirectory;
  readonly leasing: Leasing;
  readonly keys: KeyAdmin;
  readonly keyImport: KeyImport;
  readonly poolAdmin: PoolAdmin;
  readonly retirement: Retirement;
  readonly lease: Leasing['lease'];
  readonly complete: Leasing['complete'];
  readonly increment: Leasing['increment'];
  readonly importKeys: KeyImport['importKeys'];
  readonly updateKey: KeyAdmin['update'];
  readonly enableDisabledBy: KeyAdmin['enableDisabledBy'];
  readonly list: KeyAdmin['list'];
  readonly listAll: KeyAdmin['listAll'];
  readonly setPool: PoolAdmin['set'];
  readonly getPool: PoolAdmin['get'];
  readonly listPools: PoolAdmin['list'];
  readonly retireKey: Retirement['retireKey'];
  readonly deletePool: Retirement['deletePool'];
  /** the pools' accounts (only with an account store) */
  readonly accounts: AccountsView | undefined;

  constructor(options: BrokerOptions) {
    const clock = options.clock ? { clock: options.clock } : {};
    this.pools = new PoolDirectory({
      store: options.poolStore,
      ...clock,
      ...(options.policyCacheMs === undefined ? {} : { ttlMs: options.policyCacheMs }),
    });
    this.leasing = new Leasing({
      ...options,
      pools: this.pools,
      dryPool: new DryPoolCounts({
        store: options.store,
        ...clock,
        ...(options.dryPoolWaitMs === undefined ? {} : { waitMs: options.dryPoolWaitMs }),
      }),
    });
    const accounts = options.accounts ? { accounts: options.accounts } : {};
    this.keys = new KeyAdmin({ store: options.store, pools: this.pools, ...clock, ...accounts });
    this.keyImport = new KeyImport({
      store: options.store,
      poolStore: options.poolStore,
      pools: this.pools,
      sealer: options.sealer,
      ...clock,
      ...accounts,
      ...(options.verifier ? { verifier: options.verifier } : {}),
      ...(options.importConcurrency === undefined ? {} : { importConcurrency: options.importConcurrency }),
    });
    this.poolAdmin = new PoolAdmin({ poolStore: options.poolStore, pools: this.pools, ...clock });
    this.retirement = new Retirement({
      store: options.store,
      poolStore: options.poolStore,
      pools: this.pools,
      ...clock,
    });
    this.lease = this.leasing.lease.bind(this.leasing);
    this.complete = this.leasing.complete.bind(this.leasing);
    this.increment = this.leasing.increment.bind(this.leasing);
    this.importKeys = this.keyImport.importKeys.bind(this.keyImport);
    this.updateKey = this.keys.update.bind(this.keys);
    this.enableDisabledBy = this.keys.enableDisabledBy.bind(this.keys);
    this.list = this.keys.list.bind(this.keys);
    this.listAll = this.keys.listAll.bind(this.keys);
    this.setPool = this.poolAdmin.set.bind(this.poolAdmin);
    this.getPool = this.poolAdmin.get.bind(this.poolAdmin);
    this.listPools = this.poolAdmin.list.bind(this.poolAdmin);
    this.retireKey = this.retirement.retireKey.bind(this.retirement);
    this.deletePool = this.retirement.deletePool.bind(this.retirement);
    this.accounts = options.accounts
      ? new AccountsView({ store: options.accounts, pools: this.pools, ...clock })
      : undefined;
  }
}
