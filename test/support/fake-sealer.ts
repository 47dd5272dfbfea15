/**
 * A SecretSealer for unit tests of the use cases: it binds a "ciphertext" to its pool and key
 * id as the real one does (a value copied onto another item does not open) without any
 * cryptography. Never used where a test looks at what the table holds: those use the real
 * EsdkSealer with a local key.
 */
import { SealingMisconfigured, SealingUnavailable, SecretUndecryptable } from '../../lib/domain/errors.js';
import type { SealContext } from '../../lib/domain/types.js';
import type { SecretSealer } from '../../lib/ports/secret-sealer.js';

export class FakeSealer implements SecretSealer {
  /** the wrapping key's generation: a reseal moves values to the current one */
  generation = 1;
  /** when set, every open and seal fails as an unreachable key service would */
  unavailable = false;
  /** the generations it holds the wrapping key of (default: every one); others are SealingMisconfigured */
  held: readonly number[] | undefined;
  opens = 0;
  seals = 0;

  seal(secret: string, context: SealContext): Promise<string> {
    this.seals++;
    if (this.unavailable) return Promise.reject(new SealingUnavailable('seal', ['ServiceUnavailable']));
    return Promise.resolve(
      `fake${this.generation}:${context.pool}:${context.keyId}:${Buffer.from(secret).toString('base64')}`,
    );
  }

  open(sealed: string, context: SealContext): Promise<string> {
    this.opens++;
    if (this.unavailable) return Promise.reject(new SealingUnavailable('open', ['ServiceUnavailable']));
    const [, generation, pool, keyId, body] = /^fake(\d+):([^:]*):([^:]*):(.*)$/.exec(sealed) ?? [];
    if (body === undefined) return Promise.reject(new SecretUndecryptable(context, 'malformed'));
    if (pool !== context.pool || keyId !== context.keyId)
      return Promise.reject(new SecretUndecryptable(context, 'context-mismatch'));
    if (this.held && !this.held.includes(Number(generation)))
      return Promise.reject(
        new SealingMisconfigured(
          context,
          [`fake${generation}`],
          this.held.map((g) => `fake${g}`),
        ),
      );
    return Promise.resolve(Buffer.from(body, 'base64').toString());
  }

  resealNeeded(sealed: string): Promise<boolean> {
    return Promise.resolve(!sealed.startsWith(`fake${this.generation}:`));
  }
}
