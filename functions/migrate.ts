/** One-off migration from the old credits-based system, invoked by hand; answers with the report. */
import middy from '@middy/core';
import { runMigrateEvent } from '../lib/events/migrate.js';
import { lambdaLogging, logger } from '../lib/observability/logger.js';
import { processMigration } from '../lib/wiring-secrets.js';

export const handler = middy<unknown, unknown>()
  .use(lambdaLogging())
  .handler((event: unknown) => runMigrateEvent(event, { ...processMigration(), logger }));
