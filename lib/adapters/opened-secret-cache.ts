/**
 * Opened secrets kept in memory so a warm Lambda does not call KMS for every lease of the same
 * key. Bounded in entries and in age; the entry key is a hash of the exact ciphertext AND its
 * context, so a changed ciphertext (reseal, re-import) or the same ciphertext under another
 * item's context never meets a stale entry. Lives only as long as the process (the container).
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import type { SealContext } from '../domain/types.js';

/** At most this many opened secrets per process: above the pools we expect; a few hundred KB of memory when full. */
export const DEFAULT_CACHE_MAX_ENTRIES = 1_000;
/**
 * An opened secret is forgotten this long after it was opened (not after it was last used):
 * how long a plaintext may stay in a container's memory, and how long a disabled or revoked
 * wrapping key can still be "used" by a warm container.
 */
export const DEFAULT_CACHE_MAX_AGE_MS = 15 * 60_000;

export interface OpenedSecretCacheOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  /** the clock, in ms; tests pass a fake one */
  now?: () => number;
}

interface Entry {
  /** the secret's UTF-8 bytes: a Buffer can be zeroed on eviction, a string cannot */
  secret: Buffer;
  openedAtMs: number;
}

/**
 * The identity of one ciphertext in one context. Length-prefixed fields, so no pool/key id
 * pair can be confused with another; hashed so the map holds 64 characters per entry rather
 * than the ciphertext.
 */
export function cacheKeyFor(sealed: string, context: SealContext): string {
  const hash = createHash('sha256');
  for (const field of [context.pool, context.keyId, sealed]) hash.update(`${field.length}:${field}\n`);
  return hash.digest('hex');
}

/**
 * An insertion-ordered (FIFO by open time) map: entries are never refreshed on a hit, so the
 * oldest entry is always first and expired ones are swept from the front on every call.
 * FIFO rather than LRU because the broker cycles through the pool (least recently used key
 * first): a key comes back after the rest of the pool, whatever LRU would have kept.
 */
export class OpenedSecretCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(options: OpenedSecretCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
    this.#maxAgeMs = options.maxAgeMs ?? DEFAULT_CACHE_MAX_AGE_MS;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 0)
      throw new RangeError('maxEntries must be a whole number >= 0');
    if (!(this.#maxAgeMs >= 0)) throw new RangeError('maxAgeMs must be >= 0');
  }

  /** The secret opened for this key, if it was opened less than maxAgeMs ago. */
  get(key: string): string | undefined {
    this.#sweep();
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    // The sweep stops at the first entry still young, which is the oldest only while the clock
    // never steps back: an entry is judged by its own age before it is answered.
    if (this.#expired(entry)) {
      this.#drop(key);
      return undefined;
    }
    return entry.secret.toString('utf8');
  }

  /** Remembers an opened secret, evicting the oldest entries beyond maxEntries. */
  set(key: string, secret: string): void {
    if (this.#maxEntries === 0 || this.#maxAgeMs === 0) return;
    this.#sweep();
    this.#drop(key);
    this.#entries.set(key, { secret: Buffer.from(secret, 'utf8'), openedAtMs: this.#now() });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#drop(oldest.value);
    }
  }

  /** Forgets everything (and zeroes what it held). */
  clear(): void {
    for (const key of [...this.#entries.keys()]) this.#drop(key);
  }

  get size(): number {
    this.#sweep();
    return this.#entries.size;
  }

  /** What JSON.stringify and the logger see: a count, never content. */
  toJSON(): { openedSecrets: number } {
    return { openedSecrets: this.size };
  }

  [inspect.custom](): string {
    return `OpenedSecretCache { openedSecrets: ${this.size} }`;
  }

  #sweep(): void {
    for (const [key, entry] of this.#entries) {
      if (!this.#expired(entry)) break;
      this.#drop(key);
    }
  }

  #expired(entry: Entry): boolean {
    return entry.openedAtMs <= this.#now() - this.#maxAgeMs;
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    entry.secret.fill(0);
    this.#entries.delete(key);
  }
}
