/**
 * The operator's view of one stage in CloudWatch, the dashboard `keypool-<stage>`: every alarm
 * and its state first, then one row per pool the stage declares (usable keys against the
 * alarm's minimum, leases and refusals, completions by outcome, keys out of the pool by status,
 * failed balance checks, suspect keys left unsettled), then the API, the functions, the table
 * and the maintenance runs.
 * Every pool metric comes from lib/observability/metric-names.ts through the helpers the alarms
 * use (./watched-metrics.ts), so the dashboard plots exactly what is published and alarmed on.
 */
import { Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  AlarmStatusWidget,
  AlarmStatusWidgetSortBy,
  Color,
  Dashboard,
  GraphWidget,
  type GraphWidgetProps,
  type HorizontalAnnotation,
  type IAlarm,
  type IMetric,
  type IWidget,
  LogQueryVisualizationType,
  LogQueryWidget,
  Shading,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { OUTCOMES } from '../../lib/domain/types.js';
import { COMPLETION_METRIC, MAINTENANCE_LOG, METRIC, type MetricName } from '../../lib/observability/metric-names.js';
import type { StagePool } from '../config.js';
import { maintenancePeriod, poolMetric, proxyKeypool5xx, tableThrottles } from './watched-metrics.js';

/** CloudWatch's grid is 24 units wide; three graphs to a line. */
const GRID = 24;
const GRAPH = { width: 8, height: 6 } as const;
const MINUTE = Duration.minutes(1);

/** One line of a pool's graph: a metric of the pool, read with a statistic. */
export interface PoolSeries {
  /** the published name; undefined while the change that publishes it has not landed (the line is left out) */
  metric: MetricName | undefined;
  label: string;
  statistic: 'Sum' | 'Minimum' | 'Maximum';
  /** `run`: a gauge maintenance publishes once per run (one maintenance period); `minute`: a count */
  per: 'run' | 'minute';
}

/** One graph of a pool's row. */
export interface PoolWidget {
  title: string;
  series: readonly PoolSeries[];
  stacked?: boolean;
  /** horizontal lines from the stage's configuration of the pool: the alarm thresholds */
  thresholds?: (pool: StagePool) => HorizontalAnnotation[];
}

const gauge = (metric: MetricName | undefined, label: string, statistic: PoolSeries['statistic']): PoolSeries => ({
  metric,
  label,
  statistic,
  per: 'run',
});
const perMinute = (metric: MetricName, label: string): PoolSeries => ({
  metric,
  label,
  statistic: 'Sum',
  per: 'minute',
});

/**
 * What a pool's row shows, in order: one entry per graph. A new pool metric is one more entry
 * (or one more series of an entry); an entry whose series are all unpublished is left out.
 * Proxy mode's per-pool counts and latencies (PROXY_OUTCOME_METRIC, PROXY_METRIC) are not on
 * the row yet (docs/operations.md says so).
 */
export const POOL_ROW: readonly PoolWidget[] = [
  {
    title: 'Usable keys (the alarm pages below the line)',
    series: [gauge(METRIC.usableKeys, 'usable keys (minimum per run)', 'Minimum')],
    thresholds: ({ minUsableKeys }) => [
      { value: minUsableKeys, label: `alarm below ${minUsableKeys}`, color: Color.RED, fill: Shading.BELOW },
    ],
  },
  // How much credit is left, with the line its alarm pages below where the pool has one.
  {
    title: 'Usable credits',
    series: [gauge(METRIC.usableCredits, 'usable credits (minimum per run)', 'Minimum')],
    thresholds: ({ minUsableCredits }) =>
      minUsableCredits !== undefined && minUsableCredits > 0
        ? [{ value: minUsableCredits, label: `alarm below ${minUsableCredits}`, color: Color.RED, fill: Shading.BELOW }]
        : [],
  },
  {
    title: 'Leases per minute',
    series: [
      perMinute(METRIC.leasesGranted, 'granted'),
      perMinute(METRIC.noUsableKey, '409 no_usable_key'),
      perMinute(METRIC.storeThrottled, '503 store_throttled (the table was busy)'),
      perMinute(METRIC.sealingUnavailable, '503 sealing_unavailable (the key service failed)'),
      perMinute(METRIC.sealingMisconfigured, '503 sealing_misconfigured (a wrapping key not held)'),
    ],
  },
  {
    title: 'Completions per minute, by outcome',
    stacked: true,
    series: OUTCOMES.map((outcome) => perMinute(COMPLETION_METRIC[outcome], outcome)),
  },
  {
    title: 'Keys out of the pool, by status',
    stacked: true,
    series: [
      gauge(METRIC.coolingKeys, 'cooling (rate limited, come back by themselves)', 'Maximum'),
      gauge(METRIC.suspectKeys, 'suspect (reported invalid, for maintenance to settle)', 'Maximum'),
      gauge(METRIC.exhaustedKeys, 'exhausted (credits below the pool minimum)', 'Maximum'),
      gauge(METRIC.disabledKeys, 'disabled (provider refused the key, or an operator)', 'Maximum'),
      gauge(METRIC.undecryptableKeys, 'undecryptable (reseal or import again)', 'Maximum'),
    ],
  },
  {
    title: 'Balance checks that failed, per maintenance run',
    series: [gauge(METRIC.balanceCheckErrors, 'keys whose balance could not be read', 'Maximum')],
  },
  {
    // Two runs in a row above 0 are alarmed: reports made before a run that it did not settle.
    title: 'Suspect keys a maintenance run left unsettled (reported before it began)',
    series: [gauge(METRIC.unsettledSuspectKeys, 'suspect keys not confirmed or cleared', 'Minimum')],
    thresholds: () => [{ value: 0, label: 'alarm above 0, two runs in a row', color: Color.RED, fill: Shading.ABOVE }],
  },
  {
    // 1: the run's answers were mostly the provider refusing keys, so it disabled none (alarmed).
    title: 'Provider-auth breaker (1: a run disabled no key on mostly 401/403)',
    series: [gauge(METRIC.providerAuthBreakerOpen, 'breaker open', 'Maximum')],
  },
  {
    // Any point here is alarmed: a caller sent more negative reports than its budget allows.
    title: 'Client reports past the budget, per minute (they took no effect)',
    series: [perMinute(METRIC.clientReportsOverBudget, 'reports over maxClientReportsPerMinute')],
  },
];

export interface KeypoolDashboardProps {
  stage: string;
  /** the pools the stage declares: one row each, with their alarm thresholds */
  pools: readonly StagePool[];
  /** the maintenance schedule: pool gauges arrive once per run */
  maintenanceEvery: Duration;
  api: HttpApi;
  /** proxy mode's REST API (its served stage) */
  proxyApi: RestApi;
  functions: Readonly<Record<string, IFunction>>;
  table: ITable;
  /** the scheduled maintenance function and its log group (the run summaries) */
  maintenance: { fn: IFunction; logGroup: ILogGroup };
  /** every alarm of the stage, for the alarm-status widget */
  alarms: readonly IAlarm[];
}

/** The metrics an API's graphs read: the HTTP API's, and a REST API stage's (proxy mode). */
type ApiMetrics = Pick<HttpApi, 'metricCount' | 'metricClientError' | 'metricServerError' | 'metricLatency'>;

/**
 * One API's two graphs: requests, 4xx and 5xx per minute (and `answers`); latency p50 and p99
 * (and `latency`).
 */
function apiGraphs(
  name: string,
  api: ApiMetrics,
  more: { latency?: IMetric[]; answers?: IMetric[] } = {},
): GraphWidget[] {
  return [
    graph(`${name} requests, 4xx and 5xx per minute`, [
      api.metricCount({ statistic: 'Sum', period: MINUTE, label: 'requests' }),
      api.metricClientError({ statistic: 'Sum', period: MINUTE, label: '4xx' }),
      api.metricServerError({ statistic: 'Sum', period: MINUTE, label: '5xx' }),
      ...(more.answers ?? []),
    ]),
    graph(`${name} latency (ms)`, [
      api.metricLatency({ statistic: 'p50', period: MINUTE, label: 'p50' }),
      api.metricLatency({ statistic: 'p99', period: MINUTE, label: 'p99' }),
      ...(more.latency ?? []),
    ]),
  ];
}

export class KeypoolDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: KeypoolDashboardProps) {
    super(scope, id);
    const runPeriod = maintenancePeriod(props.maintenanceEvery);
    this.dashboard = new Dashboard(this, 'dashboard', {
      dashboardName: `keypool-${props.stage}`,
      defaultInterval: Duration.hours(3),
    });

