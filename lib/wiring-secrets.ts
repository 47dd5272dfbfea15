/**
 * The composition root's part for what seals or opens secrets: the sealer from configuration
 * (a KMS key on AWS, a key file locally), and the use cases that need it (lease, import,
 * maintenance, migration, the CLI). Kept apart from lib/wiring.ts so that only the functions
 * that seal or open bundle the sealing library.
 */
import { lstat } from 'node:fs/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { documentClient, dynamoClient } from './adapters/dynamo-client.js';
import { DynamoBalanceStore } from './adapters/dynamo-balance-store.js';
import { DynamoKeyAdminStore } from './adapters/dynamo-key-admin-store.js';
import { DynamoKeyStore } from './adapters/dynamo-key-store.js';
import { DynamoMaintenanceRunStore } from './adapters/dynamo-maintenance-run-store.js';
import { DynamoMigrationStore } from './adapters/dynamo-migration-store.js';
import { DynamoPoolStore } from './adapters/dynamo-pool-store.js';
import { fileSource, legacyTableSource, s3Source } from './adapters/migration-sources.js';
import { dataDirKeyFile, loadOrCreateLocalSealingKey, UnsafeSealingKeyFile } from './adapters/local-sealing-key.js';
import { LazyOpener, LazySealer } from './adapters/lazy-sealer.js';
import { type WrappingKeySource, wrappingKeysOf } from './adapters/sealer-factory.js';
import { createEsdkOpener, type EsdkSealerOptions } from './adapters/esdk-opener.js';
import { createEsdkSealer } from './adapters/esdk-sealer.js';
import { StabilityClient, type StabilityClientOptions } from './adapters/stability-client.js';
import { DynamoAccountStore } from './adapters/dynamo-account-store.js';
import {
  type Config,
  ConfigError,
  defaultDataDir,
  localDataDir,
  type MaintenanceConfig,
  readConfig,
  readMaintenanceConfig,
  readSealingConfig,
  SEALING_ENV,
} from './config.js';
import { Broker } from './use-cases/broker.js';
import { KeyImport } from './use-cases/key-import.js';
import type { PoolStore } from './ports/pool-store.js';
import type { AccountProvider } from './ports/balance-provider.js';
import { DryPoolCounts } from './use-cases/dry-pool-counts.js';
import { Leasing } from './use-cases/leasing.js';
import type { SecretOpener, SecretSealer } from './ports/secret-sealer.js';
import type { CliConfig, CliServices } from './cli/framework.js';
import type { MaintenanceDeps } from './use-cases/maintenance/maintain.js';
import type { MigrationSources } from './ports/migration-source.js';
import type { MigrationStore } from './ports/migration-store.js';
import { leaseLogHooks } from './observability/lease-log.js';
import { startConsole } from './console/server.js';
import {
  overview,
  processAccountRecords,
  processAccounts,
  processKeys,
  processTables,
  type StoreConfig,
  tableStore,
} from './wiring.js';

/**
 * Where the wrapping keys come from: the environment's KMS key or key file; with neither, a
 * local stack (an endpoint is set) uses its data dir's key, and AWS is a configuration error:
 * keypool never stores a secret it cannot seal.
 */
export function wrappingKeySource(
  config: Pick<Config, 'endpoint'>,
  env: NodeJS.ProcessEnv = process.env,
): WrappingKeySource {
  const sealing = readSealingConfig(env);
  if (sealing) return sealing;
  if (config.endpoint) return { kind: 'data-dir', dataDir: localDataDir(env) };
  throw new ConfigError(
    `no wrapping key for sealed secrets: set ${SEALING_ENV.keyArn} to the secrets key's ARN (the stack's SecretsKeyArn output), or ${SEALING_ENV.keyFile} to a local key file`,
  );
}

