/**
 * keypool's CloudWatch metric names, their one dimension and the default namespace. The
 * publishers (./keypool-metrics.ts) and the CDK alarms (infra/constructs/alarms.ts) both read
 * them from here, so an alarm can never watch a name nothing publishes.
 */
export const METRICS_NAMESPACE = 'keypool';

export const METRIC = {
  usableKeys: 'UsableKeys',
  exhaustedKeys: 'ExhaustedKeys',
  disabledKeys: 'DisabledKeys',
  coolingKeys: 'CoolingKeys',
  suspectKeys: 'SuspectKeys',
  undecryptableKeys: 'UndecryptableKeys',
  balanceCheckErrors: 'BalanceCheckErrors',
  leasesGranted: 'LeasesGranted',
  noUsableKey: 'NoUsableKey',
} as const;

/** The only dimension: alarms name exactly the set of pools they watch. */
export const METRIC_DIMENSION = 'pool';

/** Every metric name keypool publishes per pool. */
export type MetricName = (typeof METRIC)[keyof typeof METRIC];
