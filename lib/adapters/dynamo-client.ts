/**
 * The DynamoDB clients keypool talks through. Built by the wiring (lib/wiring.ts); the local
 * stack and the tests use the same factory so every client agrees on credentials.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoCalls, DynamoWire } from './dynamo-wire.js';

/**
 * Credentials for DynamoDB Local, which accepts any but only letters and digits in the access
 * key (a hyphen is refused as an unrecognized client). With a shared database any pair sees
 * the same tables.
 */
export const LOCAL_CREDENTIALS = { accessKeyId: 'keypoollocal', secretAccessKey: 'keypoollocal' } as const;

export interface DynamoEndpoint {
  /** an endpoint override (DynamoDB Local); undefined means AWS */
  endpoint: string | undefined;
  region: string | undefined;
}

/** Where a client sends and as whom: DynamoDB Local with fixed dummy credentials, or AWS with the default chain. */
function clientOptions(where: DynamoEndpoint): {
  endpoint?: string;
  region?: string;
  credentials?: typeof LOCAL_CREDENTIALS;
} {
  if (where.endpoint !== undefined)
    return { endpoint: where.endpoint, region: where.region ?? 'us-east-1', credentials: LOCAL_CREDENTIALS };
  return where.region ? { region: where.region } : {};
}

/**
 * The SDK's low-level client, for what only the local stack and the tools do (creating,
 * describing and listing tables) and the migration's scan of a legacy table.
 */
export function dynamoClient(where: DynamoEndpoint): DynamoDBClient {
  return new DynamoDBClient({ ...clientOptions(where), maxAttempts: 3 });
}

/** keypool's own client (dynamo-wire.ts) for items: plain JavaScript values in and out, undefined fields dropped. */
export function documentClient(where: DynamoEndpoint): DynamoCalls {
  return new DynamoWire(clientOptions(where));
}
