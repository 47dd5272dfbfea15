/**
 * The alarms that page before a pool runs dry or the API fails, for each configured pool:
 * usable keys, suspect keys left unsettled and keys whose secret cannot be decrypted (published
 * by the maintenance function) and 409s already answered (published by the lease and proxy functions);
 * then 5xx answers of the HTTP API and the proxy's own 5xx (not the provider's passed through), each function's errors and throttles, and DynamoDB throttled requests. All go to
 * one encrypted SNS topic.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { StagePool } from '../config.js';
import { METRIC } from '../../lib/observability/metric-names.js';
import { maintenancePeriod, poolMetric, proxyKeypool5xx, tableThrottles } from './watched-metrics.js';

export interface KeypoolAlarmsProps {
  api: HttpApi;
  functions: Record<string, IFunction>;
  table: ITable;
  pools: readonly StagePool[];
  /** the maintenance schedule: UsableKeys arrives once per run */
  maintenanceEvery: Duration;
  alarmEmail: string | undefined;
  removal: 'retain' | 'destroy';
}

export class KeypoolAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: KeypoolAlarmsProps) {
    super(scope, id);
    // SNS encryption needs a customer-managed key: CloudWatch cannot publish to a topic
    // under the AWS-managed aws/sns key. CloudWatch gets only what publishing needs.
    const key = new Key(this, 'topic-key', {
      description: 'keypool: encrypts the alarm topic',
      enableKeyRotation: true,
      removalPolicy: props.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.topic = new Topic(this, 'topic', { masterKey: key, enforceSSL: true, displayName: 'keypool alarms' });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.topic);

    const add = (alarmId: string, alarm: Omit<ConstructorParameters<typeof Alarm>[2], 'actionsEnabled'>): void => {
      const created = new Alarm(this, alarmId, alarm);
      created.addAlarmAction(action);
      created.addOkAction(action);
      this.alarms.push(created);
    };

    // One maintenance report per period; no report at all (maintenance broken) counts as
    // breaching for UsableKeys: the pool is unwatched. A run reports when it ends, and runs
    // last from seconds to their deadline, so one clock-aligned period may hold two reports
    // and the next none while every run is on time; any two periods in a row hold one.
    const period = maintenancePeriod(props.maintenanceEvery);
    // The pool's other gauges come in the same record as UsableKeys, so theirs is missing exactly
    // when its is, and its alarm pages for that. Theirs keep the state their last report put
    // them in (IGNORE): breaching would page a second time for one stopped schedule, and
    // NOT_BREACHING would send an OK for suspect, undecryptable or short keys nothing settled.
    const lastReportStands = TreatMissingData.IGNORE;
    for (const { pool, minUsableKeys, minUsableCredits } of props.pools) {
      const slug = pool.toLowerCase().replace(/[^a-z0-9]+/g, '-');
      // Keys are not credits: 50 usable keys of one empty account lease nothing that works.
      if (minUsableCredits !== undefined && minUsableCredits > 0)
        add(`usable-credits-${slug}`, {
          alarmDescription: `keypool: pool "${pool}" has fewer than ${minUsableCredits} credits in accounts with a usable key`,
          metric: poolMetric(pool, METRIC.usableCredits, 'Minimum', period),
          threshold: minUsableCredits,
          comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: lastReportStands,
        });
      add(`usable-keys-${slug}`, {
        alarmDescription: `keypool: pool "${pool}" has fewer than ${minUsableKeys} usable keys (or maintenance stopped reporting)`,
        metric: poolMetric(pool, METRIC.usableKeys, 'Minimum', period),
        threshold: minUsableKeys,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        // Two periods in a row, low or without a report: a single empty period is a long run
        // followed by a short one, not a stopped schedule.
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        treatMissingData: TreatMissingData.BREACHING,
      });
      // A caller's invalid_key makes a key suspect until the next maintenance run confirms it
      // (disabled) or clears it (active); suspect keys are checked first. A run that cannot
      // reach the provider (5xx, 429, its deadline) leaves them suspect, out of the pool, and
      // one such run is often a blip the next one settles. Two runs in a row each leaving a
      // report made before it unsettled means reports are not being settled: the pool shrinks
      // on clients' word. Not SuspectKeys: under a steady trickle of reports every run ends
      // with a key reported while it ran, which the next run settles. (The construct id is the
      // alarm's from when it watched SuspectKeys: kept, so the alarm is updated, not replaced.)
      add(`suspect-keys-${slug}`, {
        alarmDescription: `keypool: pool "${pool}" has suspect keys that two maintenance runs in a row did not settle (reports of invalid_key made before the run, neither confirmed nor cleared)`,
        metric: poolMetric(pool, METRIC.unsettledSuspectKeys, 'Minimum', period),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        treatMissingData: lastReportStands,
      });
      // A key whose ciphertext itself does not open (copied from another item, altered) is out
      // of the pool (never leased) until resealed or re-imported. A wrapping key that is missing
      // from the configuration, disabled or deleted marks nothing: those answer 503. One run
      // reporting it is enough: nothing clears it by itself.
      add(`undecryptable-keys-${slug}`, {
        alarmDescription: `keypool cannot decrypt the secret of some keys of pool "${pool}" (the UndecryptableKeys metric says how many): their ciphertext was copied or tampered with (a missing wrapping key marks nothing: it answers 503 sealing_misconfigured). They are never leased until \`keypool reseal\` opens them again or they are imported anew.`,
        metric: poolMetric(pool, METRIC.undecryptableKeys, 'Maximum', period),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: lastReportStands,
      });
      // A caller made more negative reports (or lease-less counts) in a minute than the pool
      // allows: they took no effect, but a client is misbehaving or someone is trying to empty
      // the pool with reports. The metric counts each report past the budget.
      add(`client-reports-over-budget-${slug}`, {
        alarmDescription: `keypool: a caller of pool "${pool}" sent more negative reports or lease-less counts than maxClientReportsPerMinute (they took no effect)`,
        metric: poolMetric(pool, METRIC.clientReportsOverBudget, 'Sum', Duration.minutes(5)),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      // Most of a maintenance run's answers were the provider refusing keys (401/403 in its
      // documented shape): the run disabled none of them, since a provider-wide refusal is not
      // a verdict on each key. Someone must look: the account, the provider, or a proxy in between.
      add(`provider-auth-breaker-${slug}`, {
        alarmDescription: `keypool: maintenance of pool "${pool}" saw mostly 401/403 from the provider and disabled no key (provider-auth breaker open)`,
        metric: poolMetric(pool, METRIC.providerAuthBreakerOpen, 'Maximum', period),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: lastReportStands,
      });
      // Callers already got 409 no_usable_key: the pool ran dry between maintenance runs.
      add(`no-usable-key-${slug}`, {
        alarmDescription: `keypool: POST /pools/${pool}/leases or the pool's proxy answered 409 no_usable_key`,
        metric: poolMetric(pool, METRIC.noUsableKey, 'Sum', Duration.minutes(5)),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }

    add('api-5xx', {
      alarmDescription: 'keypool: the HTTP API answered 5xx',
      metric: props.api.metricServerError({ statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    // The proxy passes the provider's 5xx through and answers 502/504 when the provider could not
    // be reached or did not answer: the REST API's 5XXError counts those too, so a provider
    // outage paged as if keypool failed. This watches the 5xx keypool answers for its own faults
    // (an internal error, the key service, the table); a function that crashed, timed out or was
    // throttled (API Gateway's own 5xx) pages through the proxy function's errors and throttles.
    add('proxy-keypool-5xx', {
      alarmDescription:
        "keypool: the proxy answered 5xx for a fault of keypool's own (internal error, the key service or the table; never the provider's 5xx passed through)",
      metric: proxyKeypool5xx(Duration.minutes(5)),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    for (const [name, fn] of Object.entries(props.functions)) {
      add(`${name}-errors`, {
        alarmDescription: `keypool: the ${name} function failed`,
        metric: fn.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      add(`${name}-throttles`, {
        alarmDescription: `keypool: the ${name} function was throttled`,
        metric: fn.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }

    add('table-throttles', {
      alarmDescription: 'keypool: DynamoDB throttled requests on the key table',
      metric: tableThrottles(props.table, Duration.minutes(5)),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    this.allowAlarmsToPublish(key);
  }

  /**
   * Lets CloudWatch deliver this construct's alarms: a topic with a policy of its own (the
   * TLS-only deny) loses SNS's default policy, so without an allow nothing reaches the topic,
   * and an encrypted topic also needs CloudWatch to use its key. AWS documents both halves:
   * the key statement for AWS services publishing to encrypted topics
   * (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)
   * and the alarm's ARN as aws:SourceArn of the publish
   * (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html#sns-allow-cloudwatch-alarm-to-publish-to-topic-in-another-account).
   * aws:SourceAccount and aws:SourceArn keep CloudWatch from acting for anyone else's alarms
   * (confused deputy). Proven only by a real delivery: docs/operations.md (set-alarm-state).
   */
  private allowAlarmsToPublish(key: Key): void {
    const stack = Stack.of(this);
    const cloudWatch = new ServicePrincipal('cloudwatch.amazonaws.com');
    const account = { 'aws:SourceAccount': stack.account };
    // The topic policy is a resource apart from the topic, so it can name each alarm exactly
    // (topic <- alarms <- policy, no cycle): no other alarm of the account pages through it.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowKeypoolAlarmsToPublish',
        principals: [cloudWatch],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: account, ArnLike: { 'aws:SourceArn': this.alarms.map((alarm) => alarm.alarmArn) } },
      }),
    );
    // The key policy lives inside the key resource, and key <- topic <- alarms: naming the
    // alarms here would be a cycle. Any alarm of this account and region may use the key,
    // which encrypts this topic only; the topic policy above still decides who publishes.
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseTheTopicKey',
        principals: [cloudWatch],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: account,
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
  }
}
