/**
 * SecretSealer over the AWS Encryption SDK: the opener (esdk-opener.ts, where the suite, the
 * binding and every check are described) plus seal, with the ESDK's own encrypt. Kept apart so
 * that only the functions that seal (import, migration, the CLI) load the encrypt side.
 */
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import type { SealContext } from '../domain/types.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { CLIENT_OPTIONS, type EncryptMessage, EsdkOpener, type EsdkSealerOptions } from './esdk-opener.js';

export {
  type EsdkSealerOptions,
  inspectSealed,
  type SealedInfo,
  type SealerStats,
  SEALING_SUITE,
} from './esdk-opener.js';

let encryptOnce: EncryptMessage | undefined;
/** buildEncrypt on the first seal: nothing of the encrypt side runs in a process that never seals. */
const encrypt: EncryptMessage = (...args) => (encryptOnce ??= buildEncrypt(CLIENT_OPTIONS).encrypt)(...args);

/** The AWS Encryption SDK sealer: opens as EsdkOpener does, and seals. Build it once per process. */
export class EsdkSealer extends EsdkOpener implements SecretSealer {
  /** Seals under the current wrapping key; rejects with SealingUnavailable if KMS fails. */
  seal(secret: string, context: SealContext): Promise<string> {
    return this.sealWith(encrypt, secret, context);
  }
}

/** A sealer over one wrapping key, with the default cache: what the wiring builds per process. */
export function createEsdkSealer(options: EsdkSealerOptions): EsdkSealer {
  return new EsdkSealer(options);
}
