/**
 * The stateless half of keypool: one function per entry point in functions/, the HTTP API,
 * the proxy's REST API, the maintenance schedule, the alarms, the dashboard and the callers' policies (one per
 * configured pool, one for operators). Safe to destroy and redeploy at any time; the data lives in the
 * stateful stack.
 */
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { StageConfig } from './config.js';
import { ANSWERS_BUCKET_ENV, ANSWERS_PREFIX } from '../lib/domain/proxy-names.js';
import { METRICS_NAMESPACE } from '../lib/observability/metric-names.js';
import { KeypoolAlarms } from './constructs/alarms.js';
import { KeypoolDashboard } from './constructs/dashboard.js';
import { adminPolicyName, clientPolicyName, KeypoolHttpApi } from './constructs/http-api.js';
import { KeypoolFunction } from './constructs/keypool-function.js';
import { S3_OBJECT_KEY_ACTIONS } from './constructs/key-policies.js';
import { KeypoolProxyApi } from './constructs/proxy-api.js';
import { ENTRY_NAMES, ENTRY_POINTS, type EntryName } from './entry-points.js';

/**
 * The output that holds a pool's client policy ARN: `ClientPolicyArn` and the pool's letters
 * and digits, each run after punctuation capitalised (`sdxl-turbo` -> `ClientPolicyArnSdxlTurbo`).
 * Output ids keep only letters and digits; the stage config refuses two pools that would meet here.
 */
export function clientPolicyOutputId(pool: string): string {
  const words = pool.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  return `ClientPolicyArn${words.map((w) => (w[0] ?? '').toUpperCase() + w.slice(1)).join('')}`;
}

/** The ARN of the objects the proxy keeps in the answers bucket (its name prefix, then anything). */
export function answersObjectsArn(bucketArn: string): string {
  return `${bucketArn}/${ANSWERS_PREFIX}*`;
}

export interface StatelessStackProps extends StackProps {
  config: StageConfig;
  table: ITable;
  tableKey: IKey;
  /** the stateful stack's secrets key: its ARN is each sealing or opening function's KEYPOOL_SECRETS_KEY_ARN */
  secretsKey: IKey;
  /** earlier generations the stateful stack keeps during a rotation: opened, never sealed under */
  previousSecretsKeys?: readonly IKey[];
  /** the stateful stack's bucket for proxied answers kept for an Idempotency-Key replay, and its key */
  answers: { bucket: IBucket; key: IKey; bucketArn: string };
}

