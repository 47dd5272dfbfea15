/** A sealer built on first use, so a process that never seals or opens never loads a wrapping key or the sealing library. */
import type { SealContext } from '../domain/types.js';
import type { SecretSealer } from '../ports/secret-sealer.js';

/**
 * A sealer built on its first call (a failed build is retried on the next call, so a key file
 * fixed by the operator is picked up without a restart).
 */
export class LazySealer implements SecretSealer {
  #built: Promise<SecretSealer> | undefined;

  constructor(private readonly build: () => Promise<SecretSealer>) {}

  async seal(secret: string, context: SealContext): Promise<string> {
    return (await this.#sealer()).seal(secret, context);
  }

  async open(sealed: string, context: SealContext): Promise<string> {
    return (await this.#sealer()).open(sealed, context);
  }

  async resealNeeded(sealed: string): Promise<boolean> {
    return (await this.#sealer()).resealNeeded(sealed);
  }

  /** Builds the sealer now (its key files read), failing as its first call would. */
  async ready(): Promise<void> {
    await this.#sealer();
  }

  #sealer(): Promise<SecretSealer> {
    return (this.#built ??= this.build().catch((error: unknown) => {
      this.#built = undefined;
      throw error;
    }));
  }
}
