/** A leased key and the one completion it owes keypool. */
import { LeaseExpired } from './errors.js';
import type { Completion, CompletionReport, LeaseGrant, Outcome } from './types.js';
import { restSeconds } from './with-key.js';

/** What a Lease needs of its pool: the completion route. */
export interface Completes {
  complete(leaseId: string, report: CompletionReport): Promise<Completion>;
}

const OUTCOMES: readonly Outcome[] = ['success', 'failure', 'invalid_key', 'out_of_credits', 'rate_limited', 'unknown'];

/**
 * A key of the pool, held until completed. Printed, logged or turned into JSON it shows its ids
 * and count, never the secret (`apiKey` is a getter, not a field).
 */
export class Lease implements LeaseGrant {
  readonly leaseId: string;
  readonly keyId: string;
  readonly pool: string;
  /** the key's count before this use */
  readonly usageCount: number;
  /** ISO 8601; past it the use stays counted and a refund answers LeaseExpired */
  readonly expiresAt: string;
  /** how the lease was completed (undefined while open) */
  outcome: Outcome | undefined;
  /** the key after the completion (undefined while open, or when the lease had expired) */
  completion: Completion | undefined;
  readonly #apiKey: string;
  readonly #pool: Completes;
  #completing: { outcome: Outcome; done: Promise<Completion | undefined> } | undefined;

  constructor(pool: Completes, grant: LeaseGrant) {
    this.#pool = pool;
    this.#apiKey = grant.apiKey;
    this.leaseId = grant.leaseId;
    this.keyId = grant.keyId;
    this.pool = grant.pool;
    this.usageCount = grant.usageCount;
    this.expiresAt = grant.expiresAt;
  }

  /** the secret: send it to the provider, never to a log */
  get apiKey(): string {
    return this.#apiKey;
  }

  /**
   * Reports how the use went: `success` (the default) keeps it counted, `unknown` too (the
   * provider may have billed it), every other outcome gives it back; with `rate_limited`,
   * `retryAfterSeconds` (a number, or a Retry-After header's text) is how long the key rests,
   * else the pool's cooldown. Once only: the same outcome again answers the first call's
   * promise, another outcome throws. Resolves to the key after completion; to undefined when
   * the lease had expired and the outcome was success or unknown (its use stayed counted, as
   * asked); a refund asked too late rejects with LeaseExpired. A completion that failed (keypool
   * unreachable) may be asked again.
   */
  complete(
    outcome: Outcome = 'success',
    options: { retryAfterSeconds?: number | string | null } = {},
  ): Promise<Completion | undefined> {
    if (!OUTCOMES.includes(outcome))
      return Promise.reject(new RangeError(`keypool: outcome is one of ${OUTCOMES.join(', ')}`));
    if (this.#completing) {
      if (this.#completing.outcome === outcome) return this.#completing.done;
      return Promise.reject(
        new Error(`keypool: lease ${this.leaseId} was already completed as ${this.#completing.outcome}`),
      );
    }
    const rest = outcome === 'rate_limited' ? restSeconds(options.retryAfterSeconds) : undefined;
    const report: CompletionReport = { outcome, ...(rest === undefined ? {} : { retryAfterSeconds: rest }) };
    const done = this.#pool.complete(this.leaseId, report).then(
      (completion) => {
        this.outcome = outcome;
        this.completion = completion;
        return completion;
      },
      (error: unknown) => {
        // What success and unknown ask for, a counted use, is what expiry left; a refund
        // asked too late is the caller's to know about.
        if (error instanceof LeaseExpired && (outcome === 'success' || outcome === 'unknown')) {
          this.outcome = outcome;
          return undefined;
        }
        this.#completing = undefined;
        throw error;
      },
    );
    this.#completing = { outcome, done };
    return done;
  }
}
