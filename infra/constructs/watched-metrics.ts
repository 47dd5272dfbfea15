/**
 * The metrics keypool's alarms and its dashboard both read, built in one place so the two can
 * never watch different things: a pool's metric under the names lib/observability publishes,
 * the period that holds one maintenance report, and the table's throttled requests.
 */
import { Duration } from 'aws-cdk-lib';
import { type IMetric, Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { type ITable, Operation } from 'aws-cdk-lib/aws-dynamodb';
import { METRIC_DIMENSION, METRICS_NAMESPACE, type MetricName } from '../../lib/observability/metric-names.js';

/** The table operations keypool performs; DynamoDB reports ThrottledRequests per operation. */
const TABLE_OPERATIONS = [
  Operation.GET_ITEM,
  Operation.BATCH_GET_ITEM,
  Operation.PUT_ITEM,
  Operation.UPDATE_ITEM,
  Operation.BATCH_WRITE_ITEM,
  Operation.QUERY,
  Operation.SCAN,
];

/**
 * One pool's metric, under the names maintenance and the lease and counting functions
 * publish; pool is the only dimension (lib/observability/metric-names.ts).
 */
export function poolMetric(pool: string, metricName: MetricName, statistic: string, period: Duration): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [METRIC_DIMENSION]: pool },
    statistic,
    period,
  });
}

/**
 * The period of the gauges maintenance publishes: no shorter than the schedule, so every
 * period holds one maintenance report (and at least 5 minutes).
 */
export function maintenancePeriod(maintenanceEvery: Duration): Duration {
  return Duration.minutes(Math.max(5, maintenanceEvery.toMinutes()));
}

/** The table's throttled requests, summed over every operation keypool performs. */
export function tableThrottles(table: ITable, period: Duration): IMetric {
  return table.metricThrottledRequestsForOperations({ operations: TABLE_OPERATIONS, period });
}
