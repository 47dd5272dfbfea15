/**
 * Sealers built on first use, so a process that never seals or opens never loads a wrapping key
 * or the sealing library, and one that does loads it on its first call, not at start.
 */
import type { SealContext } from '../domain/types.js';
import type { SecretOpener, SecretSealer } from '../ports/secret-sealer.js';

/**
 * An opener built on its first call (a failed build is retried on the next call, so a key file
 * fixed by the operator is picked up without a restart).
 */
export class LazyOpener<Built extends SecretOpener = SecretOpener> implements SecretOpener {
  #built: Promise<Built> | undefined;

  constructor(private readonly build: () => Promise<Built>) {}

  async open(sealed: string, context: SealContext): Promise<string> {
    return (await this.built()).open(sealed, context);
  }

  async resealNeeded(sealed: string): Promise<boolean> {
    return (await this.built()).resealNeeded(sealed);
  }

  /** Builds it now (its key files read), failing as its first call would. */
  async ready(): Promise<void> {
    await this.built();
  }

  protected built(): Promise<Built> {
    return (this.#built ??= this.build().catch((error: unknown) => {
      this.#built = undefined;
      throw error;
    }));
  }
}

/** A sealer built on its first call, as LazyOpener. */
export class LazySealer extends LazyOpener<SecretSealer> implements SecretSealer {
  async seal(secret: string, context: SealContext): Promise<string> {
    return (await this.built()).seal(secret, context);
  }
}
