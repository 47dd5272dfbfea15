/**
 * Starts one in-memory DynamoDB Local on a free port for the whole test run (or uses
 * KEYPOOL_DYNAMODB_ENDPOINT), and bundles dist/ once, so the tests that run the real
 * `keypool` bin and `npm start` never race to rebuild it.
 */
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { freePort, startDynamoLocal, waitForDynamo } from '../../lib/local/dynamodb-local.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The SDK's notice that its 2027 releases need Node 22 (the Lambdas run 24) is noise in test output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  execFileSync(process.execPath, ['bin/build.js'], { stdio: 'inherit' });
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
