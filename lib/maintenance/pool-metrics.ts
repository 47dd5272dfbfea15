/**
 * keypool's CloudWatch metrics (Powertools Metrics, EMF on stdout), one dimension: `pool`.
 * Maintenance publishes the pool gauges after every run; the lease path counts grants and
 * refusals. The CDK stack's alarms read these names.
 */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Broker } from '../domain/broker.js';
import { NoUsableKey } from '../domain/errors.js';
import { DEFAULT_POOL, type LeaseGrant, type LeaseRequest } from '../domain/types.js';
import type { PoolReport } from './maintain.js';

export const METRIC = {
  usableKeys: 'UsableKeys',
  exhaustedKeys: 'ExhaustedKeys',
  disabledKeys: 'DisabledKeys',
  coolingKeys: 'CoolingKeys',
  balanceCheckErrors: 'BalanceCheckErrors',
  leasesGranted: 'LeasesGranted',
  noUsableKey: 'NoUsableKey',
} as const;

export const METRIC_DIMENSION = 'pool';

/** Publishes one EMF record per pool with its gauges; synchronous, so records never mix pools. */
export function publishPoolMetrics(metrics: Metrics, pools: PoolReport[]): void {
  for (const pool of pools) {
    metrics.addDimension(METRIC_DIMENSION, pool.pool);
    metrics.addMetric(METRIC.usableKeys, MetricUnit.Count, pool.usable);
    metrics.addMetric(METRIC.exhaustedKeys, MetricUnit.Count, pool.exhausted);
    metrics.addMetric(METRIC.disabledKeys, MetricUnit.Count, pool.disabled);
    metrics.addMetric(METRIC.coolingKeys, MetricUnit.Count, pool.cooling);
    metrics.addMetric(METRIC.balanceCheckErrors, MetricUnit.Count, pool.balanceErrors);
    metrics.publishStoredMetrics();
  }
}

function count(metrics: Metrics, pool: string, name: string): void {
  // Added and published in one synchronous step: concurrent requests in one process (the
  // local server) cannot interleave their dimensions.
  metrics.addDimension(METRIC_DIMENSION, pool);
  metrics.addMetric(name, MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
}

/** Leases through the broker and counts the answer: LeasesGranted, or NoUsableKey on a refusal. */
export async function countedLease(broker: Pick<Broker, 'lease'>, metrics: Metrics, request: LeaseRequest = {}): Promise<LeaseGrant> {
  const pool = request.pool ?? DEFAULT_POOL;
  try {
    const grant = await broker.lease(request);
    count(metrics, pool, METRIC.leasesGranted);
    return grant;
  } catch (error) {
    if (error instanceof NoUsableKey) count(metrics, pool, METRIC.noUsableKey);
    throw error;
  }
}
