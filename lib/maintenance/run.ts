/** Wires maintenance to DynamoDB and Stability from the configuration: what the Lambda and the CLI run. */
import { DynamoBalanceStore } from '../adapters/dynamo-balance-store.js';
import { DynamoKeyStore } from '../adapters/dynamo-key-store.js';
import { StabilityClient } from '../adapters/stability-client.js';
import { documentClient, logger } from '../commons.js';
import { metrics } from '../metrics.js';
import { type Config, type MaintenanceConfig, readConfig, readMaintenanceConfig } from '../config.js';
import { maintain, type MaintenanceDeps, type MaintenanceReport } from './maintain.js';
import { publishPoolMetrics } from './pool-metrics.js';

export interface MaintenanceRun {
  pool?: string;
  minCredits?: number;
  deadlineMs?: number;
}

/** The stores and the provider client over the configured table and STABILITY_API_BASE_URL; warnings go to the logger unless `warn` says otherwise. */
export function maintenanceDeps(
  config: Pick<Config, 'endpoint' | 'region' | 'tableName'>,
  settings: MaintenanceConfig,
  warn: (message: string, attributes: Record<string, unknown>) => void = (message, attributes) => logger.warn(message, attributes),
): MaintenanceDeps {
  const client = documentClient(config);
  return {
    keys: new DynamoKeyStore({ client, tableName: config.tableName }),
    balances: new DynamoBalanceStore({ client, tableName: config.tableName }),
    provider: new StabilityClient({ baseUrl: settings.providerBaseUrl, warn }),
  };
}

/** One maintenance pass with the configured settings; `run` overrides the pool, the minimum and the deadline. */
export function runMaintenance(deps: MaintenanceDeps, settings: MaintenanceConfig, run: MaintenanceRun = {}): Promise<MaintenanceReport> {
  return maintain(deps, {
    ...(run.pool === undefined ? {} : { pool: run.pool }),
    minCredits: run.minCredits ?? settings.minCredits,
    defaultMaxUses: settings.defaultMaxUses,
    rate: settings.balanceRate,
    concurrency: settings.balanceConcurrency,
    ...(run.deadlineMs === undefined ? {} : { deadlineMs: run.deadlineMs }),
  });
}

let scheduled: { deps: MaintenanceDeps; settings: MaintenanceConfig } | undefined;

/** The scheduled run: every pool, then the summary logged and one metrics record per pool published. */
export async function runScheduledMaintenance(deadlineMs: number): Promise<MaintenanceReport> {
  scheduled ??= (() => {
    const settings = readMaintenanceConfig();
    return { deps: maintenanceDeps(readConfig(), settings), settings };
  })();
  const report = await runMaintenance(scheduled.deps, scheduled.settings, { deadlineMs });
  logger.info('maintenance run', { ...report.summary, errors: report.summary.errors.length, pools: report.pools.map((p) => p.pool) });
  for (const error of report.summary.errors) logger.warn('key not checked', { ...error });
  publishPoolMetrics(metrics, report.pools);
  return report;
}
