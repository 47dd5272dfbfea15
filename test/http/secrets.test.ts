import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { call, captureOutput, startTestServer } from '../support/server.js';

let server: LocalServer;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  const table = await createTestTable('secrets');
  server = await startTestServer(table.tableName);
});

afterAll(async () => {
  await server.close();
});

describe('secrets', () => {
  it('a full cycle, errors included, never puts a secret in a log line or a non-lease answer', async () => {
    // Prepare
    const base = server.url;
    const pool = uniqueName('s');
    const secrets = [fakeKey('a'), fakeKey('b'), fakeKey('c')];
    const capture = captureOutput();
    const answers: string[] = [];
    const leases: string[] = [];
    try {
      // Act
      const imported = await call(base, 'POST', '/keys', { keys: secrets.map((apiKey) => ({ apiKey, pool })) });
      answers.push(imported.text);
      answers.push((await call(base, 'POST', '/keys', { keys: secrets.map((apiKey) => ({ apiKey, pool })) })).text);
      for (const outcome of ['success', 'failure', 'invalid_key', 'out_of_credits', 'rate_limited']) {
        const lease = await call(base, 'POST', '/leases', { pool, maxUses: 10 });
        leases.push(lease.text);
        const leaseId = (lease.body as { leaseId?: string }).leaseId ?? 'none';
        answers.push((await call(base, 'POST', `/leases/${leaseId}/complete`, { outcome })).text);
        answers.push((await call(base, 'POST', `/leases/${leaseId}/complete`, { outcome })).text);
      }
      const keyId = (imported.body as { keys: { keyId: string }[] }).keys[0]?.keyId ?? '';
      answers.push((await call(base, 'POST', `/keys/${keyId}/usage`)).text);
      answers.push((await call(base, 'PATCH', `/keys/${keyId}`, { status: 'active' })).text);
      answers.push((await call(base, 'GET', `/keys?pool=${pool}`)).text);
      // errors that carry a secret in the request
      answers.push((await call(base, 'POST', '/keys', `{"keys":[{"apiKey":"${secrets[0] ?? ''}"`)).text);
      answers.push((await call(base, 'POST', '/keys', { keys: [{ apiKey: `${secrets[1] ?? ''} x` }] })).text);
      answers.push((await call(base, 'POST', '/keys', { keys: [{ apiKey: secrets[2], [secrets[2] ?? '']: 1 }] })).text);
      answers.push((await call(base, 'POST', `/leases/${secrets[0] ?? ''}/complete`)).text);
      answers.push((await call(base, 'PATCH', `/keys/${secrets[1] ?? ''}`, { status: 'disabled' })).text);
      answers.push((await call(base, 'POST', '/leases', { pool: uniqueName('none') })).text);
    } finally {
      capture.stop();
    }
    // Assess
    const logs = capture.lines();
    expect(logs).toContain('"message":"request"');
    expect(leases.some((text) => secrets.some((s) => text.includes(s)))).toBe(true);
    for (const secret of secrets) {
      expect(logs).not.toContain(secret);
      for (const answer of answers) expect(answer).not.toContain(secret);
    }
  });
});
