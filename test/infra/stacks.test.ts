/**
 * The synthesized CloudFormation of both stacks, asserted offline: the table matches the one
 * definition in lib/table.ts, every function is configured and granted exactly as intended,
 * every route has the authorization the contract gives it, and the schedule and alarms are
 * wired. One prod app is synthesized once (with cdk-nag) and shared by the assertions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/bundling.js';
import { ENTRY_NAMES, ENTRY_POINTS, type EntryName } from '../../infra/entry-points.js';
import { buildKeypoolApp, type KeypoolApp } from '../../infra/keypool-app.js';
import { tableStatements } from '../../infra/table-grants.js';
import { DEFAULT_POOL } from '../../lib/domain/types.js';
import { CLIENT_ROUTE_KEYS, ROUTE_KEYS, ROUTES, type RouteKey } from '../../lib/http/routes.js';
import { createTableInput, TABLE } from '../../lib/table.js';
import { iamMatches, joinTail, type Json, NO_BUNDLING, resource, resources } from '../support/templates.js';

const PROD_CONTEXT = {
  ...NO_BUNDLING,
  stage: 'prod',
  alarmEmail: 'ops@example.com',
  // Two pools, one with punctuation: two client policies, neither allowing the other's routes.
  pools: 'stability:3,sdxl-turbo:2',
  migrationBucket: 'legacy-keys-export',
  legacyTable: 'legacy-keys',
};

let sharedDevApp: KeypoolApp | undefined;
/**
 * The dev app with no overrides, built on first use and shared by the tests that only read
 * its templates (the nag probe adds a role, so it builds its own).
 */
function devApp(): KeypoolApp {
  sharedDevApp ??= buildKeypoolApp({
    context: { ...NO_BUNDLING, stage: 'dev' },
    builtinCloudFormationValidation: false,
  });
  return sharedDevApp;
}

/** The logical id of the Lambda function of an entry point (construct id `<name>-function`). */
function functionId(template: Template, name: EntryName): string {
  const found = resources(template, 'AWS::Lambda::Function').filter(([id]) => id.startsWith(`${name}functionfn`));
  expect(found, `one function for ${name}`).toHaveLength(1);
  return found[0]?.[0] ?? '';
}

/** One statement granted to a function's role: its actions, its resource as JSON, its condition. */
interface Grant {
  actions: string[];
  resource: string;
  condition: Record<string, Record<string, string | string[]>> | undefined;
}

/** Every statement granted to a function's role. */
function grantsOf(template: Template, name: EntryName): Grant[] {
  const fn = resource(template, functionId(template, name));
  const roleId = ((fn.Properties.Role as Json)['Fn::GetAtt'] as string[])[0];
  const role = resource(template, roleId ?? '');
  expect(role.Properties.ManagedPolicyArns, `${name}: no managed policies on the role`).toBeUndefined();
  return resources(template, 'AWS::IAM::Policy')
    .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Json[] }).Statement)
    .map((statement) => {
      expect(statement.Effect).toBe('Allow');
      const action = statement.Action as string | string[];
      return {
        actions: (Array.isArray(action) ? action : [action]).sort(),
        resource: JSON.stringify(statement.Resource),
        condition: statement.Condition as Grant['condition'],
      };
    });
}

