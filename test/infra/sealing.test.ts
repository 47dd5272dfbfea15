/**
 * The secrets key in the synthesized templates, asserted offline: a dedicated key beside the
 * table key, both keys' policies written out (no account-root kms:*), exactly which roles may
 * open (lease, maintain) and seal (keys, migrate) and with which encryption context, the
 * variables each function reads the keys from, a rotation's previous keys, and the alarm on
 * keys whose secret cannot be decrypted. Each app is synthesized with cdk-nag.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_NAMES, type EntryName } from '../../infra/entry-points.js';
import { buildKeypoolApp, type KeypoolApp } from '../../infra/keypool-app.js';
import { type Json, NO_BUNDLING, resource, resources } from '../support/templates.js';

interface Statement {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: Json;
}

const PROD = { ...NO_BUNDLING, stage: 'prod', pools: 'stability:3,sdxl-turbo:2' };
/** A key from outside the stack that sealed secrets once (fake account and id). */
const OUTSIDE_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

const ACCOUNT = { Ref: 'AWS::AccountId' };
const ACCOUNT_ROOT = { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', ACCOUNT, ':root']] } };
const ADMIN_ACTIONS = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];
/** Exactly the keys pool and keyId in the request's encryption context, any values. */
const SEALED_CONTEXT = {
  'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['pool', 'keyId'] },
  Null: { 'kms:EncryptionContext:pool': 'false', 'kms:EncryptionContext:keyId': 'false' },
  StringLike: { 'kms:EncryptionContext:keyId': 'k_*' },
};

/** Builds and synthesizes (cdk-nag included: an unacknowledged finding throws) one app. */
function synthesized(context: Json): { built: KeypoolApp; data: Template; api: Template } {
  const built = buildKeypoolApp({ context, builtinCloudFormationValidation: false });
  built.app.synth();
  return { built, data: Template.fromStack(built.stateful), api: Template.fromStack(built.stateless) };
}

/** The one KMS key whose logical id starts with the construct id (letters and digits only). */
function keyId(template: Template, constructId: string): string {
  const prefix = constructId.replace(/[^A-Za-z0-9]/g, '');
  const found = resources(template, 'AWS::KMS::Key').filter(([id]) => new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id));
  expect(found, constructId).toHaveLength(1);
  return found[0]?.[0] ?? '';
}

function keyPolicy(template: Template, logicalId: string): Statement[] {
  return (resource(template, logicalId).Properties.KeyPolicy as { Statement: Statement[] }).Statement;
}

/** The role of each function, by entry name. */
function roles(template: Template): Map<string, EntryName> {
  const byRole = new Map<string, EntryName>();
  for (const name of ENTRY_NAMES) {
    const functions = resources(template, 'AWS::Lambda::Function').filter(([id]) => id.startsWith(`${name}functionfn`));
    expect(functions, name).toHaveLength(1);
    const role = ((functions[0]?.[1].Properties.Role as Json)['Fn::GetAtt'] as string[])[0] ?? '';
    byRole.set(role, name);
  }
  return byRole;
}

