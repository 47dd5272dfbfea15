/**
 * What keypool publishes, per pool: maintenance's gauges after every run, and the lease
 * path's grants and refusals, counted at the edge (the lease function's middleware). The names
 * are in ./metric-names.ts, which the CDK alarms read too.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { NoUsableKey } from '../domain/errors.js';
import { logger } from './logger.js';
import { METRIC } from './metric-names.js';
import type { MetricsSink } from './metrics.js';

/** A pool's gauges after a maintenance run (what lib/use-cases/maintenance reports per pool). */
export interface PoolGauges {
  pool: string;
  usable: number;
  exhausted: number;
  disabled: number;
  cooling: number;
  suspect: number;
  undecryptable: number;
  balanceErrors: number;
  /** the run's provider-auth breaker opened: it disabled none of the keys the provider refused */
  providerAuthBreakerOpen: boolean;
}

/** What a maintenance run leaves to publish: its summary (logged whole) and each pool's gauges. */
export interface MaintenanceOutcome {
  summary: {
    errors: readonly { keyId: string; reason: string }[];
    providerAuthBreaker: { open: boolean; refusals: number; answers: number };
  };
  pools: readonly PoolGauges[];
}

/** Publishes one record per pool with its gauges. */
export function publishPoolMetrics(metrics: MetricsSink, pools: readonly PoolGauges[]): void {
  for (const pool of pools) {
    metrics.publish(pool.pool, {
      [METRIC.usableKeys]: pool.usable,
      [METRIC.exhaustedKeys]: pool.exhausted,
      [METRIC.disabledKeys]: pool.disabled,
      [METRIC.coolingKeys]: pool.cooling,
      [METRIC.suspectKeys]: pool.suspect,
      [METRIC.undecryptableKeys]: pool.undecryptable,
      [METRIC.balanceCheckErrors]: pool.balanceErrors,
      [METRIC.providerAuthBreakerOpen]: pool.providerAuthBreakerOpen ? 1 : 0,
    });
  }
}

/**
 * The lease route's counts, as a middy middleware of the lease function: LeasesGranted for a
 * grant (the route's 200), NoUsableKey for a refusal, under the pool the path names. A pool
 * that does not exist is refused (PoolNotFound) before either can happen, so no caller can mint
 * a metric (a billed custom metric per dimension value) by naming pools.
 */
export function leaseMetrics(
  metrics: MetricsSink,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    after: ({ event, response }) => {
      const pool = event.pathParameters?.pool;
      if (pool !== undefined && response?.statusCode === 200) metrics.publish(pool, { [METRIC.leasesGranted]: 1 });
    },
    onError: ({ event, error }) => {
      const pool = event.pathParameters?.pool;
      if (pool !== undefined && error instanceof NoUsableKey) metrics.publish(pool, { [METRIC.noUsableKey]: 1 });
    },
  };
}

/**
 * The counting function's hook for reports past a caller's budget (Leasing's
 * onReportOverBudget): ClientReportsOverBudget under the pool (which exists: the use case read
 * its policy first), and a warning line. The caller is not named here: the audit line of the
 * request names it.
 */
export function reportBudgetHooks(metrics: MetricsSink): { onReportOverBudget: (pool: string) => void } {
  return {
    onReportOverBudget: (pool) => {
      metrics.publish(pool, { [METRIC.clientReportsOverBudget]: 1 });
      logger.warn('a caller is past its report budget: its report took no effect', { pool });
    },
  };
}

/** What a scheduled maintenance run leaves behind: one summary log line, a warning per key not checked, the pool gauges. */
export function reportMaintenance(metrics: MetricsSink, report: MaintenanceOutcome): void {
  logger.info('maintenance run', {
    ...report.summary,
    errors: report.summary.errors.length,
    pools: report.pools.map((p) => p.pool),
  });
  for (const error of report.summary.errors) logger.warn('key not checked', { ...error });
  const breaker = report.summary.providerAuthBreaker;
  if (breaker.open)
    logger.warn(
      'most of the provider answers were 401/403: no key was disabled in this run (provider-auth breaker open)',
      {
        ...breaker,
      },
    );
  publishPoolMetrics(metrics, report.pools);
}