    this.dashboard.addWidgets(
      new TextWidget({
        markdown: [
          `# keypool ${props.stage}`,
          'Is each pool healthy (alarms, usable keys against their minimum), which keys are out and why (keys by status, ' +
            'balance checks that failed), and what happened in the last hour (leases, 409s, completions by outcome, API, ' +
            'table, maintenance runs). One row per pool this stage declares. Guide: docs/operations.md, "The dashboard".',
        ].join('\n\n'),
        width: GRID,
        height: 3,
      }),
      new AlarmStatusWidget({
        title: 'Alarms (in alarm first)',
        alarms: [...props.alarms],
        sortBy: AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
        width: GRID,
        // Four alarms to a line, a line of title.
        height: 1 + Math.ceil(props.alarms.length / 4),
      }),
    );

    for (const pool of props.pools) this.dashboard.addWidgets(...poolRow(pool, runPeriod));

    const fns = Object.entries(props.functions);
    // One line per function, labelled with its entry name.
    const perFunction = (read: (fn: IFunction, label: string) => IMetric): IMetric[] =>
      fns.map(([name, fn]) => read(fn, name));
    const api = props.api;
    this.dashboard.addWidgets(
      heading('API, functions, table'),
      ...apiGraphs('API', api, {
        latency: [api.metricIntegrationLatency({ statistic: 'p99', period: MINUTE, label: 'p99 in the function' })],
      }),
      // Its 5xx count the provider's passed through; keypool's own (what the alarm watches) apart.
      ...apiGraphs('Proxy', props.proxyApi.deploymentStage, {
        answers: [proxyKeypool5xx(MINUTE, "5xx of keypool's own")],
      }),
      graph('DynamoDB throttled requests per minute', [tableThrottles(props.table, MINUTE)]),
      graph(
        'Function errors per minute',
        perFunction((fn, label) => fn.metricErrors({ statistic: 'Sum', period: MINUTE, label })),
      ),
      graph(
        'Function throttles per minute',
        perFunction((fn, label) => fn.metricThrottles({ statistic: 'Sum', period: MINUTE, label })),
      ),
      graph(
        'Function duration p99 (ms)',
        perFunction((fn, label) => fn.metricDuration({ statistic: 'p99', period: MINUTE, label })),
      ),
    );

