/**
 * The CloudWatch dashboard in the synthesized stateless stack, read back from its body (a
 * `Fn::Join` of JSON, parsed with the template's intrinsics as text): named after the stage,
 * one row per pool the stage declares, every metric keypool publishes per pool on each row and
 * no name nothing publishes, the usable-keys threshold the alarm uses, every alarm's metric
 * plotted and every alarm listed in the alarm-status widget.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { POOL_ROW } from '../../infra/constructs/dashboard.js';
import type { StageConfig, StagePool } from '../../infra/config.js';
import { buildKeypoolApp } from '../../infra/keypool-app.js';
import { COMPLETION_METRIC, MAINTENANCE_LOG, METRIC, STACK_METRIC } from '../../lib/observability/metric-names.js';
import { intrinsicText, type Json, NO_BUNDLING, parseJoinedJson, resources } from '../support/templates.js';

interface Widget {
  type: string;
  x: number;
  y: number;
  width: number;
  height: number;
  properties: Json;
}

/** A metric a widget plots: namespace, name and dimensions (values as intrinsicText). */
interface PlottedMetric {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
}

interface Stage {
  config: StageConfig;
  template: Template;
  name: string;
  widgets: Widget[];
}

/** The stage's stateless template and its one dashboard's name and widgets. */
function stage(context: Record<string, unknown>): Stage {
  const built = buildKeypoolApp({ context: { ...NO_BUNDLING, ...context }, builtinCloudFormationValidation: false });
  const template = Template.fromStack(built.stateless);
  const dashboards = resources(template, 'AWS::CloudWatch::Dashboard');
  expect(dashboards).toHaveLength(1);
  const properties = dashboards[0]?.[1].Properties ?? {};
  const body = parseJoinedJson(properties.DashboardBody) as { widgets: Widget[] };
  return { config: built.config, template, name: String(properties.DashboardName), widgets: body.widgets };
}

/**
 * The metrics of a metric widget as the body lists them: `[namespace, name, dim, value, ...,
 * {options}]`; a math expression's entry (`[{ expression }]`) is not a metric, the metrics it
 * uses are listed beside it.
 */
function plotted(widget: Widget): PlottedMetric[] {
  const entries = (widget.properties.metrics ?? []) as unknown[][];
  return entries.flatMap((entry) => {
    const strings = entry.filter((part): part is string => typeof part === 'string');
    if (strings.length < 2) return [];
    const [namespace = '', name = '', ...pairs] = strings;
    const dimensions: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) dimensions[pairs[i] ?? ''] = pairs[i + 1] ?? '';
    return [{ namespace, name, dimensions }];
  });
}

/** A metric as one comparable string. */
const metricKey = (m: PlottedMetric): string =>
  JSON.stringify([m.namespace, m.name, Object.entries(m.dimensions).sort()]);

/** What an alarm of the template watches: its metric, or each metric of its math expression. */
function alarmMetrics(alarm: Json): PlottedMetric[] {
  const read = (metric: Json): PlottedMetric => ({
    namespace: String(metric.Namespace),
    name: String(metric.MetricName),
    dimensions: Object.fromEntries(
      ((metric.Dimensions ?? []) as { Name: string; Value: unknown }[]).map((d) => [d.Name, intrinsicText(d.Value)]),
    ),
  });
  if (alarm.MetricName !== undefined) return [read(alarm)];
  return ((alarm.Metrics ?? []) as Json[]).flatMap((m) =>
    m.MetricStat === undefined ? [] : [read((m.MetricStat as Json).Metric as Json)],
  );
}

/** Every name keypool publishes per pool (lib/observability/metric-names.ts). */
const PUBLISHED = new Set<string>([...Object.values(METRIC), ...Object.values(COMPLETION_METRIC)]);
/** The POOL_ROW entries with at least one published series: the graphs of each pool's row. */
const ROW_GRAPHS = POOL_ROW.filter((entry) => entry.series.some((s) => s.metric !== undefined));

/** The widgets of each pool's row, by pool: from its heading down to the next heading. */
function poolRows(widgets: Widget[]): Map<string, Widget[]> {
  const headings = widgets
    .filter((w) => w.type === 'text' && String(w.properties.markdown).startsWith('## '))
    .sort((a, b) => a.y - b.y);
  const rows = new Map<string, Widget[]>();
  headings.forEach((heading, i) => {
    const pool = /^## Pool `([^`]+)`/.exec(String(heading.properties.markdown))?.[1];
    if (pool === undefined) return;
    const end = headings[i + 1]?.y ?? Number.POSITIVE_INFINITY;
    rows.set(
      pool,
      widgets.filter((w) => w !== heading && w.y >= heading.y && w.y < end),
    );
  });
  return rows;
}

const STAGES = {
  // Two pools, one with punctuation, each with its own minimum; one watches its credits too.
  prod: { stage: 'prod', pools: 'stability:3:30,sdxl-turbo:2' },
  // No pools given: the stage's default list.
  dev: { stage: 'dev' },
};

