/**
 * A caller's report budget (lib/domain/report-budget.ts): negative reports and lease-less
 * counts per pool, caller and minute. The DynamoDB adapter keeps one counter item per window,
 * spent by one conditional write (lib/adapters/dynamo-report-budget.ts).
 */

export type BudgetSpend = { spent: true } | { spent: false; retryAfterSeconds: number };

export interface ReportBudget {
  /**
   * Spends one report of `caller` (a callerDigest) in `pool` in the window of `nowMs`, in one
   * conditional write that refuses once `max` are spent; refused, it says how long until the
   * next window.
   */
  spendReport(pool: string, caller: string, nowMs: number, max: number): Promise<BudgetSpend>;
}
