/**
 * The key policies of keypool's two customer-managed keys, written out instead of CDK's
 * default (account root `kms:*`, which lets any IAM policy in the account grant any use of
 * the key). The account keeps administration; use is delegated to the account's IAM
 * principals only through the one path each key is for, and the roles' own IAM policies
 * still have to grant it (a key policy that named the roles would make the stateful stack
 * depend on the stateless one).
 */
import { Stack } from 'aws-cdk-lib';
import { AccountRootPrincipal, Effect, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { SECRETS_KEY_ACTION, sealedContextConditions } from '../secrets-key.js';

/**
 * What CDK's default key policy gives the account root for administration (aws-kms
 * ADMIN_ACTIONS): manage, describe, rotate, tag, disable, schedule deletion. No
 * cryptographic operation: Encrypt, Decrypt, ReEncrypt and GenerateDataKey are not here.
 */
export const KEY_ADMIN_ACTIONS = [
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
] as const;

/**
 * What DynamoDB needs on a customer-managed table key, used on behalf of the caller: "At a
 * minimum, DynamoDB requires kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKey*,
 * kms:DescribeKey, kms:CreateGrant" (AWS KMS Developer Guide, "How Amazon DynamoDB uses AWS
 * KMS", customer managed key policy:
 * https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-customer-cmk-policy).
 * CreateGrant is how DynamoDB gets its own per-table grant for background work.
 */
export const DYNAMODB_TABLE_KEY_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncrypt*',
  'kms:GenerateDataKey*',
  'kms:DescribeKey',
  'kms:CreateGrant',
] as const;

function administration(): PolicyStatement {
  return new PolicyStatement({
    sid: 'AccountAdministersTheKey',
    effect: Effect.ALLOW,
    principals: [new AccountRootPrincipal()],
    actions: [...KEY_ADMIN_ACTIONS],
    resources: ['*'],
  });
}

/**
 * The table key: administration for the account; use only through DynamoDB in this region
 * (kms:ViaService) by principals of this account (kms:CallerAccount), and only when their
 * IAM policies allow it too. A direct call (kms:Decrypt from a script, not from DynamoDB) is
 * refused whatever the caller's IAM policy says.
 */
export function tableKeyPolicy(scope: IConstruct): PolicyDocument {
  return usedThroughOneService(scope, 'AccountUsesTheKeyThroughDynamoDbOnly', DYNAMODB_TABLE_KEY_ACTIONS, 'dynamodb');
}

/**
 * A key for one AWS service's use: administration for the account; `actions` for this
 * account's principals whose IAM policy allows them, only through `service` in this region
 * (kms:ViaService; keypool uses no global table or cross-region replication, where AWS's
 * examples widen it).
 */
function usedThroughOneService(
  scope: IConstruct,
  sid: string,
  actions: readonly string[],
  service: 'dynamodb' | 's3',
): PolicyDocument {
  const stack = Stack.of(scope);
  return new PolicyDocument({
    statements: [
      administration(),
      new PolicyStatement({
        sid,
        effect: Effect.ALLOW,
        principals: [new AccountRootPrincipal()],
        actions: [...actions],
        resources: ['*'],
        conditions: {
          StringEquals: {
            'kms:ViaService': `${service}.${stack.region}.${stack.urlSuffix}`,
            'kms:CallerAccount': stack.account,
          },
        },
      }),
    ],
  });
}

/**
 * The secrets key (it wraps the data key of each sealed API key): administration for the
 * account; Decrypt and GenerateDataKey, the two calls of the ESDK's KMS keyring, for this
 * account's principals whose IAM policy allows them, and only with the encryption context
 * keypool seals with (exactly `pool` and `keyId`). Nothing else: no Encrypt, no ReEncrypt,
 * no grants for a service, no other account.
 */
export function secretsKeyPolicy(scope: IConstruct): PolicyDocument {
  const stack = Stack.of(scope);
  return new PolicyDocument({
    statements: [
      administration(),
      new PolicyStatement({
        sid: 'AccountSealsAndOpensKeypoolSecrets',
        effect: Effect.ALLOW,
        principals: [new AccountRootPrincipal()],
        actions: [SECRETS_KEY_ACTION.decrypt, SECRETS_KEY_ACTION.encrypt],
        resources: ['*'],
        conditions: {
          StringEquals: { 'kms:CallerAccount': stack.account },
          ...sealedContextConditions(),
        },
      }),
    ],
  });
}

/**
 * What S3 calls on a customer-managed key for SSE-KMS, on behalf of the caller: GenerateDataKey
 * to write an object (or the bucket key), Decrypt to read one back or to finish a multipart
 * upload (Amazon S3 User Guide, "Using server-side encryption with AWS KMS keys": permissions).
 */
export const S3_OBJECT_KEY_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'] as const;

/**
 * The proxy answers key (SSE-KMS of the bucket that keeps proxied answers for an
 * Idempotency-Key replay): administration for the account; use only through S3 in this region
 * by principals of this account whose IAM policy allows it too. A direct Decrypt of an
 * object's data key from a script is refused, as for the table key through DynamoDB.
 */
export function answersKeyPolicy(scope: IConstruct): PolicyDocument {
  return usedThroughOneService(scope, 'AccountUsesTheKeyThroughS3Only', S3_OBJECT_KEY_ACTIONS, 's3');
}
