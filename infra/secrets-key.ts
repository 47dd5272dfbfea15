/**
 * What the CDK app must agree on with the sealing code about the secrets key: the variables
 * the functions read it from, the encryption context every sealed secret carries, and the
 * KMS actions the KMS keyring calls (seal = GenerateDataKey, open = Decrypt). The names come
 * from lib/domain/sealing-names.ts, the one definition lib/config.ts and the ESDK sealer read
 * too (infra may import the domain, not lib/config.ts or lib/adapters: eslint.config.js).
 */
import { CONTEXT_KEY_ID, SEALED_CONTEXT_KEYS, SEALING_ENV } from '../lib/domain/sealing-names.js';
import { KEY_PREFIX } from '../lib/table.js';

/** The variables the stack sets on a function that uses the secrets key: the KMS ones only (key files are for local runs). */
export const SECRETS_KEY_ENV = { keyArn: SEALING_ENV.keyArn, previousKeyArns: SEALING_ENV.previousKeyArns } as const;

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
export const SECRETS_KEY_ACTION = { decrypt: 'kms:Decrypt', encrypt: 'kms:GenerateDataKey' } as const satisfies Record<
  Exclude<SecretsAccess, 'none'>,
  string
>;

/**
 * The condition every use of the secrets key carries, in its key policy and in each role's
 * statement: the request's encryption context has exactly the keys `pool` and `keyId`, and the
 * `keyId` is a key item's (`k_…`). KMS then refuses a call without them (a bare
 * Encrypt/Decrypt of something else under this key), one that adds a key, and one sealed for
 * another kind of item. ForAllValues alone is also true for an empty context, hence the two
 * Null checks that require both keys to be present.
 *
 * The pool's value is not pinned: the functions serve every pool (pools are data, created by
 * `PUT /pools/{pool}`), so no fixed `pool` value fits them, and IAM cannot tie the context of
 * one KMS call to the pool of the HTTP request that caused it: which pool a secret is opened
 * for is the code's to decide (docs/security.md). A role that served one pool only could add
 * `StringEquals kms:EncryptionContext:pool = <pool>` and KMS would refuse it every other pool's
 * secrets.
 */
export function sealedContextConditions(): Record<string, Record<string, unknown>> {
  return {
    'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [...SEALED_CONTEXT_KEYS] },
    Null: Object.fromEntries(SEALED_CONTEXT_KEYS.map((key) => [`kms:EncryptionContext:${key}`, 'false'])),
    StringLike: { [`kms:EncryptionContext:${CONTEXT_KEY_ID}`]: `${KEY_PREFIX}*` },
  };
}

/** The alias of a stage's secrets key (aliases are per account and region, like the stage). */
export function secretsKeyAliasName(stage: string): string {
  return `alias/keypool-${stage}-secrets`;
}
