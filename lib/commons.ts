/**
 * Shared clients and Powertools instances, built once per process (per Lambda container).
 * Entry points import from here; nothing else reads the environment.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoKeyStore } from './adapters/dynamo-key-store.js';
import { type Config, LOCAL_CREDENTIALS, readConfig } from './config.js';
import { Broker } from './domain/broker.js';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keypool' });

/** A document client for the configured endpoint: the local stack gets fixed dummy credentials. */
export function documentClient(config: Pick<Config, 'endpoint' | 'region'>): DynamoDBDocumentClient {
  const local = config.endpoint !== undefined;
  const client = new DynamoDBClient({
    ...(local
      ? {
          endpoint: config.endpoint,
          region: config.region ?? 'us-east-1',
          credentials: LOCAL_CREDENTIALS,
        }
      : config.region
        ? { region: config.region }
        : {}),
    maxAttempts: 3,
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

let shared: { config: Config; broker: Broker } | undefined;

/** The process's broker over the configured table, built on first use. */
export function broker(): Broker {
  shared ??= (() => {
    const config = readConfig();
    const store = new DynamoKeyStore({ client: documentClient(config), tableName: config.tableName });
    return { config, broker: new Broker({ store, cooldownSeconds: config.cooldownSeconds }) };
  })();
  return shared.broker;
}
