/**
 * Where leases come from (a KeySource: a Pool over the HTTP API, or one of your own), and the
 * one loop that waits for a cooling key to come back within a bound the caller sets.
 */
import { NoUsableKey } from './errors.js';
import { defaultSleep, type Waiting } from './transport.js';
import type { CompletionReport, LeaseGrant, LeaseRequest } from './types.js';

/** One lease's request, with how long it may wait for a cooling key. */
export interface LeaseWait extends LeaseRequest {
  /** the most this call sleeps in total, over all its tries, seconds (0: never; default: the source's) */
  maxWaitSeconds?: number;
}

/** What withKey needs: a Pool, or keySource(...) over leases of your own. */
export interface KeySource {
  /** lease()'s default bound, and withKey's when it is given none (0 or absent: do not wait) */
  readonly maxWaitSeconds?: number;
  /** a key of the source's pool; NoUsableKey (with retryAfterSeconds when a key is cooling) when none is usable */
  lease(request?: LeaseWait): Promise<LeaseGrant>;
  /** reports the lease's outcome (default success) */
  complete(leaseId: string, report?: CompletionReport): Promise<unknown>;
}

/** The longest one wait is stretched by, so callers that saw the same key come back do not all return at once. */
export const MAX_JITTER_MS = 1_000;

/** Checks a caller's bound: a finite number of seconds >= 0 (absent: 0). */
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
export async function leaseWaiting<T>(lease: () => Promise<T>, budget: WaitBudget, waiting: Waiting = {}): Promise<T> {
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

/** Leases and completions of your own, for keySource. */
export interface KeySourceOptions extends Waiting {
  /** one try: a key, or NoUsableKey (this package's class) when the pool is dry */
  lease(request: LeaseRequest): Promise<LeaseGrant>;
  complete(leaseId: string, report: CompletionReport): Promise<unknown>;
  /** lease()'s default bound, seconds (default 0: do not wait) */
  maxWaitSeconds?: number;
}

/**
 * A KeySource over leases of your own (another transport, keypool in the same process): the
 * same waiting for a cooling key as a Pool, so withKey treats both alike.
 */
export function keySource(options: KeySourceOptions): KeySource {
  const maxWaitSeconds = checkedWait(options.maxWaitSeconds, 'keySource');
  const waiting: Waiting = {
    ...(options.sleep ? { sleep: options.sleep } : {}),
    ...(options.random ? { random: options.random } : {}),
  };
  return {
    maxWaitSeconds,
    lease: ({ maxWaitSeconds: bound, ...request } = {}) =>
      leaseWaiting(
        () => options.lease(request),
        new WaitBudget(checkedWait(bound ?? maxWaitSeconds, 'lease')),
        waiting,
      ),
    complete: (leaseId, report = {}) => options.complete(leaseId, report),
  };
}
