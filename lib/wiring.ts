/**
 * The composition root: the modules that build adapters from configuration. Every Lambda
 * entry point, the CLI and the local server get their use cases, stores, provider client and
 * migration sources here (and in lib/wiring-secrets.ts, for those that seal or open secrets),
 * and nowhere else constructs an SDK client.
 *
 * Each builder is a separate export, so a Lambda bundles only the adapters it asks for
 * (esbuild drops the rest); the `process*` builders memoize per process, which in Lambda
 * means once per container. The sealing library has module side effects esbuild cannot
 * drop, so what seals or opens lives in lib/wiring-secrets.ts: the list, counting and pools
 * functions import only this module and never bundle it.
 */
import type { DynamoCalls } from './adapters/dynamo-wire.js';
import { documentClient } from './adapters/dynamo-client.js';
import { DynamoAccountRecords } from './adapters/dynamo-account-records.js';
import { DynamoAccountStore } from './adapters/dynamo-account-store.js';
import { DynamoKeyAdminStore } from './adapters/dynamo-key-admin-store.js';
import { DynamoLeaseStore } from './adapters/dynamo-lease-store.js';
import { DynamoMaintenanceRunStore } from './adapters/dynamo-maintenance-run-store.js';
import { DynamoPoolStore } from './adapters/dynamo-pool-store.js';
import { type Config, readConfig } from './config.js';
import { reportBudgetHooks } from './observability/keypool-metrics.js';
import { metrics } from './observability/metrics.js';
import { AccountsView } from './use-cases/accounts-view.js';
import { KeyAdmin } from './use-cases/key-admin.js';
import { Overview } from './use-cases/overview.js';
import { Leasing } from './use-cases/leasing.js';
import type { SecretSealer } from './ports/secret-sealer.js';
import { PoolAdmin } from './use-cases/pool-admin.js';
import { PoolDirectory } from './use-cases/pool-directory.js';
import { Retirement } from './use-cases/retirement.js';

export type StoreConfig = Pick<Config, 'endpoint' | 'region' | 'tableName'>;

/** One of the DynamoDB stores of keypool's table (lib/adapters/dynamo-*-store.ts) over the configured table. */
export function tableStore<S>(
  Store: new (options: { client: DynamoCalls; tableName: string }) => S,
  config: StoreConfig,
  client: DynamoCalls = documentClient(config),
): S {
  return new Store({ client, tableName: config.tableName });
}

export interface ProcessTables {
  config: Config;
  /** the lease path's key store: lease, complete, count */
  leases: DynamoLeaseStore;
  pools: DynamoPoolStore;
  directory: PoolDirectory;
}

let processTablesOnce: ProcessTables | undefined;
/**
 * The process's stores over the table the environment names, and its one pool directory:
 * every use case of a process reads policies through it, so a pool one request just created
 * or changed serves the next at once (the local server runs every function in one process).
 */
export function processTables(): ProcessTables {
  return (processTablesOnce ??= (() => {
    const config = readConfig();
    const client = documentClient(config);
    const pools = tableStore(DynamoPoolStore, config, client);
    const leases = tableStore(DynamoLeaseStore, config, client);
    return { config, leases, pools, directory: new PoolDirectory({ store: pools }) };
  })());
}

let processAccountsOnce: DynamoAccountStore | undefined;
/**
 * The process's account store (accounts above keys: their records, and the writes that put an
 * account's state on its keys), over the process's client; built apart so a function that
 * never meets an account does not bundle it.
 */
export function processAccounts(): DynamoAccountStore {
  const { leases, config } = processTables();
  return (processAccountsOnce ??= new DynamoAccountStore({ client: leases.client, tableName: config.tableName }));
}

let processAccountRecordsOnce: DynamoAccountRecords | undefined;
/** The process's account records alone: what an import, an operator's change and a list read and write. */
export function processAccountRecords(): DynamoAccountRecords {
  const { leases, config } = processTables();
  return (processAccountRecordsOnce ??= new DynamoAccountRecords({
    client: leases.client,
    tableName: config.tableName,
  }));
}

let processKeysOnce: DynamoKeyAdminStore | undefined;
/**
 * The process's operator key store (import, status and count, retirements, list), over the
 * process's client: built apart from processTables so a function that only leases or counts
 * does not bundle it.
 */
export function processKeys(): DynamoKeyAdminStore {
  const { leases, config } = processTables();
  return (processKeysOnce ??= new DynamoKeyAdminStore({ client: leases.client, tableName: config.tableName }));
}

/** For a process that only counts: it never opens a secret, so it never loads a wrapping key. */
const NEVER_OPENS: Pick<SecretSealer, 'open'> = {
  open: () => Promise.reject(new Error('this process counts uses only; leases are granted by the lease function')),
};

let processCountingOnce: Pick<Leasing, 'complete' | 'increment'> | undefined;
/** The process's counting use cases: complete a lease, count a use (built on first use; never opens a secret). */
export function processCounting(): Pick<Leasing, 'complete' | 'increment'> {
  return (processCountingOnce ??= new Leasing({
    store: processTables().leases,
    pools: processTables().directory,
    sealer: NEVER_OPENS,
    accounts: processAccounts(),
    ...reportBudgetHooks(metrics),
  }));
}

let processKeyAdminOnce: KeyAdmin | undefined;
/** The process's operator use cases over keys: status, count, list (built on first use; never seals or opens). */
export function processKeyAdmin(): KeyAdmin {
  return (processKeyAdminOnce ??= new KeyAdmin({
    store: processKeys(),
    pools: processTables().directory,
    accounts: processAccountRecords(),
  }));
}

let processAccountsViewOnce: AccountsView | undefined;
/** The process's view of pools' accounts (built on first use; never a secret). */
export function processAccountsView(): AccountsView {
  return (processAccountsViewOnce ??= new AccountsView({ store: processAccounts(), pools: processTables().directory }));
}

let processPoolAdminOnce: PoolAdmin | undefined;
/** The process's operator use cases over pools (built on first use). */
export function processPoolAdmin(): PoolAdmin {
  return (processPoolAdminOnce ??= new PoolAdmin({
    poolStore: processTables().pools,
    pools: processTables().directory,
  }));
}

let processRetirementOnce: Retirement | undefined;
/** The process's retirements of keys and pools (built on first use; never seals or opens). */
export function processRetirement(): Retirement {
  return (processRetirementOnce ??= new Retirement({
    store: processKeys(),
    poolStore: processTables().pools,
    pools: processTables().directory,
  }));
}

/**
 * The console's reads over the configured table (the CLI's configuration: the local stack, or a
 * deployed table with the operator's credentials): pools, keys, maintenance runs; never a secret.
 */
export function overview(config: StoreConfig): Overview {
  const client = documentClient(config);
  const pools = tableStore(DynamoPoolStore, config, client);
  const keys = tableStore(DynamoKeyAdminStore, config, client);
  return new Overview({
    pools,
    keys,
    keyAdmin: new KeyAdmin({
      store: keys,
      pools: new PoolDirectory({ store: pools }),
      accounts: tableStore(DynamoAccountStore, config, client),
    }),
    runs: tableStore(DynamoMaintenanceRunStore, config, client),
  });
}
