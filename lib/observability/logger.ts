/**
 * The process's structured logger (Powertools Logger, JSON lines). Every module that logs
 * imports it from here; nothing here touches AWS, so the HTTP layer can log without bundling
 * a client it does not use.
 */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keypool' });
