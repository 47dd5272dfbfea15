/**
 * keypool's CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per
 * record, which Lambda's log pipeline turns into metrics. keypool publishes a few counts and
 * gauges with one dimension (`pool`), synchronously; writing the documented format directly
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
 * takes a dozen lines and keeps Powertools Metrics' ~10 KB out of the lease function's bundle.
 */
import { METRIC_DIMENSION, METRICS_NAMESPACE } from './metric-names.js';

/** A value's CloudWatch unit: a Count unless said otherwise. */
export type MetricUnit = 'Count' | 'Milliseconds' | 'Bytes';

/** Where metric records go; tests and the local server can pass their own. */
export interface MetricsSink {
  /** One record for the pool's dimension, at one timestamp: every value a Count unless `units` says otherwise. */
  publish(pool: string, values: Readonly<Record<string, number>>, units?: Readonly<Record<string, MetricUnit>>): void;
}

/** Where counts of the whole stack go (metric-names.ts STACK_METRIC): one record with no dimension. */
export interface StackMetricsSink {
  publishStack(values: Readonly<Record<string, number>>): void;
}

/**
 * The EMF line for one record (without the newline): under the pool's dimension, or with an
 * empty dimension set when `pool` is undefined (a count of the whole stack).
 */
export function emfRecord(
  namespace: string,
  pool: string | undefined,
  values: Readonly<Record<string, number>>,
  nowMs: number,
  units: Readonly<Record<string, MetricUnit>> = {},
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: nowMs,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [pool === undefined ? [] : [METRIC_DIMENSION]],
          Metrics: Object.keys(values).map((name) => ({ Name: name, Unit: units[name] ?? 'Count' })),
        },
      ],
    },
    ...(pool === undefined ? {} : { [METRIC_DIMENSION]: pool }),
    ...values,
  });
}

/** One EMF line on stdout, namespace POWERTOOLS_METRICS_NAMESPACE or `keypool`. */
function writeRecord(
  pool: string | undefined,
  values: Readonly<Record<string, number>>,
  units?: Readonly<Record<string, MetricUnit>>,
): void {
  process.stdout.write(
    `${emfRecord(process.env.POWERTOOLS_METRICS_NAMESPACE || METRICS_NAMESPACE, pool, values, Date.now(), units)}\n`,
  );
}

/** The process's metrics: EMF on stdout. */
export const metrics: MetricsSink & StackMetricsSink = {
  publish: writeRecord,
  publishStack: (values) => writeRecord(undefined, values),
};
