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

/**
 * The SDK's low-level client, for what only the local stack and the tools do (creating,
 * describing and listing tables): DynamoDB Local with fixed dummy credentials, or AWS with the
 * default chain.
 */
export function dynamoClient(where: DynamoEndpoint): DynamoDBClient {
  const local = where.endpoint !== undefined;
  return new DynamoDBClient({
    ...(local
      ? { endpoint: where.endpoint, region: where.region ?? 'us-east-1', credentials: LOCAL_CREDENTIALS }
      : where.region
        ? { region: where.region }
        : {}),
    maxAttempts: 3,
  });
}

/** keypool's own client (dynamo-wire.ts) for items: plain JavaScript values in and out, undefined fields dropped. */
export function documentClient(where: DynamoEndpoint): DynamoCalls {
  const local = where.endpoint !== undefined;
  return new DynamoWire(
    local
      ? { endpoint: where.endpoint, region: where.region ?? 'us-east-1', credentials: LOCAL_CREDENTIALS }
      : where.region
        ? { region: where.region }
        : {},
  );
}
