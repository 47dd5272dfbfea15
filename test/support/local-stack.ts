/**
 * `npm start` (bin/start.js) as a separate process over the test run's DynamoDB Local and a
 * table of its own: for tests whose client is another process (the Python client), which must
 * meet the stack exactly as a user does.
 */
import { inject } from 'vitest';
import { dynamoEndpoint, uniqueName } from './dynamo.js';
import { type RunningStack, spawnStack } from './stack-process.js';

export type { RunningStack } from './stack-process.js';

/** Starts `npm start` (with `env` on top of the run's settings) and waits for "keypool is up" (or fails with what it printed). */
export function startLocalStack(timeoutMs = 60_000, env: Record<string, string> = {}): Promise<RunningStack> {
  return spawnStack(
    {
      KEYPOOL_DYNAMODB_ENDPOINT: dynamoEndpoint(),
      KEYPOOL_TABLE: uniqueName('stack'),
      KEYPOOL_SEALING_KEY_FILE: inject('sealingKeyFile'),
      ...env,
    },
    timeoutMs,
  );
}
