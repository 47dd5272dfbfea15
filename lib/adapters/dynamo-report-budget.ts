/**
 * Report budgets over DynamoDB (ReportBudget): one counter item per pool, caller digest and
 * window, spent by one conditional UpdateItem, deleted by the table's TTL a few minutes after
 * its window. Never read before it is written.
 */
import { budgetWindow, BUDGET_WINDOW_MS, secondsToNextWindow } from '../domain/report-budget.js';
import type { BudgetSpend, ReportBudget } from '../ports/report-budget.js';
import { BUDGET_COUNT_ATTRIBUTE, BUDGET_PREFIX, TABLE, TTL_ATTRIBUTE } from '../table.js';
import { DynamoTable } from './dynamo-table.js';

/** How long after its window a budget item may stay before DynamoDB deletes it (TTL deletes lag anyway). */
const BUDGET_GRACE_SECONDS = 300;

export class DynamoReportBudget extends DynamoTable implements ReportBudget {
  async spendReport(pool: string, caller: string, nowMs: number, max: number): Promise<BudgetSpend> {
    const window = budgetWindow(nowMs);
    const result = await this.conditionalUpdate(
      'report-budget',
      {
        Key: { [TABLE.partitionKey]: `${BUDGET_PREFIX}${pool}#${caller}#${window}` },
        UpdateExpression: 'ADD #n :one SET #ttl = :ttl',
        // Invariant: at most `max` reports of one caller take effect in one pool and window,
        // however many processes count them at once: the counter is spent only below it.
        ConditionExpression: 'attribute_not_exists(#n) OR #n < :max',
        ExpressionAttributeNames: { '#n': BUDGET_COUNT_ATTRIBUTE, '#ttl': TTL_ATTRIBUTE },
        ExpressionAttributeValues: {
          ':one': 1,
          ':max': max,
          ':ttl': Math.ceil(((window + 1) * BUDGET_WINDOW_MS) / 1000) + BUDGET_GRACE_SECONDS,
        },
      },
      'updated',
    );
    return result.ok ? { spent: true } : { spent: false, retryAfterSeconds: secondsToNextWindow(nowMs) };
  }
}