    const maintain = props.maintenance;
    this.dashboard.addWidgets(
      heading('Maintenance runs'),
      graph('Maintenance runs and failures', [
        maintain.fn.metricInvocations({ statistic: 'Sum', period: runPeriod, label: 'runs' }),
        maintain.fn.metricErrors({ statistic: 'Sum', period: runPeriod, label: 'runs that failed' }),
      ]),
      new LogQueryWidget({
        title: 'Last maintenance runs: keys checked, errors, keys by status',
        logGroupNames: [maintain.logGroup.logGroupName],
        view: LogQueryVisualizationType.TABLE,
        queryLines: [
          'fields @timestamp, checked, errors, active, cooling, suspect, exhausted, disabled, undecryptable',
          `filter message = '${MAINTENANCE_LOG.run}'`,
          'sort @timestamp desc',
          'limit 20',
        ],
        width: GRAPH.width,
        height: GRAPH.height,
      }),
      new LogQueryWidget({
        title: 'Keys maintenance could not check, and why',
        logGroupNames: [maintain.logGroup.logGroupName],
        view: LogQueryVisualizationType.TABLE,
        queryLines: [
          `filter message = '${MAINTENANCE_LOG.keyNotChecked}'`,
          'fields @timestamp, keyId, reason',
          'sort @timestamp desc',
          'limit 50',
        ],
        width: GRAPH.width,
        height: GRAPH.height,
      }),
    );
  }
}

/** A full-width heading that starts a row. */
function heading(markdown: string): TextWidget {
  return new TextWidget({ markdown: `## ${markdown}`, width: GRID, height: 1 });
}

function graph(title: string, left: IMetric[], extra: Partial<GraphWidgetProps> = {}): GraphWidget {
  return new GraphWidget({ title, left, leftYAxis: { min: 0 }, ...GRAPH, ...extra });
}

/** A pool's row: its heading, then one graph per POOL_ROW entry with a published series. */
function poolRow(pool: StagePool, runPeriod: Duration): IWidget[] {
  const widgets: IWidget[] = [
    heading(`Pool \`${pool.pool}\`: the alarm pages below ${pool.minUsableKeys} usable keys`),
  ];
  for (const entry of POOL_ROW) {
    const left = entry.series.flatMap(({ metric, label, statistic, per }) =>
      metric === undefined
        ? []
        : [poolMetric(pool.pool, metric, statistic, per === 'run' ? runPeriod : MINUTE).with({ label })],
    );
    if (left.length === 0) continue;
    widgets.push(
      graph(`${pool.pool}: ${entry.title}`, left, {
        stacked: entry.stacked ?? false,
        leftAnnotations: entry.thresholds?.(pool) ?? [],
      }),
    );
  }
  return widgets;
}
