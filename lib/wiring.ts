/**
 * The composition root: the one module that builds adapters from configuration. Every Lambda
 * entry point, the CLI and the local server get their broker, stores, provider client and
 * migration sources here, and nowhere else constructs an SDK client.
 *
 * Each builder is a separate export, so a Lambda bundles only the adapters it asks for
 * (esbuild drops the rest); the `process*` builders memoize per process, which in Lambda
 * means once per container.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from './adapters/dynamo-client.js';
import { DynamoBalanceStore } from './adapters/dynamo-balance-store.js';
import { DynamoKeyStore } from './adapters/dynamo-key-store.js';
import { DynamoMigrationStore } from './adapters/dynamo-migration-store.js';
import { DynamoPoolStore } from './adapters/dynamo-pool-store.js';
import { fileSource, legacyTableSource, s3Source } from './adapters/migration-sources.js';
import { StabilityClient } from './adapters/stability-client.js';
import { type Config, type MaintenanceConfig, readConfig, readMaintenanceConfig } from './config.js';
import { Broker } from './domain/broker.js';
import { KeyAdmin } from './domain/key-admin.js';
import type { PoolStore } from './domain/key-store.js';
import { Leasing } from './domain/leasing.js';
import { PoolAdmin } from './domain/pool-admin.js';
import { PoolDirectory } from './domain/pool-directory.js';
import type { CliConfig, CliServices } from './cli/framework.js';
import type { MaintenanceDeps } from './maintenance/maintain.js';
import type { MigrationSources } from './migration/migrate.js';
import type { MigrationStore } from './migration/migration-store.js';

export type StoreConfig = Pick<Config, 'endpoint' | 'region' | 'tableName'>;

/** The DynamoDB key store over the configured table. */
export function keyStore(config: StoreConfig, client: DynamoDBDocumentClient = documentClient(config)): DynamoKeyStore {
  return new DynamoKeyStore({ client, tableName: config.tableName });
}

/** The DynamoDB pool store over the configured table. */
export function poolStore(config: StoreConfig, client: DynamoDBDocumentClient = documentClient(config)): DynamoPoolStore {
  return new DynamoPoolStore({ client, tableName: config.tableName });
}

/** A broker (every use case) over the configured table. */
export function broker(config: StoreConfig): Broker {
  const client = documentClient(config);
  return new Broker({ store: keyStore(config, client), poolStore: poolStore(config, client) });
}

/** What maintenance reads and writes through: the key table and the provider's balance endpoint. */
export function maintenanceDeps(
  config: StoreConfig,
  settings: MaintenanceConfig,
  warn?: (message: string, attributes: Record<string, unknown>) => void,
): MaintenanceDeps {
  const client = documentClient(config);
  return {
    pools: poolStore(config, client),
    keys: keyStore(config, client),
    balances: new DynamoBalanceStore({ client, tableName: config.tableName }),
    provider: new StabilityClient({ baseUrl: settings.providerBaseUrl, ...(warn ? { warn } : {}) }),
  };
}

/** The migration's store and its sources (a file, an S3 object, a legacy table) over the configured endpoint. */
export function migration(config: StoreConfig): { store: MigrationStore; pools: PoolStore; sources: MigrationSources } {
  const client = documentClient(config);
  let s3: S3Client | undefined;
  return {
    store: new DynamoMigrationStore({ client, tableName: config.tableName }),
    pools: poolStore(config, client),
    sources: {
      file: (path) => fileSource(path),
      s3: (bucket, key) => s3Source((s3 ??= new S3Client(config.region ? { region: config.region } : {})), bucket, key),
      table: (tableName) => legacyTableSource(client, tableName),
    },
  };
}

let processTablesOnce: { keys: DynamoKeyStore; pools: DynamoPoolStore; directory: PoolDirectory } | undefined;
/**
 * The process's stores over the table the environment names, and its one pool directory:
 * every use case of a process reads policies through it, so a pool one request just created
 * or changed serves the next at once (the local server runs every function in one process).
 */
function processTables(): { keys: DynamoKeyStore; pools: DynamoPoolStore; directory: PoolDirectory } {
  return (processTablesOnce ??= (() => {
    const config = readConfig();
    const client = documentClient(config);
    const pools = poolStore(config, client);
    return { keys: keyStore(config, client), pools, directory: new PoolDirectory({ store: pools }) };
  })());
}

let processLeasingOnce: Leasing | undefined;
/** The process's client use cases: lease, complete, count (built on first use). */
export function processLeasing(): Leasing {
  return (processLeasingOnce ??= new Leasing({ store: processTables().keys, pools: processTables().directory }));
}

let processKeyAdminOnce: KeyAdmin | undefined;
/** The process's operator use cases over keys (built on first use). */
export function processKeyAdmin(): KeyAdmin {
  return (processKeyAdminOnce ??= new KeyAdmin({ store: processTables().keys, poolStore: processTables().pools, pools: processTables().directory }));
}

let processPoolAdminOnce: PoolAdmin | undefined;
/** The process's operator use cases over pools (built on first use). */
export function processPoolAdmin(): PoolAdmin {
  return (processPoolAdminOnce ??= new PoolAdmin({ poolStore: processTables().pools, pools: processTables().directory }));
}

let processMaintenanceOnce: { deps: MaintenanceDeps; settings: MaintenanceConfig } | undefined;
/** The process's maintenance dependencies and settings from the environment (built on first use). */
export function processMaintenance(warn: (message: string, attributes: Record<string, unknown>) => void): { deps: MaintenanceDeps; settings: MaintenanceConfig } {
  return (processMaintenanceOnce ??= (() => {
    const settings = readMaintenanceConfig();
    return { deps: maintenanceDeps(readConfig(), settings, warn), settings };
  })());
}

let processMigrationOnce: ReturnType<typeof migration> | undefined;
/** The process's migration store and sources from the environment (built on first use). */
export function processMigration(): ReturnType<typeof migration> {
  return (processMigrationOnce ??= migration(readConfig()));
}

/** The CLI's services over the configuration it resolved; each is built on first use. */
export function cliServices(config: CliConfig): CliServices {
  let brokerOnce: Broker | undefined;
  let maintenanceOnce: ReturnType<CliServices['maintenance']> | undefined;
  let migrationOnce: ReturnType<typeof migration> | undefined;
  return {
    broker: () => (brokerOnce ??= broker(config)),
    maintenance: () =>
      (maintenanceOnce ??= (() => {
        const settings = readMaintenanceConfig();
        // Per-key problems are in the command's summary; the provider client's warnings would only repeat them.
        return { settings, deps: maintenanceDeps(config, settings, () => undefined) };
      })()),
    migration: () => (migrationOnce ??= migration(config)),
  };
}