describe('keypool stacks (prod, synthesized offline)', () => {
  let built: KeypoolApp;
  let data: Template;
  let api: Template;
  let synthError: unknown;

  beforeAll(() => {
    // Prepare
    built = buildKeypoolApp({ context: PROD_CONTEXT, builtinCloudFormationValidation: false });
    // Act: one synthesis, cdk-nag included; the templates below come from its assembly.
    try {
      built.app.synth();
    } catch (error) {
      synthError = error;
      // Still assert on the templates: the nag test reports the failure.
      built.app.synth({ force: true, skipValidation: true });
    }
    data = Template.fromStack(built.stateful);
    api = Template.fromStack(built.stateless);
  });

  it('synthesizes with cdk-nag AwsSolutions and no unacknowledged finding', () => {
    expect(synthError).toBeUndefined();
  });

  it('acknowledges every accepted cdk-nag finding with a reason a reviewer can check', () => {
    // Prepare
    const acknowledged: { path: string; id: string; reason: string }[] = [];
    for (const node of built.app.node.findAll()) {
      for (const entry of node.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        // Each entry maps rule id -> reason.
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
          acknowledged.push({ path: node.node.path, id, reason });
      }
    }
    // Assess: the open health route, the migration bucket, and one route ARN with a wildcard
    // per route in the admin policy and per key- or lease-id route in each pool's client policy.
    const parameterRoutes = ROUTE_KEYS.filter((key) => ROUTES[key].path.includes('{'));
    const idRoutes = CLIENT_ROUTE_KEYS.filter((key) => ROUTES[key].path.replace('{pool}', '').includes('{'));
    expect(idRoutes).toHaveLength(2);
    // The proxy's (test/infra/proxy.test.ts): a provider-path wildcard per method in each policy,
    // its REST API's request body and logging role, its two methods' IAM authorization, its
    // stage without a web ACL, its function's objects in the answers bucket, and that bucket.
    const proxyAcks = 2 * (built.config.pools.length + 1) + 2 + 2 + 1 + 1 + 1;
    expect(acknowledged).toHaveLength(
      1 + parameterRoutes.length + built.config.pools.length * idRoutes.length + 1 + proxyAcks,
    );
    const clientAcks = acknowledged.filter((a) => a.path.includes('/client-policy-') && a.id.includes('$default'));
    for (const { pool } of built.config.pools) {
      const own = clientAcks.filter((a) => a.path === `keypool-prod-api/http/client-policy-${pool}`);
      expect(own.map((a) => a.id.replace(/^.*\$default/, '')).sort(), pool).toEqual(
        [`/POST/pools/${pool}/keys/*/usage]`, `/POST/pools/${pool}/leases/*/complete]`].sort(),
      );
    }
    expect(acknowledged.filter((a) => a.id.includes(':s3:::legacy-keys-export/*')).map((a) => a.path)).toEqual([
      'keypool-prod-api/migrate-function/role',
    ]);
    expect(acknowledged.filter((a) => a.id.endsWith('AwsSolutions-APIG4')).map((a) => a.path)).toEqual([
      'keypool-prod-api/http/get-health',
    ]);
    for (const a of acknowledged) expect(a.reason.length, a.id).toBeGreaterThan(120);
  });

  it('fails synthesis on a finding nobody acknowledged', () => {
    // Prepare: the same app plus one role that grants a wildcard.
    const probe = buildKeypoolApp({
      context: { ...NO_BUNDLING, stage: 'dev' },
      builtinCloudFormationValidation: false,
    });
    const role = new Role(probe.stateless, 'nag-probe', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    role.addToPrincipalPolicy(new PolicyStatement({ actions: ['dynamodb:*'], resources: ['*'] }));
    // Act / Assess
    expect(() => probe.app.synth()).toThrow(/AwsSolutions-IAM5\[Action::dynamodb:\*\][\s\S]*nag-probe/);
  });

  describe('stateful stack', () => {
    it('builds the table from createTableInput: the same keys, indexes and projections as the local table', () => {
      // Prepare
      const local = createTableInput('unused');
      // Assess
      data.resourceCountIs('AWS::DynamoDB::Table', 1);
      data.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: local.KeySchema,
        AttributeDefinitions: Match.arrayEquals(local.AttributeDefinitions ?? []),
        BillingMode: 'PAY_PER_REQUEST',
        GlobalSecondaryIndexes: (local.GlobalSecondaryIndexes ?? []).map((index) => ({
          IndexName: index.IndexName,
          KeySchema: index.KeySchema,
          Projection: index.Projection,
        })),
      });
    });

    it('has the pool-keys and account-keys indexes: (pool, keyId) and (apk, keyId), keys only, so a lease never writes them', () => {
      // Prepare
      const [[, table] = ['', undefined]] = resources(data, 'AWS::DynamoDB::Table');
      const indexes = table?.Properties.GlobalSecondaryIndexes as Json[];
      const types = new Map(
        (table?.Properties.AttributeDefinitions as { AttributeName: string; AttributeType: string }[]).map((a) => [
          a.AttributeName,
          a.AttributeType,
        ]),
      );
      // Assess
      expect(indexes.map((i) => i.IndexName)).toEqual([
        TABLE.usageIndex.name,
        TABLE.poolIndex.name,
        TABLE.accountIndex.name,
      ]);
      expect(indexes.find((i) => i.IndexName === 'account-keys')).toEqual({
        IndexName: 'account-keys',
        KeySchema: [
          { AttributeName: 'apk', KeyType: 'HASH' },
          { AttributeName: 'keyId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      });
      expect(indexes.find((i) => i.IndexName === 'pool-keys')).toEqual({
        IndexName: 'pool-keys',
        KeySchema: [
          { AttributeName: 'pool', KeyType: 'HASH' },
          { AttributeName: 'keyId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      });
      expect([types.get('pool'), types.get('keyId')]).toEqual(['S', 'S']);
    });

    it('protects the table: PITR, customer-managed KMS key with rotation, deletion protection, RETAIN; TTL only for idempotency records', () => {
      // Prepare: the table's key (the secrets key beside it is test/infra/sealing.test.ts's).
      const [[, table] = ['', undefined]] = resources(data, 'AWS::DynamoDB::Table');
      const keyId =
        (((table?.Properties.SSESpecification as Json).KMSMasterKeyId as Json)['Fn::GetAtt'] as string[])[0] ?? '';
      const key = resource(data, keyId);
      // Assess
      expect(key.Properties.EnableKeyRotation).toBe(true);
      expect(key.DeletionPolicy).toBe('Retain');
      expect(table?.DeletionPolicy).toBe('Retain');
      expect(table?.UpdateReplacePolicy).toBe('Retain');
      expect(table?.Properties).toMatchObject({
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } },
        DeletionProtectionEnabled: true,
      });
      // Only idempotency records expire (leases are slots on the key item and stay counted).
      expect(table?.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
    });

    it('lets a dev stage destroy its table and key', () => {
      // Prepare
      const dev = devApp();
      // Act
      const template = Template.fromStack(dev.stateful);
      // Assess
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Delete',
        Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
      });
      template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
    });

    it("lets a dev stage destroy its answers bucket with the answers still in it; prod's keeps them", () => {
      // Prepare: CloudFormation refuses to delete a bucket that holds objects, and a kept answer
      // stays up to 48 h, so a bucket set to Delete and nothing emptying it fails `cdk destroy`.
      const dev = Template.fromStack(devApp().stateful);
      const bucketId = resources(dev, 'AWS::S3::Bucket')[0]?.[0] ?? '';
      // Act
      const emptiers = resources(dev, 'Custom::S3AutoDeleteObjects');
      // Assess
      dev.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
      expect(emptiers).toHaveLength(1);
      expect(emptiers[0]?.[1].Properties.BucketName).toEqual({ Ref: bucketId });
      expect(resources(data, 'Custom::S3AutoDeleteObjects')).toHaveLength(0);
    });
  });

  describe('functions', () => {
    it('deploys one function per entry point in functions/', () => {
      // Prepare
      const files = readdirSync(join(PROJECT_ROOT, 'functions'))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `functions/${f}`)
        .sort();
      // Assess
      expect(ENTRY_NAMES.map((name) => ENTRY_POINTS[name].file).sort()).toEqual(files);
      api.resourceCountIs('AWS::Lambda::Function', ENTRY_NAMES.length);
    });

    it.each(ENTRY_NAMES)(
      '%s: Node.js 24 on ARM64, its own log group, the table name from the construct, Powertools settings',
      (name) => {
        // Prepare
        const fn = resource(api, functionId(api, name));
        // Assess
        expect(fn.Properties).toMatchObject({
          Runtime: 'nodejs24.x',
          Architectures: ['arm64'],
          Handler: 'index.handler',
          LoggingConfig: {
            LogFormat: 'JSON',
            LogGroup: { Ref: expect.stringMatching(new RegExp(`^${name}functionlogs`)) as unknown },
          },
        });
        const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
        expect(env).toMatchObject({
          POWERTOOLS_SERVICE_NAME: 'keypool',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          NODE_OPTIONS: '--enable-source-maps',
        });
        expect(env.KEYPOOL_TABLE).toEqual({
          'Fn::ImportValue': expect.stringMatching(/^keypool-prod-data:ExportsOutputRefkeys/) as unknown,
        });
        expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe(ENTRY_POINTS[name].metrics ? 'keypool' : undefined);
      },
    );

    it("logs at the stage's level on AWS: Lambda's application log level is the stage's, not its INFO default", () => {
      // Prepare: with JSON logs Lambda filters application logs at its own level (INFO unless set)
      // and tells the process in AWS_LAMBDA_LOG_LEVEL, which the logger obeys before
      // POWERTOOLS_LOG_LEVEL: a stage's level that Lambda does not share is not the one it logs at.
      const stages = [
        { stage: 'prod', template: api, level: 'INFO' },
        { stage: 'dev', template: Template.fromStack(devApp().stateless), level: 'DEBUG' },
      ];
      for (const { stage, template, level } of stages) {
        for (const name of ENTRY_NAMES) {
          // Act
          const fn = resource(template, functionId(template, name)).Properties;
          const env = (fn.Environment as { Variables: Json }).Variables;
          // Assess
          expect(env.POWERTOOLS_LOG_LEVEL, `${stage} ${name}`).toBe(level);
          expect((fn.LoggingConfig as Json).ApplicationLogLevel, `${stage} ${name}`).toBe(level);
        }
      }
    });

    it("configures maintenance from the stage: provider URL and balance rate; minimum credits and caps are the pools' own", () => {
      // Prepare
      const env = (resource(api, functionId(api, 'maintain')).Properties.Environment as { Variables: Json }).Variables;
      // Assess
      expect(env).toMatchObject({ STABILITY_API_BASE_URL: 'https://api.stability.ai', KEYPOOL_BALANCE_RATE: '5' });
      expect(env.KEYPOOL_MIN_CREDITS).toBeUndefined();
      expect(env.KEYPOOL_DEFAULT_MAX_USES).toBeUndefined();
    });
  });

  describe('least privilege', () => {
    // The reviewed grants, written out here rather than read from infra/entry-points.ts, so
    // that widening a function's access fails this test until the list is reviewed too.
    // Every function that names a pool reads its record (GetItem) except maintenance, which
    // lists the pools; no function scans the table.
    /** Reads, writes and deletes: the operator's key routes, and proxy mode (its records are dropped). */
    const EVERY_ITEM_ACTION = [
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ];
    const EXPECTED: Record<EntryName, { table: string[]; index: Record<string, string[]> }> = {
      meta: { table: [], index: {} },
      pools: {
        table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        index: { 'pool-keys': ['dynamodb:Query'] },
      },
      // Retirements page a pool's keys (pool-keys, BatchGetItem) and delete its record.
      keys: {
        table: EVERY_ITEM_ACTION,
        index: { 'pool-keys': ['dynamodb:Query'] },
      },
      list: {
        table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
        index: { 'account-keys': ['dynamodb:Query'], 'pool-keys': ['dynamodb:Query'] },
      },
      // A refusal counts its pool's keys (pool-keys, BatchGetItem), at most once a minute per pool.
      lease: {
        table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        index: { 'pool-keys': ['dynamodb:Query'], 'usage-count': ['dynamodb:Query'] },
      },
      counting: { table: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], index: { 'account-keys': ['dynamodb:Query'] } },
      maintain: {
        table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        index: { 'pool-keys': ['dynamodb:Query'] },
      },
      migrate: { table: ['dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], index: {} },
      // Proxy mode takes a use as the lease does, puts a provider's 402 on the key's account (as
      // a completion does), and keeps its own records (put, finished, dropped).
      proxy: {
        table: EVERY_ITEM_ACTION,
        index: {
          'account-keys': ['dynamodb:Query'],
          'pool-keys': ['dynamodb:Query'],
          'usage-count': ['dynamodb:Query'],
        },
      },
    };
    const TABLE_ARN = /^\{"Fn::ImportValue":"keypool-prod-data:ExportsOutputFnGetAttkeys[0-9A-F]+Arn[0-9A-F]+"\}$/;
    const KEY_ARN = /^\{"Fn::ImportValue":"keypool-prod-data:ExportsOutputFnGetAtttablekey[0-9A-F]+Arn[0-9A-F]+"\}$/;

    it.each(ENTRY_NAMES)(
      '%s: exactly its table actions, each index it queries on that index alone, kms:Decrypt only with table access',
      (name) => {
        // Prepare
        const expected = EXPECTED[name];
        const grants = grantsOf(api, name);
        const on = (pattern: RegExp) => grants.filter((g) => pattern.test(g.resource));
        // Assess
        expect(grants.find((g) => g.actions.join() === 'logs:CreateLogStream,logs:PutLogEvents')?.resource).toMatch(
          new RegExp(`^\\{"Fn::GetAtt":\\["${name}functionlogs[0-9A-F]+","Arn"\\]\\}$`),
        );
        expect([...new Set(on(TABLE_ARN).flatMap((g) => g.actions))].sort()).toEqual(expected.table);
        const index = grants.filter((g) => g.resource.includes('/index/'));
        // One statement per index, on `<table ARN>/index/<name>` exactly (never `index/*`).
        const byIndex = Object.fromEntries(
          index.map((g) => [/"\/index\/([^"]+)"\]/.exec(g.resource)?.[1] ?? g.resource, g.actions]),
        );
        expect(byIndex).toEqual(expected.index);
        for (const g of index)
          expect(g.resource).toMatch(
            /^\{"Fn::Join":\["",\[\{"Fn::ImportValue":"keypool-prod-data:ExportsOutputFnGetAttkeys[0-9A-F]+Arn[0-9A-F]+"\},"\/index\/[a-z-]+"\]\]\}$/,
          );
        const touchesTable = expected.table.length > 0 || Object.keys(expected.index).length > 0;
        expect(on(KEY_ARN).flatMap((g) => g.actions)).toEqual(touchesTable ? ['kms:Decrypt'] : []);
      },
    );

    it('grants no wildcard action and no "*" resource to any function', () => {
      for (const name of ENTRY_NAMES) {
        for (const grant of grantsOf(api, name)) {
          expect(
            grant.actions.filter((a) => a.includes('*')),
            name,
          ).toEqual([]);
          expect(grant.resource, name).not.toBe('"*"');
        }
      }
    });

    it('lets the migration read only the configured legacy bucket and table', () => {
      // Prepare
      const extra = grantsOf(api, 'migrate').filter(
        (g) => g.actions.includes('s3:GetObject') || g.resource.includes('legacy'),
      );
      // Assess
      expect(extra).toHaveLength(2);
      const s3 = extra.find((g) => g.actions.join() === 's3:GetObject');
      expect(s3?.resource).toContain(':s3:::legacy-keys-export/*');
      const scan = extra.find((g) => g.actions.join() === 'dynamodb:Scan');
      expect(scan?.resource).toContain(':table/legacy-keys"');
    });

    it("lets the migration decrypt an export under the operator's own KMS key only when the key is configured, and only through S3", () => {
      // Prepare: a source bucket whose objects are SSE-KMS under a customer managed key; GetObject
      // then needs kms:Decrypt on that key, which s3:GetObject alone does not give.
      const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
      const withKey = buildKeypoolApp({
        context: { ...PROD_CONTEXT, migrationBucketKeyArn: keyArn },
        builtinCloudFormationValidation: false,
      });
      const template = Template.fromStack(withKey.stateless);
      const onSourceKey = (t: Template, name: EntryName) =>
        grantsOf(t, name).filter((g) => g.resource.includes(keyArn));
      // Act
      const migrate = onSourceKey(template, 'migrate');
      // Assess: Decrypt alone, on that key alone, only when S3 asks for it in the stack's region.
      expect(migrate).toEqual([
        {
          actions: ['kms:Decrypt'],
          resource: JSON.stringify(keyArn),
          condition: {
            StringEquals: {
              'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] },
            },
          } as unknown as Grant['condition'],
        },
      ]);
      for (const name of ENTRY_NAMES.filter((n) => n !== 'migrate'))
        expect(onSourceKey(template, name), name).toEqual([]);
      // Without the setting, the migrate role holds no KMS grant beyond the table's and the secrets key's.
      const kmsResources = (t: Template) =>
        grantsOf(t, 'migrate')
          .filter((g) => g.actions.some((a) => a.startsWith('kms:')))
          .map((g) => g.resource);
      expect(kmsResources(template).length - kmsResources(api).length).toBe(1);
      expect(kmsResources(api).join()).not.toContain(':kms:eu-west-1:111122223333');
      // No cdk-nag finding: one action on one key, no wildcard.
      expect(() => withKey.app.synth()).not.toThrow();
    });

    it('lets the migration read a legacy table under its own KMS key only when the key is configured, and only through DynamoDB', () => {
      // Prepare: a legacy table encrypted under a customer managed key; Scan then needs
      // kms:Decrypt on that key, which dynamodb:Scan alone does not give.
      const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/5678abcd-12ab-34cd-56ef-1234567890ab';
      const withKey = buildKeypoolApp({
        context: { ...PROD_CONTEXT, legacyTableKeyArn: keyArn },
        builtinCloudFormationValidation: false,
      });
      const template = Template.fromStack(withKey.stateless);
      const onTableKey = (t: Template, name: EntryName) => grantsOf(t, name).filter((g) => g.resource.includes(keyArn));
      // Act
      const migrate = onTableKey(template, 'migrate');
      // Assess: Decrypt alone, on that key alone, only when DynamoDB asks for it in the stack's region.
      expect(migrate).toEqual([
        {
          actions: ['kms:Decrypt'],
          resource: JSON.stringify(keyArn),
          condition: {
            StringEquals: {
              'kms:ViaService': {
                'Fn::Join': ['', ['dynamodb.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]],
              },
            },
          } as unknown as Grant['condition'],
        },
      ]);
      for (const name of ENTRY_NAMES.filter((n) => n !== 'migrate'))
        expect(onTableKey(template, name), name).toEqual([]);
      expect(() => withKey.app.synth()).not.toThrow();
    });

    it('grants the migration nothing outside the table when no legacy source is configured', () => {
      // Prepare
      const dev = devApp();
      // Act
      const grants = grantsOf(Template.fromStack(dev.stateless), 'migrate');
      // Assess
      expect(grants.flatMap((g) => g.actions).filter((a) => a.startsWith('s3:') || a === 'dynamodb:Scan')).toEqual([]);
    });
  });

  describe('least privilege on items (IAM conditions on the table)', () => {
    const TABLE_ARN = /^\{"Fn::ImportValue":"keypool-prod-data:ExportsOutputFnGetAttkeys[0-9A-F]+Arn[0-9A-F]+"\}$/;
    /** A role's statements on the table's items, each read as `<action> <item prefix>` lines (with ` narrow`). */
    function itemGrants(name: EntryName): string[] {
      return grantsOf(api, name)
        .filter((g) => TABLE_ARN.test(g.resource))
        .flatMap((g) => {
          const prefixes = g.condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
          const narrow = g.condition?.StringEqualsIfExists ? ' narrow' : '';
          return g.actions.flatMap((action) =>
            [prefixes ?? ['(any item)']]
              .flat()
              .map((prefix) => `${action.replace('dynamodb:', '')} ${prefix}${narrow}`),
          );
        })
        .sort();
    }

    // The reviewed item grants, written out here (like the actions above) so that widening a
    // role fails this test until the list is reviewed too. `narrow`: a read must project (never
    // the whole item, so never the secret), a write never returns the item.
    const EXPECTED_ITEMS: Record<EntryName, string[]> = {
      meta: [],
      pools: ['BatchGetItem pool#*', 'GetItem pool#*', 'UpdateItem pool#*'],
      keys: [
        'BatchGetItem acct#* narrow',
        'BatchGetItem k_* narrow',
        'DeleteItem pool#*',
        'GetItem acct#* narrow',
        'GetItem k_* narrow',
        'GetItem pool#*',
        'PutItem k_*',
        'UpdateItem acct#* narrow',
        'UpdateItem k_* narrow',
        'UpdateItem pool#*',
      ],
      list: ['BatchGetItem acct#* narrow', 'BatchGetItem k_* narrow', 'GetItem acct#* narrow', 'GetItem pool#*'],
      lease: [
        'BatchGetItem k_* narrow',
        'GetItem idem#*',
        'GetItem k_*',
        'GetItem pool#*',
        'PutItem idem#*',
        'UpdateItem idem#*',
        'UpdateItem k_*',
      ],
      counting: [
        'GetItem k_* narrow',
        'GetItem pool#*',
        'UpdateItem acct#* narrow',
        'UpdateItem budget#* narrow',
        'UpdateItem k_* narrow',
      ],
      maintain: [
        'BatchGetItem acct#* narrow',
        'BatchGetItem k_*',
        'BatchGetItem pool#*',
        'GetItem acct#* narrow',
        'GetItem k_*',
        'GetItem pool#*',
        'PutItem run#*',
        'UpdateItem acct#* narrow',
        'UpdateItem k_*',
        'UpdateItem pool#*',
      ],
      migrate: ['BatchGetItem k_* narrow', 'PutItem k_*', 'UpdateItem k_*', 'UpdateItem pool#*'],
      proxy: [
        'BatchGetItem k_* narrow',
        'DeleteItem pxy#*',
        'GetItem job#*',
        'GetItem k_*',
        'GetItem pool#*',
        'PutItem job#*',
        'PutItem pxy#*',
        'UpdateItem acct#* narrow',
        'UpdateItem k_*',
        'UpdateItem pxy#*',
      ],
    };

    it.each(ENTRY_NAMES)(
      '%s: every statement on the table names the items it reaches (dynamodb:LeadingKeys)',
      (name) => {
        // Assess: the lease puts only idempotency records; counting and list never reach a pool's record but to read it.
        expect(itemGrants(name)).toEqual(EXPECTED_ITEMS[name]);
      },
    );

    it.each(ENTRY_NAMES)('%s: the template holds exactly its grants of lib/table-access.ts', (name) => {
      // Prepare: the statements infra/table-grants.ts builds, the resource aside (a token in the template).
      const expected = tableStatements(ENTRY_POINTS[name].table, 'table').map(({ Action, Condition }) => ({
        actions: [...Action].sort(),
        condition: Condition,
      }));
      // Act
      const granted = grantsOf(api, name)
        .filter((g) => TABLE_ARN.test(g.resource) || g.resource.includes('/index/'))
        .map((g) => ({ actions: g.actions, condition: g.condition }));
      // Assess
      expect(granted).toEqual(expected);
    });

    it('only the lease, the proxy and maintenance may read a key item whole; every other read of a key names attributes that are not its secret', () => {
      for (const name of ENTRY_NAMES) {
        for (const grant of grantsOf(api, name).filter((g) => TABLE_ARN.test(g.resource))) {
          const prefixes = [grant.condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] ?? []].flat();
          const reads = grant.actions.some((a) => a === 'dynamodb:GetItem' || a === 'dynamodb:BatchGetItem');
          if (!reads || !prefixes.includes('k_*')) continue;
          if (name === 'lease' || name === 'proxy' || name === 'maintain') continue;
          expect(grant.condition?.StringEqualsIfExists?.['dynamodb:Select'], name).toEqual(['SPECIFIC_ATTRIBUTES']);
          const attributes = [grant.condition?.['ForAllValues:StringEquals']?.['dynamodb:Attributes'] ?? []].flat();
          expect(attributes.length, name).toBeGreaterThan(0);
          expect(
            attributes.filter((a) => a === 'sealedKey' || a === 'apiKey'),
            name,
          ).toEqual([]);
        }
      }
    });

    it('every write names its attributes; none may name a plain-text secret; only import and migration write a ciphertext', () => {
      for (const name of ENTRY_NAMES) {
        for (const grant of grantsOf(api, name).filter((g) => TABLE_ARN.test(g.resource))) {
          if (!grant.actions.some((a) => a === 'dynamodb:PutItem' || a === 'dynamodb:UpdateItem')) continue;
          const attributes = [grant.condition?.['ForAllValues:StringEquals']?.['dynamodb:Attributes'] ?? []].flat();
          expect(attributes.length, `${name} ${grant.actions.join()}`).toBeGreaterThan(0);
          expect(attributes, name).not.toContain('apiKey');
          // The lease, the proxy and maintenance test a ciphertext in their conditions (IAM cannot tell a
          // test from a write): see docs/security.md.
          if (attributes.includes('sealedKey'))
            expect(['keys', 'migrate', 'lease', 'proxy', 'maintain']).toContain(name);
        }
      }
    });

    it('counting never gets a key back from a write, and writes no secret, balance or home', () => {
      // Prepare: its key writes (its other write is the report budget's counter).
      const updates = grantsOf(api, 'counting').filter(
        (g) =>
          g.actions.includes('dynamodb:UpdateItem') &&
          [g.condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] ?? []].flat().includes('k_*'),
      );
      const attributes = [updates[0]?.condition?.['ForAllValues:StringEquals']?.['dynamodb:Attributes'] ?? []].flat();
      // Assess
      expect(updates).toHaveLength(1);
      expect(updates[0]?.condition?.StringEqualsIfExists?.['dynamodb:ReturnValues']).toEqual([
        'NONE',
        'UPDATED_OLD',
        'UPDATED_NEW',
      ]);
      expect(attributes).toEqual(expect.arrayContaining(['usageCount', 'L', 'status']));
      expect(attributes.filter((a) => ['sealedKey', 'apiKey', 'credits', 'ush', 'label'].includes(a))).toEqual([]);
    });
  });

  describe('HTTP API', () => {
    const routes = () => resources(api, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);

    it('serves exactly the contract routes plus $default', () => {
      expect(
        routes()
          .map((r) => r.RouteKey)
          .sort(),
      ).toEqual([...ROUTE_KEYS, '$default'].sort());
    });

    it.each([...ROUTE_KEYS, '$default'])('%s: IAM authorization unless the contract makes it public', (routeKey) => {
      const route = routes().find((r) => r.RouteKey === routeKey);
      const open = routeKey !== '$default' && ROUTES[routeKey as RouteKey].access === 'public';
      expect(route?.AuthorizationType).toBe(open ? 'NONE' : 'AWS_IAM');
      if (open) expect(routeKey).toBe('GET /health');
    });

    it('sends each route to the function its spec names, and $default to meta', () => {
      // Prepare: integration -> function logical id, from the integration URI.
      const integrationTarget = new Map(
        resources(api, 'AWS::ApiGatewayV2::Integration').map(([id, integration]) => [
          id,
          ((integration.Properties.IntegrationUri as Json)['Fn::GetAtt'] as string[])[0],
        ]),
      );
      // Assess: a route's Target is "integrations/<Ref integration>".
      for (const route of routes()) {
        const integrationId = /"Ref":"([^"]+)"/.exec(JSON.stringify(route.Target))?.[1] ?? '';
        const expected =
          route.RouteKey === '$default' ? 'meta' : ROUTES[route.RouteKey as keyof typeof ROUTES].function;
        expect(integrationTarget.get(integrationId), String(route.RouteKey)).toBe(functionId(api, expected));
      }
    });

    it('throttles the stage and logs access without bodies, query strings or paths', () => {
      // Prepare
      const [[, stage] = ['', undefined]] = resources(api, 'AWS::ApiGatewayV2::Stage');
      const format = ((stage?.Properties.AccessLogSettings as Json | undefined)?.Format ?? '') as string;
      // Assess: what docs/scaling.md states. An unsharded pool sustains ~474 leases/s on the
      // table, each lease followed by its completion: 1,000 requests/s (2 s of burst) lets the
      // table, not the gateway, be a pool's limit (50/s held a pool at 25 uses/s).
      expect(stage?.Properties).toMatchObject({
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
      });
      expect(Object.keys(JSON.parse(format) as Json)).toContain('requestId');
      expect(format).not.toMatch(/body|requestBody|responseBody|\$context\.path|querystring/i);
    });

    /** The policy with this physical name, and the route ARNs it allows (their literal tails). */
    const allowed = (template: Template, name: string): string[] => {
      const found = resources(template, 'AWS::IAM::ManagedPolicy').filter(
        ([, p]) => p.Properties.ManagedPolicyName === name,
      );
      expect(found, name).toHaveLength(1);
      const apiId = resources(template, 'AWS::ApiGatewayV2::Api')[0]?.[0];
      // The HTTP API's statement; the other one reaches the proxy's REST API (test/infra/proxy.test.ts).
      const statements = (found[0]?.[1].Properties.PolicyDocument as { Statement: Json[] }).Statement;
      const [statement, ...others] = statements.filter((s) => JSON.stringify(s).includes(`{"Ref":"${apiId}"}`));
      expect(others, name).toEqual([]);
      expect(statements, name).toHaveLength(2);
      expect(statement).toMatchObject({ Effect: 'Allow', Action: 'execute-api:Invoke' });
      for (const arn of statement?.Resource as Json[])
        expect(JSON.stringify(arn), name).toContain(`{"Ref":"${apiId}"}`);
      return (statement?.Resource as unknown[]).map(joinTail).sort();
    };
    /** A route ARN tail with `{pool}` the given pool and every other parameter `*`. */
    const tail = (key: RouteKey, pool?: string) =>
      `/$default/${ROUTES[key].method}${ROUTES[key].path.replace(/\{([^}]+)\}/g, (_, p: string) => (p === 'pool' && pool ? pool : '*'))}`;
    /** What an application of `pool` sends: its three client routes with concrete ids. */
    const clientRequests = (pool: string) => [
      `/$default/POST/pools/${pool}/leases`,
      `/$default/POST/pools/${pool}/leases/kabc.0.1.n/complete`,
      `/$default/POST/pools/${pool}/keys/kabc/usage`,
    ];

    it("publishes one keypool-client-<pool> per configured pool, allowing exactly that pool's three client routes", () => {
      for (const { pool } of built.config.pools) {
        // Assess: lease, complete and usage under /pools/<pool>/, ids left open.
        expect(CLIENT_ROUTE_KEYS.map((key) => ROUTES[key].access)).toEqual(['client', 'client', 'client']);
        expect(allowed(api, `keypool-client-${pool}`)).toEqual(CLIENT_ROUTE_KEYS.map((key) => tail(key, pool)).sort());
        for (const request of clientRequests(pool))
          expect(
            allowed(api, `keypool-client-${pool}`).some((p) => iamMatches(p, request)),
            request,
          ).toBe(true);
      }
    });

    it("lets no pool's client policy reach another pool, a pool whose name extends it, or an operator route", () => {
      // Prepare
      const pools = built.config.pools.map((p) => p.pool);
      expect(pools).toEqual(['stability', 'sdxl-turbo']);
      const adminRequests = ROUTE_KEYS.filter((key) => ROUTES[key].access === 'admin').map((key) =>
        tail(key, 'stability').replace(/\*/g, 'kabc'),
      );
      for (const pool of pools) {
        const patterns = allowed(api, `keypool-client-${pool}`);
        const foreign = [
          ...pools.filter((other) => other !== pool).flatMap(clientRequests),
          ...clientRequests(`${pool}2`),
          ...clientRequests(`${pool}.old`),
          ...adminRequests,
        ];
        // Assess
        for (const request of foreign)
          expect(
            patterns.filter((p) => iamMatches(p, request)),
            `${pool} -> ${request}`,
          ).toEqual([]);
      }
    });

    it('publishes keypool-prod-admin for every route of every pool, and no other caller policy', () => {
      // Assess
      expect(allowed(api, 'keypool-admin')).toEqual(ROUTE_KEYS.map((key) => tail(key)).sort());
      expect(resources(api, 'AWS::IAM::ManagedPolicy')).toHaveLength(built.config.pools.length + 1);
    });

    it('outputs each client policy ARN by pool, and the admin policy ARN', () => {
      // Prepare
      const outputs = (api.toJSON() as { Outputs: Record<string, { Value: unknown; Description: string }> }).Outputs;
      const policyArn = (name: string) => {
        const [[id] = ['']] = resources(api, 'AWS::IAM::ManagedPolicy').filter(
          ([, p]) => p.Properties.ManagedPolicyName === name,
        );
        return { Ref: id };
      };
      // Assess
      expect(
        Object.keys(outputs)
          .filter((key) => key.includes('PolicyArn'))
          .sort(),
      ).toEqual(['AdminPolicyArn', 'ClientPolicyArnSdxlTurbo', 'ClientPolicyArnStability']);
      expect(outputs.ClientPolicyArnStability?.Value).toEqual(policyArn('keypool-client-stability'));
      expect(outputs.ClientPolicyArnStability?.Description).toContain('keypool-client-stability');
      expect(outputs.ClientPolicyArnSdxlTurbo?.Value).toEqual(policyArn('keypool-client-sdxl-turbo'));
      expect(outputs.AdminPolicyArn?.Value).toEqual(policyArn('keypool-admin'));
    });
  });

  describe('the default pool list', () => {
    let dev: Template;
    let prod: Template;

    beforeAll(() => {
      // Prepare: no pools in context: the stage's default list, the domain's default pool.
      dev = Template.fromStack(devApp().stateless);
      prod = Template.fromStack(
        buildKeypoolApp({ context: { ...NO_BUNDLING, stage: 'prod' }, builtinCloudFormationValidation: false })
          .stateless,
      );
    });

    it.each([
      ['dev', 1],
      ['prod', 3],
    ] as const)(
      '%s: one client policy and the pool alarms, all for the default pool "stability"',
      (stage, minUsable) => {
        // Prepare
        const template = stage === 'dev' ? dev : prod;
        const names = resources(template, 'AWS::IAM::ManagedPolicy')
          .map(([, p]) => p.Properties.ManagedPolicyName)
          .sort();
        const poolAlarms = resources(template, 'AWS::CloudWatch::Alarm')
          .map(([, a]) => a.Properties)
          // a pool's (the stack-wide ProxyKeypool5xx has no dimension)
          .filter((a) => a.Namespace === 'keypool' && a.Dimensions !== undefined);
        // Assess
        expect(DEFAULT_POOL).toBe('stability');
        expect(names).toEqual(['keypool-admin', 'keypool-client-stability']);
        expect(poolAlarms.map((a) => [a.MetricName, (a.Dimensions as Json[])[0]]).sort()).toEqual([
          ['ClientReportsOverBudget', { Name: 'pool', Value: 'stability' }],
          ['NoUsableKey', { Name: 'pool', Value: 'stability' }],
          ['ProviderAuthBreakerOpen', { Name: 'pool', Value: 'stability' }],
          ['UndecryptableKeys', { Name: 'pool', Value: 'stability' }],
          ['UnsettledSuspectKeys', { Name: 'pool', Value: 'stability' }],
          ...(stage === 'prod' ? [['UsableCredits', { Name: 'pool', Value: 'stability' }]] : []),
          ['UsableKeys', { Name: 'pool', Value: 'stability' }],
        ]);
        expect(poolAlarms.find((a) => a.MetricName === 'UsableKeys')?.Threshold).toBe(minUsable);
        // prod watches credits too (keys of an empty account are not usable credits); dev names no minimum.
        if (stage === 'prod')
          expect(poolAlarms.find((a) => a.MetricName === 'UsableCredits')).toMatchObject({
            Threshold: 30,
            ComparisonOperator: 'LessThanThreshold',
            // a stopped schedule is the UsableKeys alarm's to page (test/infra/alarms.test.ts)
            TreatMissingData: 'ignore',
          });
      },
    );
  });

  describe('schedule and alarms', () => {
    it('runs maintenance every 15 minutes from an EventBridge rule', () => {
      api.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(15 minutes)',
        State: 'ENABLED',
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionId(api, 'maintain'), 'Arn'] } })],
      });
      api.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [functionId(api, 'maintain'), 'Arn'] },
      });
    });

    it('a maintenance run ends before the next one is due, whatever the schedule: its timeout is no longer than the interval', () => {
      // Prepare: a stage that runs maintenance every 5 minutes (a run over many keys uses
      // all the time it is given: it checks keys until its deadline, the function's timeout).
      const every5 = buildKeypoolApp({
        context: { ...PROD_CONTEXT, maintenanceEveryMinutes: '5' },
        builtinCloudFormationValidation: false,
      });
      const template = Template.fromStack(every5.stateless);
      // Act
      const timeouts = [api, template].map((t) => resource(t, functionId(t, 'maintain')).Properties.Timeout);
      // Assess: with reserved concurrency 1, a run still going when the next is due gets that
      // one throttled (the throttles alarm pages) and dropped, and the period it should have
      // reported in is left without a gauge.
      expect(timeouts).toEqual([900, 300]);
    });

    it('runs one maintenance at a time and never retries it: reserved concurrency 1, no EventBridge or Lambda retries', () => {
      // Prepare
      const maintain = functionId(api, 'maintain');
      const reserved = resources(api, 'AWS::Lambda::Function').filter(
        ([, fn]) => fn.Properties.ReservedConcurrentExecutions !== undefined,
      );
      // Assess: two runs at once would double the request rate the provider sees.
      expect(reserved.map(([id, fn]) => [id, fn.Properties.ReservedConcurrentExecutions])).toEqual([[maintain, 1]]);
      // A failed or missed run is made good by the next scheduled one, never by a retry.
      api.hasResourceProperties('AWS::Events::Rule', {
        Targets: [
          Match.objectLike({ Arn: { 'Fn::GetAtt': [maintain, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }),
        ],
      });
      // Lambda's own async retries (function errors) are off too, and an event throttled
      // because a run is still going is dropped within a minute instead of queued for hours.
      api.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
      api.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: maintain },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 60,
      });
    });

    it('invokes the migration only by hand: no rule, route or event source targets it', () => {
      const migrate = functionId(api, 'migrate');
      const permissions = resources(api, 'AWS::Lambda::Permission').filter(([, p]) =>
        JSON.stringify(p.Properties.FunctionName).includes(migrate),
      );
      expect(permissions).toEqual([]);
      api.resourceCountIs('AWS::Lambda::EventSourceMapping', 0);
    });

    it('alarms on usable keys, suspect keys left unsettled, undecryptable keys, 409s, reports over budget and the provider-auth breaker per configured pool, API 5xx, function errors and throttles, DynamoDB throttles', () => {
      // Prepare
      const alarms = resources(api, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
      const [[topicId] = ['']] = resources(api, 'AWS::SNS::Topic');
      const usable = alarms.filter((a) => a.MetricName === 'UsableKeys');
      // Assess: every alarm notifies the one topic.
      for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(
        usable.map((a) => [
          (a.Dimensions as Json[])[0],
          a.Threshold,
          a.ComparisonOperator,
          a.Namespace,
          a.TreatMissingData,
        ]),
      ).toEqual([
        [{ Name: 'pool', Value: 'stability' }, 3, 'LessThanThreshold', 'keypool', 'breaching'],
        [{ Name: 'pool', Value: 'sdxl-turbo' }, 2, 'LessThanThreshold', 'keypool', 'breaching'],
      ]);
      expect(
        alarms
          .filter((a) => a.MetricName === 'NoUsableKey')
          .map((a) => [(a.Dimensions as Json[])[0], a.Threshold, a.Statistic]),
      ).toEqual([
        [{ Name: 'pool', Value: 'stability' }, 1, 'Sum'],
        [{ Name: 'pool', Value: 'sdxl-turbo' }, 1, 'Sum'],
      ]);
      // Two maintenance runs in a row (one 15-minute period each) that each left a report made
      // before it unsettled; the SuspectKeys gauge, which counts reports made during a run too,
      // pages nobody.
      expect(alarms.filter((a) => a.MetricName === 'SuspectKeys')).toEqual([]);
      expect(
        alarms
          .filter((a) => a.MetricName === 'UnsettledSuspectKeys')
          .map((a) => [
            (a.Dimensions as Json[])[0],
            a.Statistic,
            a.Period,
            a.ComparisonOperator,
            a.Threshold,
            a.EvaluationPeriods,
            a.DatapointsToAlarm,
            a.TreatMissingData,
          ]),
      ).toEqual([
        [{ Name: 'pool', Value: 'stability' }, 'Minimum', 900, 'GreaterThanThreshold', 0, 2, 2, 'ignore'],
        [{ Name: 'pool', Value: 'sdxl-turbo' }, 'Minimum', 900, 'GreaterThanThreshold', 0, 2, 2, 'ignore'],
      ]);
      expect(alarms.filter((a) => a.Namespace === 'AWS/ApiGateway' && a.MetricName === '5xx')).toHaveLength(1);
      for (const metric of ['Errors', 'Throttles']) {
        const fnAlarms = alarms.filter((a) => a.Namespace === 'AWS/Lambda' && a.MetricName === metric);
        const targets = fnAlarms.map((a) => JSON.stringify(a.Dimensions));
        expect(targets.sort()).toEqual(
          ENTRY_NAMES.map((n) => JSON.stringify([{ Name: 'FunctionName', Value: { Ref: functionId(api, n) } }])).sort(),
        );
      }
      const throttled = alarms.filter((a) => JSON.stringify(a.Metrics ?? []).includes('ThrottledRequests'));
      expect(throttled).toHaveLength(1);
      expect(JSON.stringify(throttled[0]?.Metrics)).toContain('AWS/DynamoDB');
      // Each operation's series is filled with 0 where it has no point: DynamoDB publishes
      // ThrottledRequests only for an operation that throttled, and metric math keeps only the
      // timestamps every series has, so a plain sum would stay empty through one op's throttles.
      const metrics = (throttled[0]?.Metrics ?? []) as { Id: string; Expression?: string; MetricStat?: unknown }[];
      const expression = metrics.find((m) => m.Expression !== undefined)?.Expression ?? '';
      const series = metrics.filter((m) => m.MetricStat !== undefined).map((m) => m.Id);
      expect(series.length).toBeGreaterThan(1);
      for (const id of series) expect(expression).toContain(`FILL(${id}, 0)`);
      // UndecryptableKeys: asserted in test/infra/sealing.test.ts.
      expect(alarms.filter((a) => a.MetricName === 'UndecryptableKeys')).toHaveLength(usable.length);
      // Per pool: a caller past its report budget (reports that took no effect), and a
      // maintenance run whose answers were mostly the provider refusing keys.
      const perPool = (metric: string): unknown[] =>
        alarms
          .filter((a) => a.MetricName === metric)
          .map((a) => [(a.Dimensions as Json[])[0], a.Statistic, a.Threshold, a.TreatMissingData]);
      const pools = [
        { Name: 'pool', Value: 'stability' },
        { Name: 'pool', Value: 'sdxl-turbo' },
      ];
      expect(perPool('ClientReportsOverBudget')).toEqual(pools.map((d) => [d, 'Sum', 1, 'notBreaching']));
      expect(perPool('ProviderAuthBreakerOpen')).toEqual(pools.map((d) => [d, 'Maximum', 1, 'ignore']));
      // API 5xx: the HTTP API's and the proxy's REST API's (test/infra/proxy.test.ts).
      expect(alarms).toHaveLength(6 * usable.length + 2 + 2 * ENTRY_NAMES.length + 1);
    });

    it('the usable-keys alarm stays quiet while maintenance runs on schedule, however long each run takes', () => {
      // Prepare: runs every 15 minutes, started a few seconds late at most, and publishing
      // their gauges when they end: some within seconds, some near their deadline (a run that
      // asks the provider about thousands of keys). Every run reports a healthy pool.
      const every = built.config.maintenanceEveryMinutes * 60;
      const alarm = resources(api, 'AWS::CloudWatch::Alarm')
        .map(([, a]) => a.Properties)
        .find((a) => a.MetricName === 'UsableKeys');
      const period = Number(alarm?.Period);
      const evaluationPeriods = Number(alarm?.EvaluationPeriods);
      const datapointsToAlarm = Number(alarm?.DatapointsToAlarm ?? evaluationPeriods);
      expect(alarm?.TreatMissingData).toBe('breaching');
      const phase = 7 * 60;
      const durations = [every - 20, 20, 300, every - 20, every - 20, 20, 20, 600];
      const ends = Array.from({ length: 96 }, (_, run) => {
        const start = phase + run * every + (run % 3);
        return start + (durations[run % durations.length] ?? 0);
      });
      // Act: CloudWatch's verdict at each period boundary once the first run has reported: the
      // last evaluationPeriods clock-aligned periods, one without a point counted as breaching.
      const emptyPeriods = (boundary: number): number =>
        Array.from({ length: evaluationPeriods }, (_, i) => boundary - (i + 1) * period).filter(
          (from) => !ends.some((end) => end >= from && end < from + period),
        ).length;
      const first = Math.ceil(((ends[0] ?? 0) + evaluationPeriods * period) / period) * period;
      const last = ends[ends.length - 1] ?? 0;
      const paged: number[] = [];
      for (let boundary = first; boundary <= last; boundary += period)
        if (emptyPeriods(boundary) >= datapointsToAlarm) paged.push(boundary);
      // Assess
      expect(period).toBeGreaterThanOrEqual(every);
      expect(paged).toEqual([]);
    });

    it('the table-throttles alarm watches every DynamoDB operation the code sends', () => {
      // Prepare: the operations lib/ sends, by the commands it builds (DynamoDB publishes
      // ThrottledRequests per operation, so one left out is throttled unseen).
      const operations: Record<string, string> = {
        GetCommand: 'GetItem',
        BatchGetCommand: 'BatchGetItem',
        PutCommand: 'PutItem',
        UpdateCommand: 'UpdateItem',
        DeleteCommand: 'DeleteItem',
        BatchWriteCommand: 'BatchWriteItem',
        TransactWriteCommand: 'TransactWriteItems',
        TransactGetCommand: 'TransactGetItems',
        QueryCommand: 'Query',
        ScanCommand: 'Scan',
      };
      const sources = readdirSync(join(PROJECT_ROOT, 'lib'), { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.ts'))
        .map((file) => readFileSync(join(PROJECT_ROOT, 'lib', file), 'utf8'));
      const sent = new Set(sources.flatMap((text) => [...text.matchAll(/new (\w+Command)\(/g)].map((m) => m[1] ?? '')));
      const dynamoCommands = [...sent].filter((command) => command in operations);
      // Act
      const alarm = resources(api, 'AWS::CloudWatch::Alarm')
        .map(([, a]) => a.Properties)
        .find((a) => JSON.stringify(a.Metrics ?? []).includes('ThrottledRequests'));
      const watched = ((alarm?.Metrics ?? []) as { MetricStat?: { Metric: { Dimensions: Json[] } } }[])
        .flatMap((m) => m.MetricStat?.Metric.Dimensions ?? [])
        .filter((d) => d.Name === 'Operation')
        .map((d) => d.Value);
      // Assess
      expect(dynamoCommands).toContain('TransactWriteCommand');
      expect(watched).toEqual(expect.arrayContaining(dynamoCommands.map((command) => operations[command])));
    });

    it('encrypts the alarm topic, refuses plain HTTP, and subscribes the configured e-mail', () => {
      api.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
      api.hasResourceProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
      api.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    });

    it("lets CloudWatch publish to the topic and use its key, only for this account's alarms", () => {
      // Prepare
      const [[topicId] = ['']] = resources(api, 'AWS::SNS::Topic');
      const topicKeyId =
        ((resource(api, topicId).Properties.KmsMasterKeyId as Json)['Fn::GetAtt'] as string[])[0] ?? '';
      const alarmArns = resources(api, 'AWS::CloudWatch::Alarm')
        .map(([id]) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }))
        .sort();
      const fromCloudWatch = (statements: Json[]) =>
        statements.filter(
          (s) => JSON.stringify(s.Principal) === JSON.stringify({ Service: 'cloudwatch.amazonaws.com' }),
        );
      const [[, topicPolicy] = ['', undefined]] = resources(api, 'AWS::SNS::TopicPolicy');
      const publish = fromCloudWatch((topicPolicy?.Properties.PolicyDocument as { Statement: Json[] }).Statement);
      const usesKey = fromCloudWatch(
        (resource(api, topicKeyId).Properties.KeyPolicy as { Statement: Json[] }).Statement,
      );
      const account = { Ref: 'AWS::AccountId' };
      // Assess: the topic policy names each alarm of the stack, and nothing else.
      expect(topicPolicy?.Properties.Topics).toEqual([{ Ref: topicId }]);
      expect(publish).toHaveLength(1);
      expect(publish[0]).toMatchObject({ Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: topicId } });
      const publishCondition = publish[0]?.Condition as { StringEquals: Json; ArnLike: { 'aws:SourceArn': unknown[] } };
      expect(Object.keys(publishCondition).sort()).toEqual(['ArnLike', 'StringEquals']);
      expect(publishCondition.StringEquals).toEqual({ 'aws:SourceAccount': account });
      expect(publishCondition.ArnLike['aws:SourceArn'].map((arn) => JSON.stringify(arn)).sort()).toEqual(alarmArns);
      // The key policy cannot name the alarms (key -> topic -> alarms -> key is a cycle): any alarm of this account and region.
      expect(usesKey).toHaveLength(1);
      expect({ ...usesKey[0], Action: [usesKey[0]?.Action].flat().sort() }).toEqual({
        Sid: expect.any(String) as unknown,
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Resource: '*',
        Condition: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnLike: {
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', account, ':alarm:*'],
              ],
            },
          },
        },
      });
    });
  });
});
