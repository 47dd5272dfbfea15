/**
 * The sealing contract as the CDK app uses it: the stack sets the variables the functions
 * read, grants exactly the context the sealer sends, and accepts the key ARNs configuration
 * and the sealer accept. The names are defined once (lib/domain/sealing-names.ts); the ARN
 * check goes through the CDK app's own context parsing, so a rule written back into infra is caught.
 */
import { describe, expect, it } from 'vitest';
import { resolveStageConfig } from '../../../infra/config.js';
import { SECRETS_KEY_ENV, sealedContextConditions } from '../../../infra/secrets-key.js';
import { wrappingKeyRef } from '../../../lib/adapters/wrapping-keys.js';
import { readSealingConfig, SEALING_ENV } from '../../../lib/config.js';

/** Key ARNs and near misses: each is accepted by all three rules or by none. */
const CANDIDATES = [
  'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  'arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef',
  'arn:aws:kms:eu-west-1:111122223333:alias/keypool-prod-secrets',
  'alias/keypool-prod-secrets',
  '1234abcd-12ab-34cd-56ef-1234567890ab',
  'arn:aws:kms:eu-west-1:11112222333:key/1234abcd',
  'arn:aws:kms:eu-west-1:111122223333:key/',
  'arn:aws:kms:eu-west-1:111122223333:key/1234abcd/extra',
  'arn:aws:s3:::bucket',
];

describe('the sealing contract as the CDK app writes it', () => {
  it('sets the variables lib/config.ts reads the KMS key ARNs from', () => {
    expect(SECRETS_KEY_ENV).toEqual({ keyArn: SEALING_ENV.keyArn, previousKeyArns: SEALING_ENV.previousKeyArns });
  });

  it('conditions on exactly the encryption-context keys the ESDK sealer seals with', () => {
    // Act
    const conditions = sealedContextConditions();
    // Assess
    expect(conditions).toEqual({
      'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['pool', 'keyId'] },
      Null: { 'kms:EncryptionContext:pool': 'false', 'kms:EncryptionContext:keyId': 'false' },
      StringLike: { 'kms:EncryptionContext:keyId': 'k_*' },
    });
  });

  it.each(CANDIDATES)('accepts %j as a key ARN exactly when readSealingConfig and the sealer do', (candidate) => {
    // Act
    const infra = (() => {
      try {
        // As `-c previousSecretsKeyArns=<candidate>` on cdk synth.
        resolveStageConfig({ previousSecretsKeyArns: candidate });
        return true;
      } catch {
        return false;
      }
    })();
    const config = (() => {
      try {
        // A valid current key, the candidate as a previous one: only the candidate can fail.
        readSealingConfig({ [SEALING_ENV.keyArn]: CANDIDATES[0], [SEALING_ENV.previousKeyArns]: candidate });
        return true;
      } catch {
        return false;
      }
    })();
    const sealer = (() => {
      try {
        wrappingKeyRef({ kind: 'kms', keyArn: candidate });
        return true;
      } catch {
        return false;
      }
    })();
    // Assess
    expect([infra, infra]).toEqual([config, sealer]);
  });
});
