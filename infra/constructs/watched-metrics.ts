/**
 * The metrics keypool's alarms and its dashboard both read, built in one place so the two can
 * never watch different things: a pool's metric under the names lib/observability publishes,
 * the period that holds one maintenance report, and the table's throttled requests.
 */
import { Duration } from 'aws-cdk-lib';
import { type IMetric, MathExpression, Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { type ITable, Operation } from 'aws-cdk-lib/aws-dynamodb';
import {
  METRIC_DIMENSION,
  METRICS_NAMESPACE,
  type MetricName,
  STACK_METRIC,
} from '../../lib/observability/metric-names.js';

/**
 * The table operations keypool performs; DynamoDB reports ThrottledRequests per operation.
 * TransactWriteItems is a lease under an Idempotency-Key and every migration batch; DeleteItem
 * a proxied request's record given up and a pool deleted. (At most 10 metrics in an alarm's math.)
 */
const TABLE_OPERATIONS = [
  Operation.GET_ITEM,
  Operation.BATCH_GET_ITEM,
  Operation.PUT_ITEM,
  Operation.UPDATE_ITEM,
  Operation.DELETE_ITEM,
  Operation.BATCH_WRITE_ITEM,
  Operation.TRANSACT_WRITE_ITEMS,
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
 * The proxy's 5xx that are keypool's own fault (an internal error, the key service, the table),
 * counted by the proxy function with no dimension: the REST API's 5XXError counts the provider's
 * 5xx passed through as well, and a provider outage is not keypool failing.
 */
export function proxyKeypool5xx(period: Duration, label?: string): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName: STACK_METRIC.proxyKeypool5xx,
    statistic: 'Sum',
    period,
    ...(label === undefined ? {} : { label }),
  });
}

/**
 * The period of the gauges maintenance publishes: no shorter than the schedule, so every
 * period holds one maintenance report (and at least 5 minutes).
 */
export function maintenancePeriod(maintenanceEvery: Duration): Duration {
  return Duration.minutes(Math.max(5, maintenanceEvery.toMinutes()));
}

/**
 * The table's throttled requests, summed over every operation keypool performs. Each term is
 * FILL(..., 0): metric math keeps only the timestamps where every series has a point, and
 * DynamoDB publishes ThrottledRequests for an operation only when it throttled, so a plain sum
 * (what metricThrottledRequestsForOperations builds) is empty unless all seven throttle at once.
 */
export function tableThrottles(table: ITable, period: Duration): IMetric {
  const usingMetrics = Object.fromEntries(
    TABLE_OPERATIONS.map((operation) => [
      operation.toLowerCase(),
      new Metric({
        namespace: 'AWS/DynamoDB',
        metricName: 'ThrottledRequests',
        dimensionsMap: { TableName: table.tableName, Operation: operation },
        statistic: 'Sum',
        period,
      }),
    ]),
  );
  return new MathExpression({
    expression: Object.keys(usingMetrics)
      .map((id) => `FILL(${id}, 0)`)
      .join(' + '),
    usingMetrics,
    label: 'Throttled requests, all operations',
    period,
  });
}
