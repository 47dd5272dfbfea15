/**
 * SecretSealer over the AWS Encryption SDK: the opener (esdk-opener.ts, where the suite, the
 * binding and every check are described) plus seal, with the ESDK's own encrypt and keyrings
 * (esdk-keyrings.ts). Kept apart so that only the functions that seal (import, migration, the
 * CLI) load the ESDK.
 */
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import { AlgorithmSuiteIdentifier, CommitmentPolicy } from '@aws-crypto/material-management-node';
import type { SealContext } from '../domain/types.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { keyringFor } from './esdk-keyrings.js';
import { EsdkOpener, type EsdkSealerOptions, kmsClientsOf, type SealMessage } from './esdk-opener.js';

export {
  type EsdkSealerOptions,
  inspectSealed,
  type SealedInfo,
  type SealerStats,
  SEALING_SUITE,
} from './esdk-opener.js';

let encryptOnce: ReturnType<typeof buildEncrypt>['encrypt'] | undefined;
/**
 * buildEncrypt on the first seal: nothing of the encrypt side runs in a process that never
 * seals, and nothing here runs at import, so the bundles that import the wiring but only open
 * drop this module whole. Messages we write hold exactly one encrypted data key (one wrapping
 * key per seal); the opener refuses more (sealed-message.ts), which bounds what a planted
 * ciphertext can make it do.
 */
const encrypt: ReturnType<typeof buildEncrypt>['encrypt'] = (...args) =>
  (encryptOnce ??= buildEncrypt({
    commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    maxEncryptedDataKeys: 1,
  }).encrypt)(...args);

/** The AWS Encryption SDK sealer: opens as EsdkOpener does, and seals. Build it once per process. */
export class EsdkSealer extends EsdkOpener implements SecretSealer {
  readonly #seal: SealMessage;

  constructor(options: EsdkSealerOptions) {
    super(options);
    const keyring = keyringFor(options.current, kmsClientsOf(options.kms));
    this.#seal = async (plaintext, encryptionContext, failures) =>
      (
        await encrypt(keyring(failures), plaintext, {
          // SEALING_SUITE (0x0478), the one suite the opener opens (sealed-message.ts)
          suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
          encryptionContext,
          plaintextLength: plaintext.length,
        })
      ).result;
  }

  /** Seals under the current wrapping key; rejects with SealingUnavailable if KMS fails. */
  seal(secret: string, context: SealContext): Promise<string> {
    return this.sealWith(this.#seal, secret, context);
  }
}

/** A sealer over one wrapping key, with the default cache: what the wiring builds per process. */
export function createEsdkSealer(options: EsdkSealerOptions): EsdkSealer {
  return new EsdkSealer(options);
}
