/**
 * "Our kind of function": one construct fixes what every keypool Lambda shares (Node.js 24,
 * ARM64, ESM bundle with the AWS SDK inside, minified, source maps, its own log group with a
 * retention, Powertools environment) and grants table and secrets-key access only as asked.
 */
import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { ApplicationLogLevel, Architecture, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { cdkBundling, PROJECT_ROOT } from '../bundling.js';
import type { RoleTableAccess } from '../../lib/table-access.js';
import { SECRETS_KEY_ACTION, SECRETS_KEY_ENV, type SecretsAccess, sealedContextConditions } from '../secrets-key.js';
import { tableStatements } from '../table-grants.js';

export interface TableAccess {
  table: ITable;
  /** the table's customer-managed key */
  key: IKey;
  /** what the function may do to which items, and which indexes it queries (lib/table-access.ts) */
  access: RoleTableAccess;
}

export interface SecretsKeyAccess {
  /** the current secrets key: what `encrypt` seals under, and what `decrypt` opens */
  key: IKey;
  /** what the function does with sealed secrets */
  access: SecretsAccess;
  /** keys being rotated away from: `decrypt` may still open what they sealed; never sealed under */
  previousKeyArns?: readonly string[];
}

/** POWERTOOLS_SERVICE_NAME of every function (the logs' `service` field). */
export const SERVICE_NAME = 'keypool';

export interface KeypoolFunctionProps {
  /** entry point, relative to the project root (functions/<name>.ts) */
  entry: string;
  /** the table's name, from the table construct: every function gets KEYPOOL_TABLE */
  tableName: string;
  description: string;
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  logRetention: RetentionDays;
  removal: 'retain' | 'destroy';
  environment?: Record<string, string>;
  timeout?: Duration;
  memorySize?: number;
  /** reserved concurrency: at most this many instances at once */
  reservedConcurrency?: number;
}

export class KeypoolFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: KeypoolFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'logs', {
      retention: props.logRetention,
      removalPolicy: props.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    // Our own role instead of AWSLambdaBasicExecutionRole: it may write to this log group
    // only, and every other permission is added by a grant below.
    this.role = new Role(this, 'role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.fn = new NodejsFunction(this, 'fn', {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      description: props.description,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      ...(props.reservedConcurrency === undefined ? {} : { reservedConcurrentExecutions: props.reservedConcurrency }),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      // With JSON logs Lambda drops application logs below its own level (INFO unless set) and
      // hands that level to the process (AWS_LAMBDA_LOG_LEVEL), which the logger obeys before
      // POWERTOOLS_LOG_LEVEL: the stage's level is Lambda's too, or a DEBUG stage logs at INFO.
      applicationLogLevelV2: ApplicationLogLevel[props.logLevel],
      bundling: cdkBundling(),
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        NODE_OPTIONS: '--enable-source-maps',
        KEYPOOL_TABLE: props.tableName,
        ...props.environment,
      },
    });
  }

  /**
   * Grants exactly the function's grants on the table (infra/table-grants.ts: each on the
   * items and attributes it names, IAM conditions included) and Query on each index it queries,
   * on that index's ARN alone (never `index/*`), plus kms:Decrypt on the table's key: DynamoDB
   * decrypts the table key with the caller's permissions on every request that reads or
   * writes an item of a CMK-encrypted table, an index Query included. Grants nothing to a
   * function that never touches the table.
   */
  bindTable(table: TableAccess): void {
    const statements = tableStatements(table.access, table.table.tableArn);
    if (statements.length === 0) return;
    for (const statement of statements) this.role.addToPrincipalPolicy(PolicyStatement.fromJson(statement));
    this.role.addToPrincipalPolicy(new PolicyStatement({ actions: ['kms:Decrypt'], resources: [table.key.keyArn] }));
  }

  /**
   * Gives the function the secrets key it reads from KEYPOOL_SECRETS_KEY_ARN and exactly one
   * KMS action, only with keypool's encryption context: `decrypt` may kms:Decrypt under the
   * current key and each previous one (which it also gets in KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS);
   * `encrypt` may kms:GenerateDataKey under the current key only. `none` gets neither the
   * variable nor a statement. Explicit statements rather than key.grantEncrypt/grantDecrypt:
   * grantEncrypt adds kms:Encrypt, ReEncrypt* and GenerateDataKey* (wildcards cdk-nag's IAM5
   * flags) for a keyring that calls GenerateDataKey only, and neither grant can carry the
   * encryption-context condition.
   */
  bindSecrets(secrets: SecretsKeyAccess): void {
    if (secrets.access === 'none') return;
    const previous = secrets.access === 'decrypt' ? [...(secrets.previousKeyArns ?? [])] : [];
    this.fn.addEnvironment(SECRETS_KEY_ENV.keyArn, secrets.key.keyArn);
    if (previous.length > 0) this.fn.addEnvironment(SECRETS_KEY_ENV.previousKeyArns, previous.join(','));
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: [SECRETS_KEY_ACTION[secrets.access]],
        resources: [secrets.key.keyArn, ...previous],
        // Any pool, exactly keypool's context: these functions serve every pool (see sealedContextConditions).
        conditions: sealedContextConditions(),
      }),
    );
  }
}
