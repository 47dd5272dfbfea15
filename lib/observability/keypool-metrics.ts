/**
 * What keypool publishes, per pool: maintenance's gauges after every run, the lease path's
 * grants and refusals (the lease function's middleware, and proxy mode's refusals alike) and
 * the completions by outcome (the counting function), each counted at the edge. The names are in ./metric-names.ts, which the
 * CDK alarms and dashboard read too.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { NoUsableKey, SealingMisconfigured, SealingUnavailable, StoreThrottled } from '../domain/errors.js';
import type { Outcome } from '../domain/types.js';
import { logger } from './logger.js';
import { COMPLETION_METRIC, MAINTENANCE_LOG, METRIC } from './metric-names.js';
import type { MetricsSink } from './metrics.js';

/** A pool's gauges after a maintenance run (what lib/use-cases/maintenance reports per pool). */
export interface PoolGauges {
  pool: string;
  usable: number;
  /** the credits of the pool's accounts with a usable key (lib/use-cases/maintenance/pool-health.ts) */
  usableCredits: number;
  exhausted: number;
  disabled: number;
  cooling: number;
  suspect: number;
  /** suspect keys the run was to settle and did not: reported before it began (lib/use-cases/maintenance/maintain.ts leftUnsettled) */
  unsettledSuspect: number;
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
  /** keys left unchecked by a wrong sealing setting, and the first error, which names the keys */
  keyNotHeld?: { keys: number; first: { message: string } };
}

/** Publishes one record per pool with its gauges. */
export function publishPoolMetrics(metrics: MetricsSink, pools: readonly PoolGauges[]): void {
  for (const pool of pools) {
    metrics.publish(pool.pool, {
      [METRIC.usableKeys]: pool.usable,
      [METRIC.usableCredits]: pool.usableCredits,
      [METRIC.exhaustedKeys]: pool.exhausted,
      [METRIC.disabledKeys]: pool.disabled,
      [METRIC.coolingKeys]: pool.cooling,
      [METRIC.suspectKeys]: pool.suspect,
      [METRIC.unsettledSuspectKeys]: pool.unsettledSuspect,
      [METRIC.undecryptableKeys]: pool.undecryptable,
      [METRIC.balanceCheckErrors]: pool.balanceErrors,
      [METRIC.providerAuthBreakerOpen]: pool.providerAuthBreakerOpen ? 1 : 0,
    });
  }
}

/**
 * The lease route's counts, as a middy middleware of the lease function: LeasesGranted for a
 * grant (the route's 200), NoUsableKey for a refusal, StoreThrottled for a lease the table was
 * too busy to answer (a 503, never a refusal), SealingUnavailable and SealingMisconfigured for
 * one whose key's secret could not be opened (a 503, its use given back), under the pool the
 * path names. A pool that does not exist is refused (PoolNotFound) before any of these can
 * happen, so no caller can mint a metric (a billed custom metric per dimension value) by naming
 * pools.
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
      const counted = refusalMetric(error);
      if (pool !== undefined && counted !== undefined) metrics.publish(pool, { [counted]: 1 });
    },
  };
}

/**
 * The metric a refusal of a key counts under: NoUsableKey (a dry pool), StoreThrottled (a busy
 * table), SealingUnavailable (the key service failed), SealingMisconfigured (a wrapping key not
 * held); none for others. The count alone: the error's text (a KMS error name, key ids, key
 * ARNs) stays in the request's log line.
 */
function refusalMetric(error: unknown): string | undefined {
  if (error instanceof NoUsableKey) return METRIC.noUsableKey;
  if (error instanceof StoreThrottled) return METRIC.storeThrottled;
  if (error instanceof SealingUnavailable) return METRIC.sealingUnavailable;
  if (error instanceof SealingMisconfigured) return METRIC.sealingMisconfigured;
  return undefined;
}

/**
 * Proxy mode's refusals, counted as the lease route counts its own: NoUsableKey (so the pool's
 * dry-pool alarm pages whichever route found it dry), StoreThrottled, SealingUnavailable and
 * SealingMisconfigured, under the call's pool (the use case read its policy before it could
 * refuse any of them). The refusal goes on, unchanged, to the edge that answers it.
 */
export function proxyRefusalMetrics<C extends { pool: string }, S>(
  handle: (call: C, sink: S) => Promise<void>,
  metrics: MetricsSink,
): (call: C, sink: S) => Promise<void> {
  return async (call, sink) => {
    try {
      await handle(call, sink);
    } catch (error) {
      const counted = refusalMetric(error);
      if (counted !== undefined) metrics.publish(call.pool, { [counted]: 1 });
      throw error;
    }
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

/**
 * One completion of a lease of `pool` answered with the outcome the caller reported. Called
 * once the completion was answered, so the pool exists (an unknown pool is refused first and
 * names no metric). A repeated completion is answered again and counted again, as a replayed
 * lease is in LeasesGranted: these count answers, the key's usage count counts uses.
 */
export function countCompletion(metrics: MetricsSink, pool: string, outcome: Outcome): void {
  metrics.publish(pool, { [COMPLETION_METRIC[outcome]]: 1 });
}

/**
 * What a scheduled maintenance run leaves behind: one summary log line, a warning per key not
 * checked, a warning when the provider-auth breaker opened, an error line when a wrong sealing
 * setting left keys unchecked, the pool gauges.
 */
export function reportMaintenance(metrics: MetricsSink, report: MaintenanceOutcome): void {
  logger.info(MAINTENANCE_LOG.run, {
    ...report.summary,
    errors: report.summary.errors.length,
    pools: report.pools.map((p) => p.pool),
  });
  for (const error of report.summary.errors) logger.warn(MAINTENANCE_LOG.keyNotChecked, { ...error });
  const breaker = report.summary.providerAuthBreaker;
  if (breaker.open)
    logger.warn(
      'most of the provider answers were 401/403: no key was disabled in this run (provider-auth breaker open)',
      {
        ...breaker,
      },
    );
  if (report.keyNotHeld)
    logger.error('keys sealed under a wrapping key this function does not hold were not checked', {
      error: 'sealing_misconfigured',
      keys: report.keyNotHeld.keys,
      reason: report.keyNotHeld.first.message,
    });
  publishPoolMetrics(metrics, report.pools);
}