describe.each(Object.entries(STAGES))('the dashboard of %s', (stageName, context) => {
  let s: Stage;

  beforeAll(() => {
    // Prepare / Act: the stage synthesized offline, the dashboard's body parsed.
    s = stage(context);
  });

  it('is the one dashboard keypool-<stage>', () => {
    expect(s.name).toBe(`keypool-${stageName}`);
  });

  it('has one row per declared pool, in order: its heading, then one graph per published POOL_ROW entry, each naming only that pool', () => {
    // Prepare
    const rows = poolRows(s.widgets);
    const declared = s.config.pools.map((p) => p.pool);
    // Assess
    expect([...rows.keys()]).toEqual(declared);
    expect(declared.length).toBeGreaterThan(0);
    for (const [pool, row] of rows) {
      const graphs = row.filter((w) => w.type === 'metric');
      expect(graphs.map((w) => w.properties.title)).toEqual(ROW_GRAPHS.map((entry) => `${pool}: ${entry.title}`));
      expect(row).toHaveLength(graphs.length);
      for (const graph of graphs)
        for (const metric of plotted(graph))
          expect(metric, String(graph.properties.title)).toMatchObject({
            namespace: 'keypool',
            dimensions: { pool },
          });
    }
  });

  it('plots every metric keypool publishes per pool on each pool row, and no keypool metric that nothing publishes', () => {
    // Prepare
    const keypoolMetrics = s.widgets.flatMap(plotted).filter((m) => m.namespace === 'keypool');
    // Assess
    const stackWide = new Set<string>(Object.values(STACK_METRIC));
    for (const metric of keypoolMetrics)
      expect(PUBLISHED.has(metric.name) || stackWide.has(metric.name), metric.name).toBe(true);
    for (const [pool, row] of poolRows(s.widgets)) {
      const names = new Set(row.flatMap(plotted).map((m) => m.name));
      expect([...names].sort(), pool).toEqual([...PUBLISHED].sort());
    }
    // Usable credits joins the row only once metric-names.ts names it.
    expect(keypoolMetrics.some((m) => m.name === 'UsableCredits')).toBe('usableCredits' in METRIC);
  });

  it.each([
    ['usable-keys', METRIC.usableKeys, (p: StagePool) => p.minUsableKeys],
    ['usable-credits', METRIC.usableCredits, (p: StagePool) => p.minUsableCredits],
  ] as const)("draws each pool's %s threshold from the stage config, where its alarm is", (_what, metric, minimum) => {
    // Prepare
    const alarms = resources(s.template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    for (const config of s.config.pools) {
      const { pool } = config;
      const graph = poolRows(s.widgets)
        .get(pool)
        ?.find((w) => plotted(w).some((m) => m.name === metric));
      const alarm = alarms.find(
        (a) => a.MetricName === metric && JSON.stringify(a.Dimensions).includes(`"Value":"${pool}"`),
      );
      const horizontal = (graph?.properties.annotations as { horizontal?: Json[] } | undefined)?.horizontal;
      // Assess: a line where the pool's alarm pages, none where it has no alarm.
      expect(graph, pool).toBeDefined();
      expect(horizontal?.map((h) => h.value) ?? [], pool).toEqual(alarm === undefined ? [] : [minimum(config)]);
      expect(alarm?.Threshold, pool).toBe(alarm === undefined ? undefined : minimum(config));
    }
  });

  it("plots every alarm's metric, name and dimensions (each metric of a math alarm too)", () => {
    // Prepare
    const onDashboard = new Set(s.widgets.flatMap(plotted).map(metricKey));
    const alarms = resources(s.template, 'AWS::CloudWatch::Alarm');
    const watched = alarms.flatMap(([id, a]) => alarmMetrics(a.Properties).map((m) => [id, m] as const));
    // Assess
    expect(alarms.length).toBeGreaterThan(0);
    for (const [, alarm] of alarms) expect(alarmMetrics(alarm.Properties).length).toBeGreaterThan(0);
    for (const [id, metric] of watched)
      expect(onDashboard.has(metricKey(metric)), `${id}: ${metricKey(metric)}`).toBe(true);
  });

  it('lists every alarm of the stack in the alarm-status widget, and nothing else', () => {
    // Prepare
    const statusWidgets = s.widgets.filter((w) => w.type === 'alarm');
    const alarmArns = resources(s.template, 'AWS::CloudWatch::Alarm').map(([id]) =>
      intrinsicText({ 'Fn::GetAtt': [id, 'Arn'] }),
    );
    // Assess
    expect(statusWidgets).toHaveLength(1);
    expect([...((statusWidgets[0]?.properties.alarms ?? []) as string[])].sort()).toEqual(alarmArns.sort());
  });

  it("reads the maintenance function's log group for the run summaries and the keys it could not check", () => {
    // Prepare
    const queries = s.widgets.filter((w) => w.type === 'log').map((w) => String(w.properties.query));
    const [[logGroupId] = ['']] = resources(s.template, 'AWS::Logs::LogGroup').filter(([id]) =>
      id.startsWith('maintainfunctionlogs'),
    );
    // Assess
    expect(queries).toHaveLength(2);
    for (const query of queries) expect(query).toContain(`SOURCE '${intrinsicText({ Ref: logGroupId })}'`);
    expect(queries.map((q) => /filter message = '([^']+)'/.exec(q)?.[1])).toEqual([
      MAINTENANCE_LOG.run,
      MAINTENANCE_LOG.keyNotChecked,
    ]);
  });
});
