/**
 * Report budgets: a caller's negative reports and lease-less counts are counted per pool and
 * per minute (a window), and past the pool's maxClientReportsPerMinute stop taking effect. A
 * window is named by its number since the epoch, so every process counts into the same one.
 */

/** One budget window. */
export const BUDGET_WINDOW_MS = 60_000;

/** The window `nowMs` falls in. */
export function budgetWindow(nowMs: number): number {
  return Math.floor(nowMs / BUDGET_WINDOW_MS);
}

/** Whole seconds until the next window (at least 1): a refused caller's Retry-After. */
export function secondsToNextWindow(nowMs: number): number {
  return Math.max(1, Math.ceil(((budgetWindow(nowMs) + 1) * BUDGET_WINDOW_MS - nowMs) / 1000));
}
