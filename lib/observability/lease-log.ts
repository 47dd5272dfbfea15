/**
 * Where the lease path reports keys it cannot hand out: an error line for a key taken out of
 * its pool because its secret cannot be decrypted, a warning for one still stored unsealed.
 * Ids, pool and reason only, never a secret. The wiring gives them to the process's Leasing once.
 */
import type { SecretUndecryptable } from '../domain/errors.js';
import { logger } from './logger.js';

export const leaseLogHooks = {
  onUndecryptable: (error: SecretUndecryptable): void =>
    logger.error(
      'a key was taken out of its pool: its secret cannot be decrypted; run `keypool reseal` or import it again',
      { ...error.context, reason: error.reason, detail: error.message },
    ),
  onUnsealed: (key: { keyId: string; pool: string }): void =>
    logger.warn('a key is stored unsealed and is not leased until `keypool reseal` seals it', key),
};
