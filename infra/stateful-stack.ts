/**
 * The stateful half of keypool: the table, the customer-managed key that encrypts it, the
 * customer-managed key that seals the API keys inside it, and the bucket (with its key) that
 * keeps proxied answers for an Idempotency-Key replay. It changes rarely, is retained by
 * default, and is deployed apart from the functions so a mistake in the stateless stack can
 * never replace or delete the data or the keys that open it.
 */
import { CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Alias, Key } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { StageConfig } from './config.js';
import { answersKeyPolicy, secretsKeyPolicy, tableKeyPolicy } from './constructs/key-policies.js';
import { secretsKeyAliasName } from './secrets-key.js';
import { cdkTableShape } from './table-shape.js';
import { TTL_ATTRIBUTE } from '../lib/table.js';

/**
 * The construct id of the secrets key of a generation: a new id is a new key (a new ARN).
 * Generation 1 keeps the plain id, and a key keeps its id whether it is current or previous,
 * so only a generation leaving the stack ever removes a key.
 */
export function secretsKeyId(generation: number): string {
  return generation === 1 ? 'secrets-key' : `secrets-key-v${generation}`;
}

export interface StatefulStackProps extends StackProps {
  config: StageConfig;
}

export class KeypoolStatefulStack extends Stack {
  readonly table: Table;
  readonly tableKey: Key;
  /** the current secrets key: seals and opens */
  readonly secretsKey: Key;
  /** earlier generations kept during a rotation: open only */
  readonly previousSecretsKeys: Key[];
  readonly secretsKeyAlias: Alias;
  /** proxied 2xx answers kept for an Idempotency-Key replay (24 h), SSE-KMS under answersKey */
  readonly answers: Bucket;
  readonly answersKey: Key;
  /**
   * The answers bucket's ARN as the other stack imports it, under an export name of its own
   * (`keypool-<stage>-answers-bucket-arn`): a name that reads the same in the IAM statement
   * and in the finding cdk-nag makes of it.
   */
  readonly answersBucketArn: string;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { config } = props;
    const removalPolicy = config.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    const pendingWindow = Duration.days(config.removal === 'retain' ? 30 : 7);

    this.tableKey = new Key(this, 'table-key', {
      description: 'keypool: encrypts the key table (the imported API keys) at rest',
      enableKeyRotation: true,
      removalPolicy,
      pendingWindow,
      policy: tableKeyPolicy(this),
    });

    // A key of its own, not the table key: whoever may read the table (and so use the table
    // key through DynamoDB) still cannot open a secret without Decrypt on this one, which of
    // keypool's roles only lease and maintain hold. Rotation on: KMS replaces the key material yearly and
    // keeps the old material for what it sealed, so the ARN and every ciphertext stay valid.
    // A new generation is for replacing the key itself (a new ARN, `keypool reseal`).
    const secretsKey = (generation: number, description: string) =>
      new Key(this, secretsKeyId(generation), {
        description,
        enableKeyRotation: true,
        removalPolicy,
        pendingWindow,
        policy: secretsKeyPolicy(this),
      });
    this.secretsKey = secretsKey(
      config.secrets.keyGeneration,
      'keypool: seals the API keys in the key table (envelope encryption, encryption context {pool, keyId})',
    );
    // Kept in the stack while their secrets are resealed. The functions that open secrets
    // import their ARNs, so a generation leaves in two deploys: the api stack first (it stops
    // importing), then this one (docs/operations.md, rotating the secrets key).
    this.previousSecretsKeys = config.secrets.previousKeyGenerations.map((generation) =>
      secretsKey(
        generation,
        `keypool: sealed API keys before generation ${config.secrets.keyGeneration} (open only, until keypool reseal has moved them)`,
      ),
    );
    // Not a child of the key: its id stays when the key is replaced, so CloudFormation updates
    // the alias in place to the new key rather than creating a second alias of the same name.
    this.secretsKeyAlias = new Alias(this, 'secrets-key-alias', {
      aliasName: secretsKeyAliasName(config.stage),
      targetKey: this.secretsKey,
      removalPolicy,
    });
    new CfnOutput(this, 'SecretsKeyArn', {
      description: `the KMS key that seals the API keys (${secretsKeyAliasName(config.stage)}); the functions and \`keypool reseal\` use its ARN`,
      value: this.secretsKey.keyArn,
    });
    if (this.previousSecretsKeys.length > 0) {
      new CfnOutput(this, 'PreviousSecretsKeyArns', {
        description:
          'secrets keys of earlier generations, open only: KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS for `keypool reseal`',
        value: Fn.join(
          ',',
          this.previousSecretsKeys.map((key) => key.keyArn),
        ),
      });
    }

    // Mapped from createTableInput (lib/table.ts), the one definition the local stack and the
    // tests create their tables with: keys, indexes and projections are never written twice.
    const shape = cdkTableShape();
    this.table = new Table(this, 'keys', {
      partitionKey: shape.partitionKey,
      ...(shape.sortKey ? { sortKey: shape.sortKey } : {}),
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.tableKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: config.deletionProtection,
      removalPolicy,
      // Only idempotency records expire (lease state lives in slots on the key's own item, and an
      // expired lease stays counted on purpose); DynamoDB deletes them by this attribute.
      timeToLiveAttribute: TTL_ATTRIBUTE,
    });
    // usage-count (the lease query) and pool-keys (a pool's keys, and the pool directory).
    for (const index of shape.indexes) this.table.addGlobalSecondaryIndex(index);

    // A proxied answer (an image, the provider's JSON) kept for an Idempotency-Key replay. Its
    // own key: the table key is usable through DynamoDB only and the secrets key only with
    // keypool's sealing context, and neither should widen to S3.
    this.answersKey = new Key(this, 'answers-key', {
      description: 'keypool: encrypts proxied answers kept for an Idempotency-Key replay (SSE-KMS)',
      enableKeyRotation: true,
      removalPolicy,
      pendingWindow,
      policy: answersKeyPolicy(this),
    });
    this.answers = new Bucket(this, 'proxy-answers', {
      encryption: BucketEncryption.KMS,
      encryptionKey: this.answersKey,
      // One data key per bucket and period instead of a KMS call per object: the cost and the
      // KMS request rate stay flat however many answers are kept.
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      // No versioning: every answer is written once under its own name and never overwritten;
      // only the lifecycle rule deletes, and a noncurrent copy would keep ciphertext past the day.
      versioned: false,
      lifecycleRules: [
        {
          id: 'answers-expire',
          // S3 rounds an expiry to the next midnight UTC: an answer lives 24 to 48 h, never
          // less than the 24 h its idempotency record points at it.
          expiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
      // CloudFormation deletes only an empty bucket, and an answer stays up to 48 h: a stage that
      // is destroyed (dev) empties it first, or `cdk destroy` would fail on it. Prod retains it,
      // and nothing there may delete an answer but the lifecycle rule.
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    this.answersBucketArn = this.exportValue(this.answers.bucketArn, {
      name: `keypool-${config.stage}-answers-bucket-arn`,
    });
    new CfnOutput(this, 'ProxyAnswersBucketName', {
      description: 'the bucket that keeps proxied answers for an Idempotency-Key replay (24 h, SSE-KMS)',
      value: this.answers.bucketName,
    });
  }
}
