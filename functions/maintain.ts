/** The EventBridge schedule's target: one maintenance pass over every pool, then pool metrics. */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { logger } from '../lib/commons.js';
import type { MaintenanceSummary } from '../lib/maintenance/maintain.js';
import { runScheduledMaintenance } from '../lib/maintenance/run.js';

/** Time kept back for the last balance request (10 s timeout), its write and the metrics. */
const RESERVE_MS = 15_000;

export const handler = middy<ScheduledEvent, MaintenanceSummary>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (_event: ScheduledEvent, context: Context) => {
    const report = await runScheduledMaintenance(Date.now() + context.getRemainingTimeInMillis() - RESERVE_MS);
    return report.summary;
  });
