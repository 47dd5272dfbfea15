import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { fakeKey, uniqueName } from '../support/dynamo.js';
import { call, captureOutput, startTestServer } from '../support/server.js';

let server: LocalServer;

beforeAll(async () => {
  // A table that does not exist: every data route fails inside DynamoDB.
  server = await startTestServer(uniqueName('missing'));
});

afterAll(async () => {
  await server.close();
});

describe('internal errors', () => {
  it('answer 500 internal_error with no details, and log no secret', async () => {
    // Prepare
    const secret = fakeKey();
    const capture = captureOutput();
    let answer;
    try {
      // Act
      answer = await call(server.url, 'POST', '/keys', { keys: [{ apiKey: secret }] });
    } finally {
      capture.stop();
    }
    // Assess
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({ error: 'internal_error', message: 'internal error' });
    expect(capture.lines()).toContain('internal error');
    expect(capture.lines()).not.toContain(secret);
  });
});
