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
  it('answer 500 internal_error with no details on every data route, and log no secret', async () => {
    // Prepare
    const secret = fakeKey();
    const pool = uniqueName('p');
    const capture = captureOutput();
    const answers = [];
    try {
      // Act
      answers.push(await call(server.url, 'POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secret }] }));
      answers.push(await call(server.url, 'PUT', `/pools/${pool}`, { maxUses: 5 }));
      answers.push(await call(server.url, 'GET', '/pools'));
      answers.push(await call(server.url, 'GET', `/pools/${pool}`));
      answers.push(await call(server.url, 'GET', `/pools/${pool}/keys`));
      answers.push(await call(server.url, 'POST', `/pools/${pool}/leases`));
      answers.push(
        await call(
          server.url,
          'POST',
          `/pools/${pool}/leases/k_000000000000000000000000.0.zzzz.0123456789abcdef/complete`,
        ),
      );
      answers.push(await call(server.url, 'POST', `/pools/${pool}/keys/k_000000000000000000000000/usage`));
      answers.push(
        await call(server.url, 'PATCH', `/pools/${pool}/keys/k_000000000000000000000000`, { status: 'active' }),
      );
    } finally {
      capture.stop();
    }
    // Assess
    for (const answer of answers) {
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({ error: 'internal_error', message: 'internal error' });
    }
    expect(capture.lines()).toContain('internal error');
    expect(capture.lines()).not.toContain(secret);
  });

  it('the routes that touch no table still answer', async () => {
    // Act
    const health = await call(server.url, 'GET', '/health');
    const invalid = await call(server.url, 'POST', `/pools/${uniqueName('p')}/leases`, { maxUses: -1 });
    // Assess
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(invalid).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });
});
