/**
 * Starts one in-memory DynamoDB Local on a free port for the whole test run (or uses
 * KEYPOOL_DYNAMODB_ENDPOINT), and brings dist/ up to date once before any worker starts, so the
 * tests that run the real `keypool` bin and `npm start` never race to rebuild it. It bundles only
 * when a source is newer than dist/: CI's `npm ci` has just built it through `prepare`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  execFileSync(process.execPath, ['bin/build.js', '--if-stale'], { stdio: 'inherit' });
  // The run's sealing key: every process the tests start (CLI, local server) inherits the
  // variable, so they all seal and open with the same key.
  const keyDir = mkdtempSync(join(tmpdir(), 'keypool-test-key-'));
  const keyFile = join(keyDir, 'sealing-key');
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  process.env.KEYPOOL_SEALING_KEY_FILE = keyFile;
  project.provide('sealingKeyFile', keyFile);
  const removeKey = (): void => rmSync(keyDir, { recursive: true, force: true });
  const given = process.env.KEYPOOL_DYNAMODB_ENDPOINT;
  if (given) {
    await waitForDynamo(given, 10_000);
    project.provide('dynamoEndpoint', given);
    return () => Promise.resolve(removeKey());
  }
  const dynamo = await startDynamoLocal({ port: await freePort() });
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    await dynamo.stop();
    removeKey();
  };
}
