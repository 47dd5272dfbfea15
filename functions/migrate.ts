/** One-off migration from the old credits-based system, invoked by hand; answers with the report. */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoMigrationStore } from '../lib/adapters/dynamo-migration-store.js';
import { documentClient, logger } from '../lib/commons.js';
import { readConfig } from '../lib/config.js';
import { runMigrateEvent } from '../lib/migration/lambda.js';

const config = readConfig();
const dynamo = documentClient(config);
const s3 = new S3Client(config.region ? { region: config.region } : {});
const store = new DynamoMigrationStore({ client: dynamo, tableName: config.tableName });

export const handler = middy<unknown, unknown>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event: unknown) => runMigrateEvent(event, { dynamo, s3, store, logger }));
