/**
 * The names the sealing code and the CDK app must agree on, written once: the variables that
 * name the wrapping keys, the encryption-context keys every sealed secret carries and what a
 * KMS key ARN looks like. No zod and no SDK here, so lib/config.ts, the ESDK adapter and the
 * CDK app (which may import only the domain, eslint.config.js) all read the same definitions.
 */

/** The variables that name the wrapping keys (lib/config.ts `readSealingConfig` reads them). */
export const SEALING_ENV = {
  keyArn: 'KEYPOOL_SECRETS_KEY_ARN',
  previousKeyArns: 'KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS',
  keyFile: 'KEYPOOL_SEALING_KEY_FILE',
  previousKeyFiles: 'KEYPOOL_SEALING_PREVIOUS_KEY_FILES',
} as const;

/** Encryption-context keys: short, lower-case, no `aws` prefix (reserved), usable in IAM conditions. */
export const CONTEXT_POOL = 'pool';
export const CONTEXT_KEY_ID = 'keyId';

/** The encryption-context keys of every sealed secret, exactly these two, in this order. */
export const SEALED_CONTEXT_KEYS = [CONTEXT_POOL, CONTEXT_KEY_ID] as const;

/** A KMS key ARN (not an alias, not a bare id): what configuration, the sealer and the stack accept. */
export const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]{1,128}$/;
