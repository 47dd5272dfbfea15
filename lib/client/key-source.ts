/**
 * Where leases come from: a KeypoolClient over the HTTP API or, inside the account, a Broker
 * bound to one pool (brokerKeySource). A source serves one pool, as an application is granted
 * one pool's client policy (keypool-client-<pool>). Both can wait for a cooling key to come
 * back, up to a bound the caller sets, through the one loop here (leaseWaiting).
 */
import { NoUsableKey } from '../domain/errors.js';
import type { CompletionReport, CompletionResult, LeaseGrant, LeaseRequest } from '../domain/types.js';

/** How long one call may wait for a cooling key; absent: the source's own default. */
export interface LeaseWait {
  /** the most this call sleeps in total, over all its tries, seconds (0: never) */
  maxWaitSeconds?: number;
}

/** What withKey needs: a KeypoolClient (HTTP API) or brokerKeySource(broker, pool). */
export interface KeySource {
  /** lease()'s default bound, and withKey's when it is given none (0 or absent: do not wait) */
  readonly maxWaitSeconds?: number;
  /** a key of the source's pool; NoUsableKey (with retryAfterSeconds when a key is cooling) when none is usable */
  lease(request?: LeaseRequest, wait?: LeaseWait): Promise<LeaseGrant>;
  /** reports the lease's outcome (default success) */
  complete(leaseId: string, report?: CompletionReport): Promise<unknown>;
}

export interface Waiting {
  /** default: setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** a number in [0, 1) for the jitter (default Math.random) */
  random?: () => number;
}

/** The longest one wait is stretched by, so callers that saw the same key come back do not all return at once. */
export const MAX_JITTER_MS = 1_000;

/** Waits `ms` on the real clock (options let tests pass their own). */
export const defaultSleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Checks a caller's bound: a finite number of seconds >= 0. */
export function checkedWait(seconds: number | undefined, where: string): number {
  if (seconds === undefined) return 0;
  if (!Number.isFinite(seconds) || seconds < 0)
    throw new RangeError(`${where}: maxWaitSeconds is a number of seconds >= 0`);
  return seconds;
}

/** A budget of sleep shared by several leases (withKey's attempts): what one spends, the next no longer has. */
export class WaitBudget {
  private leftMs: number;

  constructor(maxWaitSeconds: number) {
    this.leftMs = maxWaitSeconds * 1000;
  }

  get remainingMs(): number {
    return this.leftMs;
  }

  spend(ms: number): void {
    this.leftMs = Math.max(0, this.leftMs - ms);
  }
}

/**
 * Calls `lease` until it grants a key. When it throws NoUsableKey with a retryAfterSeconds the
 * budget still covers, sleeps that long plus a small jitter (10 % of the wait, at most
 * MAX_JITTER_MS, cut to what the budget has left) and leases again; the sleeps of all tries
 * together never exceed the budget. Any other error, a NoUsableKey without retryAfterSeconds
 * (no key is cooling: waiting would not help), or one whose wait is past the budget is thrown
 * as it is, so the caller still sees when a key comes back.
 */
export async function leaseWaiting(
  lease: () => Promise<LeaseGrant>,
  budget: WaitBudget,
  waiting: Waiting = {},
): Promise<LeaseGrant> {
  const sleep = waiting.sleep ?? defaultSleep;
  const random = waiting.random ?? Math.random;
  for (;;) {
    try {
      return await lease();
    } catch (error) {
      if (!(error instanceof NoUsableKey) || error.retryAfterSeconds === undefined) throw error;
      // A cooldown ends at least a second away (the API rounds up); never spin on a smaller number.
      const waitMs = Math.max(1, error.retryAfterSeconds) * 1000;
      if (waitMs > budget.remainingMs) throw error;
      const sleepMs = Math.min(budget.remainingMs, waitMs + random() * Math.min(MAX_JITTER_MS, waitMs / 10));
      budget.spend(sleepMs);
      await sleep(sleepMs);
    }
  }
}

/** What brokerKeySource needs of a Broker (or of Leasing): the pool-scoped client use cases. */
export interface PoolLeasing {
  lease(pool: string, request?: LeaseRequest): Promise<LeaseGrant>;
  complete(pool: string, leaseId: string, report?: CompletionReport): Promise<CompletionResult>;
}

export interface BrokerKeySourceOptions extends Waiting {
  /** lease()'s default bound, seconds (default 0: do not wait) */
  maxWaitSeconds?: number;
}

/**
 * A Broker in the same account as a KeySource for one pool: the same leases, errors and
 * waiting as a KeypoolClient for that pool, without HTTP.
 */
export function brokerKeySource(
  broker: PoolLeasing,
  pool: string,
  options: BrokerKeySourceOptions = {},
): KeySource & { readonly pool: string } {
  const maxWaitSeconds = checkedWait(options.maxWaitSeconds, 'brokerKeySource');
  return {
    pool,
    maxWaitSeconds,
    lease: (request = {}, wait = {}) =>
      leaseWaiting(
        () => broker.lease(pool, request),
        new WaitBudget(checkedWait(wait.maxWaitSeconds ?? maxWaitSeconds, 'lease')),
        options,
      ),
    complete: (leaseId, report = {}) => broker.complete(pool, leaseId, report),
  };
}