/** Every Allow statement of every IAM policy (inline or managed) of a template, with who holds it. */
function iamStatements(template: Template): { holder: string; statement: Statement }[] {
  const policies = [...resources(template, 'AWS::IAM::Policy'), ...resources(template, 'AWS::IAM::ManagedPolicy')];
  const byRole = roles(template);
  return policies.flatMap(([id, policy]) => {
    const attached = ((policy.Properties.Roles ?? []) as { Ref: string }[]).map(
      (role) => byRole.get(role.Ref) ?? role.Ref,
    );
    const holder = attached.length > 0 ? attached.join(',') : id;
    return (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement.map((statement) => ({
      holder,
      statement,
    }));
  });
}

const actionsOf = (statement: Statement): string[] => [statement.Action].flat().sort();
const resourcesOf = (statement: Statement): unknown[] => [statement.Resource].flat();

/** How the stateless stack refers to a key of the stateful stack: the import of its ARN. */
function importOf(data: Template, keyLogicalId: string): Json {
  const outputs = (data.toJSON() as { Outputs: Record<string, { Value: unknown; Export?: { Name: string } }> }).Outputs;
  const exported = Object.values(outputs).filter(
    (o) => JSON.stringify(o.Value) === JSON.stringify({ 'Fn::GetAtt': [keyLogicalId, 'Arn'] }) && o.Export,
  );
  expect(exported, keyLogicalId).toHaveLength(1);
  return { 'Fn::ImportValue': exported[0]?.Export?.Name };
}

/** Each function's environment. */
function environments(api: Template): Record<EntryName, Json> {
  const byRole = roles(api);
  const envs = {} as Record<EntryName, Json>;
  for (const [, fn] of resources(api, 'AWS::Lambda::Function')) {
    const name = byRole.get(((fn.Properties.Role as Json)['Fn::GetAtt'] as string[])[0] ?? '');
    if (name) envs[name] = (fn.Properties.Environment as { Variables: Json }).Variables;
  }
  return envs;
}

/** Who holds which KMS actions on any of `keys` (each an import or an ARN), and with which conditions. */
function kmsGrants(
  api: Template,
  keys: unknown[],
): { holder: string; actions: string[]; resources: unknown[]; condition: unknown }[] {
  const named = new Set(keys.map((key) => JSON.stringify(key)));
  return iamStatements(api)
    .filter(({ statement }) => resourcesOf(statement).some((r) => named.has(JSON.stringify(r))))
    .map(({ holder, statement }) => ({
      holder,
      actions: actionsOf(statement),
      resources: resourcesOf(statement),
      condition: statement.Condition,
    }))
    .sort((a, b) => a.holder.localeCompare(b.holder));
}

describe('the secrets key (prod, synthesized offline)', () => {
  let prod: ReturnType<typeof synthesized>;
  let secretsKey: string;
  let tableKey: string;

  beforeAll(() => {
    // Prepare / Act: cdk-nag runs in synth, so building without a throw is the nag check.
    prod = synthesized(PROD);
    secretsKey = keyId(prod.data, 'secrets-key');
    tableKey = keyId(prod.data, 'table-key');
  });

  describe('the keys', () => {
    it('adds a dedicated symmetric key for the secrets beside the table key: rotation on, retained, its alias and its ARN as an output', () => {
      // Prepare
      const key = resource(prod.data, secretsKey);
      const [[, table] = ['', undefined]] = resources(prod.data, 'AWS::DynamoDB::Table');
      const outputs = (prod.data.toJSON() as { Outputs: Record<string, { Value: unknown }> }).Outputs;
      // Assess: not the table's key (nor the proxy answers bucket's: test/infra/proxy.test.ts).
      expect(
        resources(prod.data, 'AWS::KMS::Key')
          .map(([id]) => id)
          .filter((id) => !id.startsWith('answerskey'))
          .sort(),
      ).toEqual([secretsKey, tableKey].sort());
      expect((table?.Properties.SSESpecification as Json).KMSMasterKeyId).toEqual({ 'Fn::GetAtt': [tableKey, 'Arn'] });
      // Symmetric encryption key (CloudFormation's default spec and usage), rotated yearly, kept.
      expect(key.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT');
      expect(key.Properties.KeyUsage ?? 'ENCRYPT_DECRYPT').toBe('ENCRYPT_DECRYPT');
      expect(key.Properties).toMatchObject({
        EnableKeyRotation: true,
        PendingWindowInDays: 30,
        Description: expect.stringContaining('seals the API keys') as unknown,
      });
      expect([key.DeletionPolicy, key.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
      prod.data.hasResource('AWS::KMS::Alias', {
        Properties: { AliasName: 'alias/keypool-prod-secrets', TargetKeyId: { 'Fn::GetAtt': [secretsKey, 'Arn'] } },
        DeletionPolicy: 'Retain',
      });
      expect(outputs.SecretsKeyArn?.Value).toEqual({ 'Fn::GetAtt': [secretsKey, 'Arn'] });
      expect(outputs.PreviousSecretsKeyArns).toBeUndefined();
    });

    it('lets a dev stage delete its secrets key after the shortest waiting period', () => {
      // Prepare / Act
      const dev = synthesized({ ...NO_BUNDLING, stage: 'dev' });
      const key = resource(dev.data, keyId(dev.data, 'secrets-key'));
      // Assess
      expect([key.DeletionPolicy, key.Properties.PendingWindowInDays]).toEqual(['Delete', 7]);
      dev.data.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/keypool-dev-secrets' });
    });
  });

  describe('key policies', () => {
    it('gives the account root no kms:* and no cryptographic action without a condition, on either key', () => {
      for (const id of [tableKey, secretsKey]) {
        // Prepare
        const statements = keyPolicy(prod.data, id);
        // Assess
        expect(
          statements.flatMap(actionsOf).filter((a) => a === 'kms:*' || a === '*'),
          id,
        ).toEqual([]);
        for (const statement of statements) {
          expect(statement.Effect).toBe('Allow');
          expect(statement.Principal, id).toEqual(ACCOUNT_ROOT);
          const crypto = actionsOf(statement).filter((a) => /^kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey)/.test(a));
          if (crypto.length > 0) expect(statement.Condition, `${id} ${crypto.join()}`).toBeDefined();
        }
      }
    });

    it('table key: administration for the account, and use only through DynamoDB in this region by this account', () => {
      // Assess: exactly these two statements (AWS KMS guide, "How Amazon DynamoDB uses AWS KMS").
      expect(keyPolicy(prod.data, tableKey)).toEqual([
        {
          Sid: 'AccountAdministersTheKey',
          Effect: 'Allow',
          Principal: ACCOUNT_ROOT,
          Action: ADMIN_ACTIONS,
          Resource: '*',
        },
        {
          Sid: 'AccountUsesTheKeyThroughDynamoDbOnly',
          Effect: 'Allow',
          Principal: ACCOUNT_ROOT,
          Action: [
            'kms:Encrypt',
            'kms:Decrypt',
            'kms:ReEncrypt*',
            'kms:GenerateDataKey*',
            'kms:DescribeKey',
            'kms:CreateGrant',
          ],
          Resource: '*',
          Condition: {
            StringEquals: {
              'kms:ViaService': {
                'Fn::Join': ['', ['dynamodb.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]],
              },
              'kms:CallerAccount': ACCOUNT,
            },
          },
        },
      ]);
    });

    it('secrets key: administration for the account, and Decrypt and GenerateDataKey only with the context {pool, keyId}, by this account', () => {
      // Assess: exactly these two statements; no role named (the roles' own policies grant use).
      expect(keyPolicy(prod.data, secretsKey)).toEqual([
        {
          Sid: 'AccountAdministersTheKey',
          Effect: 'Allow',
          Principal: ACCOUNT_ROOT,
          Action: ADMIN_ACTIONS,
          Resource: '*',
        },
        {
          Sid: 'AccountSealsAndOpensKeypoolSecrets',
          Effect: 'Allow',
          Principal: ACCOUNT_ROOT,
          Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
          Resource: '*',
          Condition: { StringEquals: { 'kms:CallerAccount': ACCOUNT }, ...SEALED_CONTEXT },
        },
      ]);
    });
  });

  describe('who may open and seal', () => {
    // The reviewed table, written out here rather than read from infra/entry-points.ts.
    // The proxy opens the key it calls the provider with.
    const OPENS: EntryName[] = ['lease', 'maintain', 'proxy'];
    const SEALS: EntryName[] = ['keys', 'migrate'];

    it('lets exactly the lease, maintain and proxy roles Decrypt and the keys and migrate roles GenerateDataKey, with the sealing context; nobody else any KMS action on the key', () => {
      // Prepare
      const grants = kmsGrants(prod.api, [importOf(prod.data, secretsKey)]);
      // Assess
      expect(grants).toEqual(
        [
          ...OPENS.map((holder) => ({ holder, actions: ['kms:Decrypt'] })),
          ...SEALS.map((holder) => ({ holder, actions: ['kms:GenerateDataKey'] })),
        ]
          .map((g) => ({ ...g, resources: [importOf(prod.data, secretsKey)], condition: SEALED_CONTEXT }))
          .sort((a, b) => a.holder.localeCompare(b.holder)),
      );
    });

    it('grants no KMS action on "*" or on an account-wide key pattern to any role or caller policy', () => {
      for (const { holder, statement } of iamStatements(prod.api)) {
        if (!actionsOf(statement).some((a) => a.startsWith('kms:'))) continue;
        // Assess
        expect(
          resourcesOf(statement)
            .map((r) => JSON.stringify(r))
            .filter((r) => r.includes('*')),
          holder,
        ).toEqual([]);
      }
    });

    it('tells exactly the sealing and opening functions the key ARN, and no function a previous key', () => {
      // Prepare
      const envs = environments(prod.api);
      // Assess
      for (const name of ENTRY_NAMES) {
        const expected = OPENS.includes(name) || SEALS.includes(name) ? importOf(prod.data, secretsKey) : undefined;
        expect(envs[name].KEYPOOL_SECRETS_KEY_ARN, name).toEqual(expected);
        expect(envs[name].KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS, name).toBeUndefined();
      }
    });
  });

  describe('rotation to a new key', () => {
    let rotating: ReturnType<typeof synthesized>;
    let current: string;
    let previous: string;

    beforeAll(() => {
      // Prepare / Act: generation 2 seals; generation 1 stays for reseal; one key from outside the stack.
      rotating = synthesized({
        ...PROD,
        secretsKeyGeneration: '2',
        previousSecretsKeyGenerations: '1',
        previousSecretsKeyArns: OUTSIDE_KEY,
      });
      current = keyId(rotating.data, 'secrets-key-v2');
      previous = keyId(rotating.data, 'secrets-key');
    });

    it('adds a new key for the new generation, keeps the old one under the same logical id, and points the alias at the new one', () => {
      // Prepare
      const outputs = (rotating.data.toJSON() as { Outputs: Record<string, { Value: unknown }> }).Outputs;
      // Assess: the old key is the very resource of generation 1 (not replaced); the alias is updated in place.
      expect(previous).toBe(secretsKey);
      expect(keyPolicy(rotating.data, current)).toEqual(keyPolicy(rotating.data, previous));
      expect(resource(rotating.data, current).Properties.EnableKeyRotation).toBe(true);
      const [[aliasId, alias] = ['', undefined]] = resources(rotating.data, 'AWS::KMS::Alias');
      expect(aliasId).toBe(resources(prod.data, 'AWS::KMS::Alias')[0]?.[0]);
      expect(alias?.Properties.TargetKeyId).toEqual({ 'Fn::GetAtt': [current, 'Arn'] });
      expect(outputs.SecretsKeyArn?.Value).toEqual({ 'Fn::GetAtt': [current, 'Arn'] });
      // One previous generation: CDK folds the join of one ARN into the ARN itself.
      expect(outputs.PreviousSecretsKeyArns?.Value).toEqual({ 'Fn::GetAtt': [previous, 'Arn'] });
    });

    it('lets the lease, maintain and proxy roles Decrypt under the new, the old and the outside key, and seals under the new key only', () => {
      // Prepare
      const keys = [importOf(rotating.data, current), importOf(rotating.data, previous), OUTSIDE_KEY];
      // Act
      const grants = kmsGrants(rotating.api, keys);
      // Assess
      expect(grants).toEqual([
        { holder: 'keys', actions: ['kms:GenerateDataKey'], resources: [keys[0]], condition: SEALED_CONTEXT },
        { holder: 'lease', actions: ['kms:Decrypt'], resources: keys, condition: SEALED_CONTEXT },
        { holder: 'maintain', actions: ['kms:Decrypt'], resources: keys, condition: SEALED_CONTEXT },
        { holder: 'migrate', actions: ['kms:GenerateDataKey'], resources: [keys[0]], condition: SEALED_CONTEXT },
        { holder: 'proxy', actions: ['kms:Decrypt'], resources: keys, condition: SEALED_CONTEXT },
      ]);
    });

    it('gives the opening functions the previous key ARNs, the old generation first, and the sealing functions the new key only', () => {
      // Prepare
      const envs = environments(rotating.api);
      const previousArns = { 'Fn::Join': ['', [importOf(rotating.data, previous), `,${OUTSIDE_KEY}`]] };
      // Assess
      for (const name of ['lease', 'maintain', 'proxy'] as const) {
        expect(envs[name].KEYPOOL_SECRETS_KEY_ARN, name).toEqual(importOf(rotating.data, current));
        expect(envs[name].KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS, name).toEqual(previousArns);
      }
      for (const name of ['keys', 'migrate'] as const) {
        expect(envs[name].KEYPOOL_SECRETS_KEY_ARN, name).toEqual(importOf(rotating.data, current));
        expect(envs[name].KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS, name).toBeUndefined();
      }
      for (const name of ['meta', 'pools', 'list', 'counting'] as const) {
        expect(
          Object.keys(envs[name]).filter((key) => key.startsWith('KEYPOOL_SECRETS')),
          name,
        ).toEqual([]);
      }
    });
  });

  describe('the undecryptable-keys alarm', () => {
    it('alarms per configured pool as soon as one maintenance run reports a key it cannot decrypt, to the alarm topic', () => {
      // Prepare
      const [[topic] = ['']] = resources(prod.api, 'AWS::SNS::Topic');
      const alarms = resources(prod.api, 'AWS::CloudWatch::Alarm')
        .map(([, alarm]) => alarm.Properties)
        .filter((alarm) => alarm.MetricName === 'UndecryptableKeys');
      // Assess: Maximum > 0 over one 15-minute maintenance period; no report is not an alarm.
      expect(
        alarms.map((a) => [
          (a.Dimensions as Json[])[0],
          a.Namespace,
          a.Statistic,
          a.Period,
          a.ComparisonOperator,
          a.Threshold,
          a.EvaluationPeriods,
          a.TreatMissingData,
        ]),
      ).toEqual([
        [{ Name: 'pool', Value: 'stability' }, 'keypool', 'Maximum', 900, 'GreaterThanThreshold', 0, 1, 'ignore'],
        [{ Name: 'pool', Value: 'sdxl-turbo' }, 'keypool', 'Maximum', 900, 'GreaterThanThreshold', 0, 1, 'ignore'],
      ]);
      for (const alarm of alarms) {
        expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
        expect(alarm.AlarmDescription).toMatch(
          /^keypool cannot decrypt the secret of some keys of pool "(stability|sdxl-turbo)".*their ciphertext was copied or tampered with \(a missing wrapping key marks nothing/,
        );
      }
      prod.api.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'UndecryptableKeys',
        OKActions: [{ Ref: topic }],
        Dimensions: Match.anyValue(),
      });
    });
  });
});
