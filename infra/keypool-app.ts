/**
 * Builds the keypool CDK app: the stateful stack (table, its key, the secrets key, the proxy's answers bucket) and the stateless stack
 * (functions, API, schedule, alarms, dashboard) for one stage, with cdk-nag's AWS Solutions checks
 * plugged into synthesis. `infra/app.ts` runs it for the CLI; the tests build it directly.
 */
import { App, type AppProps, Tags } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Validations } from 'aws-cdk-lib';
import { resolveStageConfig, type StageConfig } from './config.js';
import { acknowledgeFindings } from './nag.js';
import { KeypoolStatefulStack } from './stateful-stack.js';
import { KeypoolStatelessStack } from './stateless-stack.js';

export interface KeypoolApp {
  app: App;
  config: StageConfig;
  stateful: KeypoolStatefulStack;
  stateless: KeypoolStatelessStack;
}

/**
 * The app for the stage named in context (`stage`, default dev). Stacks are environment
 * agnostic (no account or region lookups), so synthesis works offline.
 */
export function buildKeypoolApp(props: AppProps = {}): KeypoolApp {
  const app = new App(props);
  const context = Object.fromEntries(
    [
      'stage',
      'alarmEmail',
      'pools',
      'poolAlarms',
      'maintenanceEveryMinutes',
      'throttleRate',
      'throttleBurst',
      'migrationBucket',
      'migrationBucketKeyArn',
      'legacyTable',
      'legacyTableKeyArn',
      'secretsKeyGeneration',
      'previousSecretsKeyGenerations',
      'previousSecretsKeyArns',
    ].map((key) => [key, app.node.tryGetContext(key) as unknown]),
  );
  const config = resolveStageConfig(context);
  const prefix = `keypool-${config.stage}`;
  const stateful = new KeypoolStatefulStack(app, `${prefix}-data`, {
    config,
    description: `keypool (${config.stage}): key table, its encryption key, the key that seals the API keys, the proxy's answers bucket (stateful, retained)`,
    terminationProtection: config.removal === 'retain',
  });
  const stateless = new KeypoolStatelessStack(app, `${prefix}-api`, {
    config,
    table: stateful.table,
    tableKey: stateful.tableKey,
    secretsKey: stateful.secretsKey,
    previousSecretsKeys: stateful.previousSecretsKeys,
    answers: { bucket: stateful.answers, key: stateful.answersKey, bucketArn: stateful.answersBucketArn },
    description: `keypool (${config.stage}): functions, HTTP API, proxy REST API, maintenance schedule, alarms, dashboard (stateless)`,
  });
  Tags.of(app).add('project', 'keypool');
  Tags.of(app).add('stage', config.stage);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  acknowledgeFindings(stateless, config, stateful);
  return { app, config, stateful, stateless };
}
