/** Starts one in-memory DynamoDB Local on a free port for the whole test run (or uses KEYPOOL_DYNAMODB_ENDPOINT). */
import type { TestProject } from 'vitest/node';
import { freePort, startDynamoLocal, waitForDynamo } from '../../lib/local/dynamodb-local.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.KEYPOOL_DYNAMODB_ENDPOINT;
  if (given) {
    await waitForDynamo(given, 10_000);
    project.provide('dynamoEndpoint', given);
    return () => Promise.resolve();
  }
  const dynamo = await startDynamoLocal({ port: await freePort() });
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return () => dynamo.stop();
}
