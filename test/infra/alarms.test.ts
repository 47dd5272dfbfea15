/**
 * Every alarm of the stateless stack, read from the synthesized template, against when its
 * metric is published: maintenance's gauges once per run for every pool (a heartbeat), the rest
 * only when something happens (an event). A heartbeat's missing report is a stopped schedule,
 * which one alarm per pool (UsableKeys, missing = breaching) pages for; the pool's other gauges
 * keep the state their last report put them in (ignore), so a stopped schedule neither pages
 * twice nor sends an OK for keys nothing settled. An event's missing point is a quiet period
 * (notBreaching): breaching would page whenever nothing happens.
 */
import { type CfnAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_NAMES } from '../../infra/entry-points.js';
import { buildKeypoolApp, type KeypoolApp } from '../../infra/keypool-app.js';
import { type Json, NO_BUNDLING, resource } from '../support/templates.js';

const CONTEXT = { ...NO_BUNDLING, stage: 'prod', pools: 'stability:3:30,sdxl-turbo:2:10' };
const POOLS = ['stability', 'sdxl-turbo'];
/** The maintenance period of the prod schedule (every 15 minutes), in seconds. */
const MAINTENANCE_PERIOD = 900;

interface Expected {
  /** when CloudWatch gets a point of the alarm's metric */
  emitted: 'every maintenance run' | 'only when it happens';
  treatMissingData: 'breaching' | 'notBreaching' | 'ignore';
  period: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  /** why this choice, for this metric */
  reason: string;
}

const heartbeatFollower = (evaluationPeriods: number, reason: string): Expected => ({
  emitted: 'every maintenance run',
  treatMissingData: 'ignore',
  period: MAINTENANCE_PERIOD,
  evaluationPeriods,
  datapointsToAlarm: evaluationPeriods,
  reason: `${reason}; no report keeps the last state: usable-keys pages for a stopped schedule, and an OK here would say keys were settled that nothing looked at`,
});

const event = (reason: string): Expected => ({
  emitted: 'only when it happens',
  treatMissingData: 'notBreaching',
  period: 300,
  evaluationPeriods: 1,
  datapointsToAlarm: 1,
  reason: `${reason}; no point is a period where it did not happen`,
});

/** Each alarm by its construct id (a pool's with the pool's slug), and what it must be. */
const EXPECTED: Record<string, Expected> = {
  ...Object.fromEntries(
    POOLS.flatMap((pool) => [
      [
        `usable-keys-${pool}`,
        {
          emitted: 'every maintenance run',
          treatMissingData: 'breaching',
          period: MAINTENANCE_PERIOD,
          evaluationPeriods: 2,
          datapointsToAlarm: 2,
          reason:
            'the one alarm a stopped schedule pages through: two periods in a row without a report (one alone is a long run followed by a short one)',
        },
      ],
      [`usable-credits-${pool}`, heartbeatFollower(1, 'one run below the minimum credits is the truth until the next')],
      [
        `suspect-keys-${pool}`,
        heartbeatFollower(2, 'two runs in a row ending with a suspect key: reports are not being settled'),
      ],
      [`undecryptable-keys-${pool}`, heartbeatFollower(1, 'nothing clears an undecryptable key by itself')],
      [
        `provider-auth-breaker-${pool}`,
        heartbeatFollower(1, 'one run that disabled nothing on mostly 401/403 needs a look'),
      ],
      [`no-usable-key-${pool}`, event('a 409 no_usable_key answered')],
      [`client-reports-over-budget-${pool}`, event('a report past the caller budget')],
    ]),
  ),
  'api-5xx': event('API Gateway counts 5xx only for periods with requests'),
  'proxy-keypool-5xx': event("the proxy counts a 5xx of keypool's own only when it answers one"),
  ...Object.fromEntries(
    ENTRY_NAMES.flatMap((name) => [
      [`${name}-errors`, event('Lambda counts errors only for periods with invocations')],
      [`${name}-throttles`, event('Lambda counts throttles only for periods with invocations')],
    ]),
  ),
  'table-throttles': event('DynamoDB publishes ThrottledRequests only for an operation that was throttled'),
};

describe('alarms: missing data, period and datapoints against when each metric is published', () => {
  let built: KeypoolApp;
  let template: Template;
  /** Each alarm's template properties by construct id. */
  const alarms = new Map<string, Json>();

  beforeAll(() => {
    // Prepare
    built = buildKeypoolApp({ context: CONTEXT, builtinCloudFormationValidation: false });
    template = Template.fromStack(built.stateless);
    for (const alarm of built.stateless.alarms.alarms) {
      const logicalId = built.stateless.resolve((alarm.node.defaultChild as CfnAlarm).logicalId) as string;
      alarms.set(alarm.node.id, resource(template, logicalId).Properties);
    }
  });

  it('knows every alarm of the stack, and every alarm it knows is there', () => {
    expect([...alarms.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED).map(([id, expected]) => ({ id, ...expected })))(
    '$id, published $emitted: missing data $treatMissingData, because $reason',
    ({ id, treatMissingData, period, evaluationPeriods, datapointsToAlarm }) => {
      // Act
      const alarm = alarms.get(id) ?? {};
      const series = (alarm.Metrics ?? []) as { MetricStat?: { Period: number } }[];
      // Assess
      expect({
        treatMissingData: alarm.TreatMissingData,
        period: alarm.Period ?? series.find((m) => m.MetricStat)?.MetricStat?.Period,
        evaluationPeriods: alarm.EvaluationPeriods,
        datapointsToAlarm: alarm.DatapointsToAlarm ?? alarm.EvaluationPeriods,
      }).toEqual({ treatMissingData, period, evaluationPeriods, datapointsToAlarm });
    },
  );

  it('a stopped schedule pages once per pool and sends no OK for gauges nothing settled', () => {
    // Prepare: CloudWatch's verdict once a heartbeat's whole evaluation range is empty
    // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html):
    // breaching -> ALARM, notBreaching -> OK, ignore -> the state it was in, missing -> INSUFFICIENT_DATA.
    const verdict: Record<string, string> = {
      breaching: 'ALARM',
      notBreaching: 'OK',
      ignore: 'unchanged',
      missing: 'INSUFFICIENT_DATA',
    };
    // Act
    const heartbeats = Object.entries(EXPECTED)
      .filter(([, expected]) => expected.emitted === 'every maintenance run')
      .map(([id]) => [id, verdict[(alarms.get(id)?.TreatMissingData as string | undefined) ?? 'missing']]);
    // Assess
    expect(heartbeats.filter(([, state]) => state === 'ALARM').map(([id]) => id)).toEqual(
      POOLS.map((pool) => `usable-keys-${pool}`),
    );
    expect(heartbeats.filter(([, state]) => state !== 'ALARM').every(([, state]) => state === 'unchanged')).toBe(true);
  });
});
