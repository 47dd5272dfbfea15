/**
 * The process's structured logger (Powertools Logger, JSON lines). Every module that logs
 * imports it from here; nothing here touches AWS, so the HTTP layer can log without bundling
 * a client it does not use.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { redact } from '../shared/redact.js';

/** Every string a log line holds passes redact(): a secret never reaches the log, whoever wrote it. */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keypool',
  jsonReplacerFn: (_key: string, value: unknown) => (typeof value === 'string' ? redact(value) : value),
});

/**
 * The middy middleware every entry point logs through: the Lambda context on each line, keys
 * reset per invocation, and the event never logged — pinned off, whatever
 * POWERTOOLS_LOGGER_LOG_EVENT says, because an event holds request bodies and those hold secrets.
 */
export function lambdaLogging(): ReturnType<typeof injectLambdaContext> {
  return injectLambdaContext(logger, { resetKeys: true, logEvent: false });
}
