/** The EventBridge schedule's target: one maintenance pass over every pool, then pool metrics. */
import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { maintain, maintenanceOptions, type MaintenanceSummary } from '../lib/use-cases/maintenance/maintain.js';
import { reportMaintenance } from '../lib/observability/keypool-metrics.js';
import { lambdaLogging, logger } from '../lib/observability/logger.js';
import { metrics } from '../lib/observability/metrics.js';
import { processMaintenance } from '../lib/wiring-secrets.js';

/** Time kept back for the last balance request (10 s timeout), its write and the metrics. */
const RESERVE_MS = 15_000;

export const handler = middy<ScheduledEvent, MaintenanceSummary>()
  .use(lambdaLogging())
  .handler(async (_event: ScheduledEvent, context: Context) => {
    const { deps, settings } = processMaintenance((message, attributes) => logger.warn(message, attributes));
    const deadlineMs = Date.now() + context.getRemainingTimeInMillis() - RESERVE_MS;
    const report = await maintain(deps, maintenanceOptions(settings, { deadlineMs }));
    reportMaintenance(metrics, report);
    return report.summary;
  });