/** Whether a file (or anything) is at `path`; a symbolic link counts (reading the key refuses it). */
async function present(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * For the local stack (`npm start`): the wrapping key its handlers seal with. A key the
 * environment names is read now, so a missing or unsafe file stops the start. Else the data
 * dir's key file, which is created (mode 0600) only for a table that holds no sealed key: over
 * a table that does, a new key would open none of them, so the start is refused with a message
 * naming the file it wants. The file is then named in the environment, so every handler of the
 * process reads it. Says which key, for the start banner.
 */
export async function prepareLocalSealing(config: StoreConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const configured = readSealingConfig(env);
  if (configured?.kind === 'kms') return `KMS key ${configured.keyArn}`;
  if (configured) {
    await sealer(config, env).ready();
    return `key file ${configured.keyFile}`;
  }
  const dataDir = localDataDir(env);
  const keyFile = dataDirKeyFile(dataDir);
  if (!(await present(keyFile)) && (await tableStore(DynamoKeyAdminStore, config).holdsSealedKey())) {
    throw new ConfigError(
      `table "${config.tableName}" at ${config.endpoint ?? 'AWS'} holds sealed keys, but there is no sealing key at ${keyFile}: start with the data dir (KEYPOOL_DATA_DIR) or the key file (${SEALING_ENV.keyFile}) whose key sealed them. A new key would open none of them, so one is created only for a table with no sealed key`,
    );
  }
  const local = await loadOrCreateLocalSealingKey(dataDir);
  env[SEALING_ENV.keyFile] = local.path;
  return `key file ${local.path} (${local.created ? 'created now' : 'existing'}, mode 0600; back it up with the data: without it the stored keys cannot be decrypted)`;
}

/**
 * A key file that is missing or unsafe, as the ConfigError it is (a setting to fix, exit 2 for
 * the CLI): one line naming the file and where the path came from. Undefined for other errors.
 */
function keyFileError(error: unknown, source: WrappingKeySource, env: NodeJS.ProcessEnv): ConfigError | undefined {
  if (error instanceof UnsafeSealingKeyFile) return new ConfigError(error.message);
  const missing = error as NodeJS.ErrnoException;
  if (missing.code !== 'ENOENT' || source.kind === 'kms') return undefined;
  const where =
    source.kind === 'local'
      ? `named by ${SEALING_ENV.keyFile} or ${SEALING_ENV.previousKeyFiles}`
      : `with no ${SEALING_ENV.keyFile}, the key is $KEYPOOL_DATA_DIR/sealing-key, and KEYPOOL_DATA_DIR ${env.KEYPOOL_DATA_DIR ? `is ${env.KEYPOOL_DATA_DIR}` : `is unset, so ${defaultDataDir()}`}`;
  return new ConfigError(
    `no sealing key at ${missing.path ?? 'the configured path'} (${where}): use the settings of the stack that sealed the keys (\`npm start\` prints them); a key is never created here`,
  );
}

/**
 * `make` over the configuration's wrapping keys, read when it is called; a key file that is
 * missing or unsafe is the ConfigError it is.
 */
function withKeys<T>(
  config: Pick<Config, 'endpoint'>,
  env: NodeJS.ProcessEnv,
  make: (keys: EsdkSealerOptions) => T,
): () => Promise<T> {
  return async () => {
    const source = wrappingKeySource(config, env);
    let keys: EsdkSealerOptions;
    try {
      keys = await wrappingKeysOf(source);
    } catch (error) {
      throw keyFileError(error, source, env) ?? error;
    }
    return make(keys);
  };
}

/** The sealer for the configuration, built (and its key read) on first use only; it never creates a key. */
export function sealer(config: Pick<Config, 'endpoint'>, env: NodeJS.ProcessEnv = process.env): LazySealer {
  return new LazySealer(withKeys(config, env, createEsdkSealer));
}

/**
 * The opener for the configuration (built on first use, as `sealer`), for the processes that
 * never seal (lease, maintenance): they never load the Encryption SDK's encrypt side.
 */
export function opener(config: Pick<Config, 'endpoint'>, env: NodeJS.ProcessEnv = process.env): LazyOpener {
  return new LazyOpener(withKeys(config, env, createEsdkOpener));
}

/**
 * The provider's account endpoint an import with `verify` asks, built on first use from the
 * environment (STABILITY_API_BASE_URL, checked as maintenance checks it): an import without
 * verify never reads it.
 */
export function importVerifier(env: NodeJS.ProcessEnv = process.env): AccountProvider {
  let client: StabilityClient | undefined;
  return {
    account: (apiKey) =>
      (client ??= new StabilityClient({ baseUrl: readMaintenanceConfig(env).providerBaseUrl })).account(apiKey),
  };
}

/** A broker (every use case) over the configured table: the CLI's. */
export function broker(config: StoreConfig, secrets: SecretSealer = sealer(config)): Broker {
  const client = documentClient(config);
  return new Broker({
    store: tableStore(DynamoKeyStore, config, client),
    poolStore: tableStore(DynamoPoolStore, config, client),
    sealer: secrets,
    accounts: tableStore(DynamoAccountStore, config, client),
    verifier: importVerifier(),
    // A CLI process refuses once and exits: a count it did not wait for would serve nobody, and
    // a terminal has no function timeout to keep under (the count still ends within its minute).
    dryPoolWaitMs: Infinity,
  });
}

/** What maintenance reads and writes through: the key table and the provider's balance endpoint. */
export function maintenanceDeps(
  config: StoreConfig,
  settings: MaintenanceConfig,
  warn?: ProviderWarn,
  secrets: SecretOpener = opener(config),
): MaintenanceDeps {
  const client = documentClient(config);
  const provider = new StabilityClient({ baseUrl: settings.providerBaseUrl, ...(warn ? { warn } : {}) });
  return {
    pools: tableStore(DynamoPoolStore, config, client),
    keys: tableStore(DynamoKeyAdminStore, config, client),
    sealer: secrets,
    balances: tableStore(DynamoBalanceStore, config, client),
    runs: tableStore(DynamoMaintenanceRunStore, config, client),
    provider,
    accounts: { provider, store: tableStore(DynamoAccountStore, config, client) },
  };
}

/** The migration's store and its sources (a file, an S3 object, a legacy table) over the configured endpoint. */
export function migration(
  config: StoreConfig,
  secrets: SecretSealer = sealer(config),
): {
  store: MigrationStore;
  pools: PoolStore;
  sealer: SecretSealer;
  sources: MigrationSources;
} {
  const client = documentClient(config);
  let s3: S3Client | undefined;
  return {
    store: tableStore(DynamoMigrationStore, config, client),
    pools: tableStore(DynamoPoolStore, config, client),
    sealer: secrets,
    sources: {
      file: (path) => fileSource(path),
      s3: (bucket, key) => s3Source((s3 ??= new S3Client(config.region ? { region: config.region } : {})), bucket, key),
      table: (tableName) => legacyTableSource(dynamoClient(config), tableName),
    },
  };
}

let processOpenerOnce: SecretOpener | undefined;
/** The process's opener: one per container, so its opened-secret cache serves every lease the container handles. */
function processOpener(): SecretOpener {
  return (processOpenerOnce ??= opener(processTables().config));
}

let processLeasingOnce: Leasing | undefined;
/**
 * The process's client use cases: lease, complete, count (built on first use). Keys it cannot
 * hand out (undecryptable, still unsealed) are reported to the log (lease-log.ts).
 */
export function processLeasing(): Leasing {
  return (processLeasingOnce ??= new Leasing({
    store: processTables().leases,
    pools: processTables().directory,
    sealer: processOpener(),
    dryPool: new DryPoolCounts({ store: processTables().leases }),
    accounts: processAccounts(),
    ...leaseLogHooks,
  }));
}

let processKeyImportOnce: KeyImport | undefined;
/** The process's import (built on first use): it seals, so only the keys function bundles the sealer. */
export function processKeyImport(): KeyImport {
  return (processKeyImportOnce ??= new KeyImport({
    store: processKeys(),
    poolStore: processTables().pools,
    pools: processTables().directory,
    sealer: sealer(processTables().config),
    accounts: processAccountRecords(),
    verifier: importVerifier(),
  }));
}

/** The provider client's warning sink (what maintenance hands the Stability client). */
type ProviderWarn = NonNullable<StabilityClientOptions['warn']>;

/** Maintenance's settings from the environment and its dependencies over `config`. */
function maintenanceFromEnv(
  config: StoreConfig,
  warn: ProviderWarn,
  secrets?: SecretOpener,
): { deps: MaintenanceDeps; settings: MaintenanceConfig } {
  const settings = readMaintenanceConfig();
  return { deps: maintenanceDeps(config, settings, warn, secrets), settings };
}

let processMaintenanceOnce: { deps: MaintenanceDeps; settings: MaintenanceConfig } | undefined;
/** The process's maintenance dependencies and settings from the environment (built on first use). */
export function processMaintenance(warn: ProviderWarn): { deps: MaintenanceDeps; settings: MaintenanceConfig } {
  return (processMaintenanceOnce ??= maintenanceFromEnv(readConfig(), warn));
}

let processMigrationOnce: ReturnType<typeof migration> | undefined;
/** The process's migration store and sources from the environment (built on first use). */
export function processMigration(): ReturnType<typeof migration> {
  return (processMigrationOnce ??= migration(readConfig()));
}

/** The key and pool stores the CLI's reseal and reshard share. */
type CliStores = { store: DynamoKeyAdminStore; pools: DynamoPoolStore };

/**
 * The CLI's services over the configuration it resolved; each is built on first use, and all
 * share one sealer, which `loadSealing` builds before a command that seals or opens runs.
 */
export function cliServices(config: CliConfig): CliServices {
  const secrets = sealer(config);
  let brokerOnce: Broker | undefined;
  let maintenanceOnce: ReturnType<CliServices['maintenance']> | undefined;
  let migrationOnce: ReturnType<typeof migration> | undefined;
  let sealingOnce: ReturnType<CliServices['sealing']> | undefined;
  let storesOnce: CliStores | undefined;
  /** The key and pool stores over one client, shared by the commands that need only those. */
  const stores = (): CliStores =>
    (storesOnce ??= (() => {
      const client = documentClient(config);
      return {
        store: tableStore(DynamoKeyAdminStore, config, client),
        pools: tableStore(DynamoPoolStore, config, client),
      };
    })());
  return {
    broker: () => (brokerOnce ??= broker(config, secrets)),
    // Per-key problems are in the command's summary; the provider client's warnings would only repeat them.
    maintenance: () => (maintenanceOnce ??= maintenanceFromEnv(config, () => undefined, secrets)),
    migration: () => (migrationOnce ??= migration(config, secrets)),
    sealing: () => (sealingOnce ??= { ...stores(), sealer: secrets }),
    sharding: stores,
    loadSealing: () => secrets.ready(),
    console: (port, onError) => startConsole({ source: overview(config), tableName: config.tableName, port, onError }),
  };
}
