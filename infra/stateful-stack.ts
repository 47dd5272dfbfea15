/**
 * The stateful half of keypool: the table and the customer-managed key that encrypts it.
 * It changes rarely, is retained by default, and is deployed apart from the functions so a
 * mistake in the stateless stack can never replace or delete the data.
 */
import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import type { StageConfig } from './config.js';
import { cdkTableShape } from './table-shape.js';
import { TTL_ATTRIBUTE } from '../lib/table.js';

export interface StatefulStackProps extends StackProps {
  config: StageConfig;
}

export class KeypoolStatefulStack extends Stack {
  readonly table: Table;
  readonly tableKey: Key;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { config } = props;
    const removalPolicy = config.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.tableKey = new Key(this, 'table-key', {
      description: 'keypool: encrypts the key table (the imported API keys) at rest',
      enableKeyRotation: true,
      removalPolicy,
      pendingWindow: Duration.days(config.removal === 'retain' ? 30 : 7),
    });

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
  }
}
