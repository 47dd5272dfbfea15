/** One-off migration from the old credits-based system, invoked by hand; answers with the report. */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { runMigrateEvent } from '../lib/migration/lambda.js';
import { logger } from '../lib/observability/logger.js';
import { processMigration } from '../lib/wiring.js';

export const handler = middy<unknown, unknown>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event: unknown) => runMigrateEvent(event, { ...processMigration(), logger }));
