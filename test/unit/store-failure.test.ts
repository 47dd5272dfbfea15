/**
 * How the edges tell a table they cannot read: the kind of failure from the SDK's error, and the
 * permission an AccessDeniedException refused, in words that never carry the principal or account.
 */
import { describe, expect, it } from 'vitest';
import { deniedPermission, storeFailure } from '../../lib/shared/store-failure.js';

/** An error as the SDK throws DynamoDB's refusal. */
function denied(message: string): Error {
  return Object.assign(new Error(message), { name: 'AccessDeniedException' });
}

describe('store failures', () => {
  it('classes an AccessDeniedException as access_denied, apart from a missing table or no credentials', () => {
    // Act
    const kinds = [
      denied('not authorized'),
      Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }),
      Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }),
      new Error('something else'),
    ].map(storeFailure);
    // Assess
    expect(kinds).toEqual(['access_denied', 'missing_table', 'no_credentials', undefined]);
  });

  it('classes an HTTP answer with no DynamoDB error type, or not JSON, as not_dynamodb, and a DynamoDB error as none of these', () => {
    // Prepare: as the SDK throws them (an answer it could not read carries $metadata with the status).
    const answered = (name: string, status: number): Error =>
      Object.assign(new Error('send a body as JSON'), { name, $metadata: { httpStatusCode: status } });
    // Act
    const kinds = [
      answered('Unknown', 415),
      Object.assign(new SyntaxError('Unexpected token <'), { $metadata: { httpStatusCode: 405 } }),
      answered('ConditionalCheckFailedException', 400),
      Object.assign(new Error('no answer'), { name: 'Unknown' }),
    ].map(storeFailure);
    // Assess
    expect(kinds).toEqual(['not_dynamodb', 'not_dynamodb', undefined, undefined]);
  });

  it("names the refused action, table and index from IAM's message, and nothing of the principal or account", () => {
    // Prepare
    const error = denied(
      'User: arn:aws:iam::123456789012:user/ops is not authorized to perform: dynamodb:BatchGetItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/keypool with an explicit deny in an identity-based policy',
    );
    const index = denied(
      'User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: dynamodb:Query on resource: arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/kp.prod_1/index/pool-keys because no identity-based policy allows the dynamodb:Query action',
    );
    // Act
    const words = [deniedPermission(error, 'configured'), deniedPermission(index, 'configured')];
    // Assess
    expect(words).toEqual([
      'dynamodb:BatchGetItem on table "keypool"',
      'dynamodb:Query on table "kp.prod_1" (index pool-keys)',
    ]);
    expect(words.join(' ')).not.toMatch(/123456789012|ops|assumed-role/);
  });

  it('falls back to the configured table, and never repeats a message it cannot read', () => {
    // Act
    const words = deniedPermission(denied('User: arn:aws:iam::123456789012:user/ops is not allowed'), 'keypool');
    // Assess
    expect(words).toBe('a DynamoDB action on table "keypool"');
  });
});
