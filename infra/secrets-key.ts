/**
 * What the CDK app must agree on with the sealing code about the secrets key: the variables
 * the functions read it from (lib/config.ts SEALING_ENV), the encryption context every sealed
 * secret carries (lib/adapters/esdk-sealer.ts CONTEXT_POOL, CONTEXT_KEY_ID), the KMS actions
 * the KMS keyring calls (seal = GenerateDataKey, open = Decrypt), and what a key ARN looks like.
 *
 * The infra layer may not import lib/config.ts or lib/adapters (eslint.config.js), so the
 * names are written here once more; test/infra/secrets-key.test.ts compares each with its
 * source, so the two can never drift apart.
 */

/** The variables lib/config.ts `readSealingConfig` reads (SEALING_ENV.keyArn, SEALING_ENV.previousKeyArns). */
export const SECRETS_KEY_ENV = {
  keyArn: 'KEYPOOL_SECRETS_KEY_ARN',
  previousKeyArns: 'KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS',
} as const;

/** The encryption-context keys of every sealed secret, exactly these two (the ESDK sealer's CONTEXT_POOL, CONTEXT_KEY_ID). */
export const SEALED_CONTEXT_KEYS = ['pool', 'keyId'] as const;

/** A KMS key ARN (not an alias, not a bare id): the same rule lib/config.ts applies to the variables. */
export const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]{1,128}$/;

/**
 * What a function does with sealed secrets: `decrypt` opens them (it hands a key out or calls
 * the provider with it), `encrypt` seals new ones and never opens one, `none` never touches
 * the ciphertext attribute and gets no access to the secrets key at all.
 */
export type SecretsAccess = 'decrypt' | 'encrypt' | 'none';

/**
 * The one KMS action each access calls, and nothing wider: the ESDK's KMS keyring seals with
 * GenerateDataKey on its generator key and opens with Decrypt of the one wrapped data key
 * (no Encrypt, no ReEncrypt, no GenerateDataKeyWithoutPlaintext).
 */
export const SECRETS_KEY_ACTION = { decrypt: 'kms:Decrypt', encrypt: 'kms:GenerateDataKey' } as const satisfies Record<Exclude<SecretsAccess, 'none'>, string>;

/**
 * The condition every use of the secrets key carries, in its key policy and in each role's
 * statement: the request's encryption context has exactly the keys `pool` and `keyId`. KMS
 * then refuses a call without them (a bare Encrypt/Decrypt of something else under this key)
 * and one that adds a key. ForAllValues alone is also true for an empty context, hence the
 * two Null checks that require both keys to be present.
 *
 * Values are not pinned: the functions serve every pool, so no fixed `pool` value fits them.
 * A role that served one pool only could add `StringEquals kms:EncryptionContext:pool = <pool>`
 * and KMS would refuse it every other pool's secrets.
 */
export function sealedContextConditions(): Record<string, Record<string, unknown>> {
  return {
    'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [...SEALED_CONTEXT_KEYS] },
    Null: Object.fromEntries(SEALED_CONTEXT_KEYS.map((key) => [`kms:EncryptionContext:${key}`, 'false'])),
  };
}

/** The alias of a stage's secrets key (aliases are per account and region, like the stage). */
export function secretsKeyAliasName(stage: string): string {
  return `alias/keypool-${stage}-secrets`;
}