export class KeypoolStatelessStack extends Stack {
  readonly functions: Record<EntryName, KeypoolFunction>;
  readonly httpApi: KeypoolHttpApi;
  readonly proxyApi: KeypoolProxyApi;
  readonly alarms: KeypoolAlarms;
  readonly dashboard: KeypoolDashboard;
  readonly schedule: Rule;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config, table, tableKey, secretsKey } = props;
    const every = Duration.minutes(config.maintenanceEveryMinutes);
    // The stack's earlier generations, then keys from outside the stack (-c previousSecretsKeyArns).
    const previousKeyArns = [
      ...(props.previousSecretsKeys ?? []).map((key) => key.keyArn),
      ...config.secrets.previousKeyArns,
    ];

    const extraEnvironment: Partial<Record<EntryName, Record<string, string>>> = {
      // Each pool's minCredits and cap are the pool's own (PUT /pools/{pool}), not the deployment's.
      maintain: {
        KEYPOOL_BALANCE_RATE: String(config.maintenance.balanceRate),
        STABILITY_API_BASE_URL: config.maintenance.stabilityApiBaseUrl,
      },
      // An import with verify=true asks the provider's account endpoint about each key.
      keys: { STABILITY_API_BASE_URL: config.maintenance.stabilityApiBaseUrl },
      // The provider the proxy calls is the one maintenance checks the keys with.
      proxy: {
        STABILITY_API_BASE_URL: config.maintenance.stabilityApiBaseUrl,
        [ANSWERS_BUCKET_ENV]: props.answers.bucket.bucketName,
      },
    };

    // A maintenance run checks keys until its deadline, the function's timeout, and with
    // reserved concurrency 1 a run due while the last one still goes is throttled and dropped
    // (its period left without gauges): no run may outlast the schedule's interval.
    const timeoutSeconds: Partial<Record<EntryName, number>> = {
      maintain: Math.min(ENTRY_POINTS.maintain.timeoutSeconds, every.toSeconds()),
    };

    const functions = {} as Record<EntryName, KeypoolFunction>;
    for (const name of ENTRY_NAMES) {
      const entry = ENTRY_POINTS[name];
      const fn = new KeypoolFunction(this, `${name}-function`, {
        entry: entry.file,
        description: entry.description,
        tableName: table.tableName,
        logLevel: config.logLevel,
        logRetention: config.logRetention,
        removal: config.removal,
        timeout: Duration.seconds(timeoutSeconds[name] ?? entry.timeoutSeconds),
        memorySize: entry.memorySize,
        ...(entry.reservedConcurrency === undefined ? {} : { reservedConcurrency: entry.reservedConcurrency }),
        environment: {
          ...(entry.metrics ? { POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE } : {}),
          ...extraEnvironment[name],
        },
      });
      fn.bindTable({ table, key: tableKey, access: entry.table });
      fn.bindSecrets({ key: secretsKey, access: entry.secrets, previousKeyArns });
      functions[name] = fn;
    }
    this.functions = functions;

    this.grantMigrationSources(functions.migrate, config.migration);
    this.grantAnswers(functions.proxy, props.answers);

    this.httpApi = new KeypoolHttpApi(this, 'http', {
      handlers: {
        meta: functions.meta.fn,
        pools: functions.pools.fn,
        keys: functions.keys.fn,
        list: functions.list.fn,
        lease: functions.lease.fn,
        counting: functions.counting.fn,
      },
      stage: config.stage,
      pools: config.pools.map((p) => p.pool),
      throttle: config.throttle,
      logRetention: config.logRetention,
      removal: config.removal,
    });

    this.proxyApi = new KeypoolProxyApi(this, 'proxy', {
      handler: functions.proxy.fn,
      stage: config.stage,
      throttle: config.throttle,
      logRetention: config.logRetention,
      removal: config.removal,
    });
    // A pool's client policy reaches that pool's proxy too, and nothing of another pool's; the
    // operator's reaches every pool's. Statements only: a policy's description is immutable.
    for (const [pool, policy] of this.httpApi.clientPolicies) policy.addStatements(this.proxyApi.invokeStatement(pool));
    this.httpApi.adminPolicy.addStatements(this.proxyApi.invokeStatement());

    // A missed or failed run is made good by the next scheduled one, never by a retry: a retry
    // would run beside the next run or the one still going and double the provider's load.
    // EventBridge does not retry the invocation, Lambda does not retry a failed run, and an
    // event throttled because a run is still going (reserved concurrency 1) is dropped after a
    // minute instead of kept for up to 6 hours and run back to back with the next one
    // (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
    functions.maintain.fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
    this.schedule = new Rule(this, 'maintenance-schedule', {
      description: `keypool: run maintenance every ${config.maintenanceEveryMinutes} minutes`,
      schedule: Schedule.rate(every),
      targets: [new LambdaFunction(functions.maintain.fn, { retryAttempts: 0 })],
    });

    this.alarms = new KeypoolAlarms(this, 'alarms', {
      api: this.httpApi.api,
      functions: Object.fromEntries(ENTRY_NAMES.map((name) => [name, functions[name].fn])),
      table,
      pools: config.pools,
      maintenanceEvery: every,
      alarmEmail: config.alarmEmail,
      removal: config.removal,
    });

    this.dashboard = new KeypoolDashboard(this, 'dashboard', {
      stage: config.stage,
      pools: config.pools,
      maintenanceEvery: every,
      api: this.httpApi.api,
      proxyApi: this.proxyApi.api,
      functions: Object.fromEntries(ENTRY_NAMES.map((name) => [name, functions[name].fn])),
      table,
      maintenance: functions.maintain,
      alarms: this.alarms.alarms,
    });

    new CfnOutput(this, 'ApiUrl', { description: 'keypool HTTP API base URL', value: this.httpApi.api.apiEndpoint });
    new CfnOutput(this, 'ProxyUrl', {
      description:
        "keypool proxy mode's base URL (a REST API, its stage included): the client's proxyUrl; signed for execute-api",
      value: this.proxyApi.api.url,
    });
    for (const [pool, policy] of this.httpApi.clientPolicies) {
      new CfnOutput(this, clientPolicyOutputId(pool), {
        description: `${clientPolicyName(pool)}: attach to applications that lease keys of pool "${pool}"`,
        value: policy.managedPolicyArn,
      });
    }
    new CfnOutput(this, 'AdminPolicyArn', {
      description: `${adminPolicyName()}: attach to operators (every route, every pool)`,
      value: this.httpApi.adminPolicy.managedPolicyArn,
    });
    new CfnOutput(this, 'MigrateFunctionName', {
      description: 'invoke by hand with `aws lambda invoke` to run the one-off migration',
      value: functions.migrate.fn.functionName,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'SNS topic the alarms publish to',
      value: this.alarms.topic.topicArn,
    });
  }

  /**
   * The proxy keeps and replays answers in the answers bucket: it writes and reads objects under
   * the answers prefix (a multipart upload may be aborted), and never deletes or changes the
   * bucket (the lifecycle rule expires them). It holds s3:ListBucket on the bucket only so that
   * S3 answers a GetObject of an answer not kept (yet) with 404, which a retry of a running
   * request meets, rather than 403 (S3 hides a key's absence from a caller who may not list);
   * the proxy never lists, and the bucket holds only answers it may read anyway. SSE-KMS needs
   * GenerateDataKey to write and Decrypt to read or complete a multipart upload, through S3 only.
   */
  private grantAnswers(proxy: KeypoolFunction, answers: StatelessStackProps['answers']): void {
    proxy.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'],
        resources: [answersObjectsArn(answers.bucketArn)],
      }),
    );
    proxy.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [answers.bucketArn] }),
    );
    proxy.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [...S3_OBJECT_KEY_ACTIONS],
        resources: [answers.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': this.viaService('s3') } },
      }),
    );
  }

  /** The kms:ViaService value of a service in this stack's region: a key used only by that service on a function's behalf. */
  private viaService(service: 's3' | 'dynamodb'): string {
    return `${service}.${this.region}.${this.urlSuffix}`;
  }

  /**
   * The migration may read the configured legacy sources, and nothing when none is set. A bucket
   * whose objects are SSE-KMS under a customer managed key needs kms:Decrypt on that key for
   * GetObject to succeed: granted on that key only, and only when S3 asks for it. Likewise a
   * legacy table encrypted under a customer managed key, for Scan: only when DynamoDB asks.
   */
  private grantMigrationSources(migrate: KeypoolFunction, sources: StageConfig['migration']): void {
    const decryptThrough = (keyArn: string | undefined, service: 's3' | 'dynamodb'): void => {
      if (!keyArn) return;
      migrate.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [keyArn],
          conditions: { StringEquals: { 'kms:ViaService': this.viaService(service) } },
        }),
      );
    };
    decryptThrough(sources.sourceBucketKeyArn, 's3');
    decryptThrough(sources.legacyTableKeyArn, 'dynamodb');
    if (sources.sourceBucket) {
      migrate.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [
            this.formatArn({
              service: 's3',
              region: '',
              account: '',
              resource: sources.sourceBucket,
              resourceName: '*',
            }),
          ],
        }),
      );
    }
    if (sources.legacyTable) {
      migrate.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['dynamodb:Scan'],
          resources: [this.formatArn({ service: 'dynamodb', resource: 'table', resourceName: sources.legacyTable })],
        }),
      );
    }
  }
}
