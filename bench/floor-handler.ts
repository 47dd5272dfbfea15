/**
 * The floor for `npm run bench:bundles`: the least a keypool function could be — build a
 * DynamoDB document client at module scope and send one command per invocation.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';

const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));

/** One GetItem on the configured table. */
export const handler = async (): Promise<unknown> => {
  const out = await client.send(new GetCommand({ TableName: process.env.KEYPOOL_TABLE, Key: { keyId: 'k_floor' } }));
  return out.Item ?? null;
};
