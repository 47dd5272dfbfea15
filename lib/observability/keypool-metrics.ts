/**
 * What keypool publishes, per pool: maintenance's gauges after every run, and the lease
 * path's grants and refusals. The names are in ./metric-names.ts, which the CDK alarms read too.
 */
import type { Leasing } from '../use-cases/leasing.js';
import { NoUsableKey } from '../domain/errors.js';
import type { LeaseGrant, LeaseRequest } from '../domain/types.js';
import type { MaintenanceReport, PoolReport } from '../use-cases/maintenance/maintain.js';
import { logger } from './logger.js';
import { METRIC } from './metric-names.js';
import type { MetricsSink } from './metrics.js';

/** Publishes one record per pool with its gauges. */
export function publishPoolMetrics(metrics: MetricsSink, pools: PoolReport[]): void {
  for (const pool of pools) {
    metrics.publish(pool.pool, {
      [METRIC.usableKeys]: pool.usable,
      [METRIC.exhaustedKeys]: pool.exhausted,
      [METRIC.disabledKeys]: pool.disabled,
      [METRIC.coolingKeys]: pool.cooling,
      [METRIC.suspectKeys]: pool.suspect,
      [METRIC.undecryptableKeys]: pool.undecryptable,
      [METRIC.balanceCheckErrors]: pool.balanceErrors,
    });
  }
}

/**
 * Leases and counts the answer: LeasesGranted, or NoUsableKey on a refusal. A pool that does
 * not exist is refused before anything is counted, so no caller can mint a metric (a billed
 * custom metric per dimension value) by naming pools.
 */
export async function countedLease(
  leasing: Pick<Leasing, 'lease'>,
  metrics: MetricsSink,
  pool: string,
  request: LeaseRequest = {},
  idempotencyKey?: string,
): Promise<LeaseGrant> {
  try {
    const grant = await leasing.lease(pool, request, idempotencyKey);
    metrics.publish(pool, { [METRIC.leasesGranted]: 1 });
    return grant;
  } catch (error) {
    if (error instanceof NoUsableKey) metrics.publish(pool, { [METRIC.noUsableKey]: 1 });
    throw error;
  }
}

/** What a scheduled maintenance run leaves behind: one summary log line, a warning per key not checked, the pool gauges. */
export function reportMaintenance(metrics: MetricsSink, report: MaintenanceReport): void {
  logger.info('maintenance run', {
    ...report.summary,
    errors: report.summary.errors.length,
    pools: report.pools.map((p) => p.pool),
  });
  for (const error of report.summary.errors) logger.warn('key not checked', { ...error });
  publishPoolMetrics(metrics, report.pools);
}
