import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, scanTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { call, captureOutput, startTestServer } from '../support/server.js';

let server: LocalServer;
let table: TestTable;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  table = await createTestTable('secrets');
  server = await startTestServer(table.tableName);
});

afterAll(async () => {
  await server.close();
});

describe('secrets', () => {
  it('a full cycle under the pool routes, errors included, never puts a secret in a log line or a non-lease answer', async () => {
    // Prepare
    const base = server.url;
    const pool = uniqueName('s');
    const secrets = [fakeKey('a'), fakeKey('b'), fakeKey('c')];
    const [s0 = '', s1 = '', s2 = ''] = secrets;
    const capture = captureOutput();
    const answers: string[] = [];
    const leases: string[] = [];
    const keep = async (method: string, path: string, body?: unknown): Promise<ReturnType<typeof call>> => {
      const answer = await call(base, method, path, body);
      answers.push(answer.text);
      return answer;
    };
    try {
      // Act
      await keep('PUT', `/pools/${pool}`, { maxUses: 10, cooldownSeconds: 1 });
      const imported = await keep('POST', `/pools/${pool}/keys`, {
        keys: secrets.map((apiKey) => ({ apiKey, label: 'fixture' })),
      });
      await keep('POST', `/pools/${pool}/keys`, { keys: secrets.map((apiKey) => ({ apiKey })) });
      const reports = [
        { outcome: 'success' },
        { outcome: 'failure' },
        { outcome: 'invalid_key' },
        { outcome: 'out_of_credits' },
        { outcome: 'rate_limited', retryAfterSeconds: 1 },
      ];
      for (const report of reports) {
        const lease = await call(base, 'POST', `/pools/${pool}/leases`, { maxUses: 10 });
        leases.push(lease.text);
        const leaseId = (lease.body as { leaseId?: string }).leaseId ?? 'none';
        await keep('POST', `/pools/${pool}/leases/${leaseId}/complete`, report);
        await keep('POST', `/pools/${pool}/leases/${leaseId}/complete`, report);
      }
      const keyIds = (imported.body as { keys: { keyId: string }[] }).keys.map((k) => k.keyId);
      const keyId = keyIds[0] ?? '';
      await keep('POST', `/pools/${pool}/keys/${keyId}/usage`);
      await keep('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'active' });
      await keep('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount: 0 });
      for (const id of keyIds) await keep('PATCH', `/pools/${pool}/keys/${id}`, { status: 'active', usageCount: 0 });
      await keep('GET', `/pools/${pool}/keys`);
      await keep('GET', `/pools/${pool}/keys?status=suspect&limit=1`);
      await keep('GET', `/pools/${pool}`);
      await keep('GET', '/pools');
      // a dry pool whose keys are all at the cap: 409
      const dry = uniqueName('dry');
      await keep('PUT', `/pools/${dry}`, { maxUses: 0 });
      await keep('POST', `/pools/${dry}/keys`, { keys: [{ apiKey: fakeKey('d') }] });
      leases.push((await call(base, 'POST', `/pools/${dry}/leases`)).text);
      await keep('POST', `/pools/${dry}/leases`);
      // errors that carry a secret in the request
      await keep('POST', `/pools/${pool}/keys`, `{"keys":[{"apiKey":"${s0}"`);
      await keep('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: `${s1} x` }] });
      await keep('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: s2, [s2]: 1 }] });
      await keep('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: s0, label: 7 }], [s1]: true });
      await keep('POST', `/pools/${pool}/leases/${s0}/complete`);
      await keep('POST', `/pools/${pool}/leases`, { maxUses: s1 });
      await keep('POST', `/pools/${pool}/leases`, { [s2]: 1 });
      await keep('PATCH', `/pools/${pool}/keys/${s1}`, { status: 'disabled' });
      await keep('PATCH', `/pools/${pool}/keys/${s1}`, { usageCount: 0 });
      await keep('PATCH', `/pools/${pool}/keys/${keyId}`, { status: s2 });
      await keep('POST', `/pools/${pool}/keys/${s2}/usage`);
      await keep('PUT', `/pools/${pool}`, { provider: s0 });
      await keep('GET', `/pools/${pool}/keys?cursor=${s1}`);
      await keep('GET', `/pools/${pool}/keys?status=${s2}`);
      await keep('GET', `/pools/${pool}/keys?${s0}=1`);
      await keep('POST', `/pools/${pool}/leases/${keyId}.0.zzzz.0123456789abcdef/complete`, { outcome: s1 });
      await keep('POST', `/pools/${uniqueName('none')}/leases`);
    } finally {
      capture.stop();
    }
    // Assess
    const logs = capture.lines();
    expect(logs).toContain('"message":"request"');
    expect(leases.some((text) => secrets.some((s) => text.includes(s)))).toBe(true);
    expect(answers.length).toBeGreaterThan(30);
    for (const secret of secrets) {
      expect(logs).not.toContain(secret);
      for (const answer of answers) expect(answer).not.toContain(secret);
    }
    // Nor the sealed secrets: no ciphertext (or a 40-character run of one) in a log line or any answer, leases included.
    const items = await scanTable(table.store.client, table.tableName);
    const ciphertexts = items.filter((item) => item.pool === pool).map((item) => String(item.sealedKey));
    expect(ciphertexts).toHaveLength(secrets.length);
    for (const ciphertext of ciphertexts) {
      for (const part of [ciphertext, ciphertext.slice(0, 40), ciphertext.slice(-40), ciphertext.slice(100, 140)]) {
        expect(logs).not.toContain(part);
        for (const answer of [...answers, ...leases]) expect(answer).not.toContain(part);
      }
    }
  });

  it('a secret sent where a pool name belongs is not echoed in the answer or the log', async () => {
    // Prepare: a fake key is 41 letters, digits and "-": it has the shape of a pool name.
    const secret = fakeKey('p');
    const capture = captureOutput();
    const answers: string[] = [];
    try {
      // Act: a client that passed its key instead of its pool, on every route a client calls.
      answers.push((await call(server.url, 'POST', `/pools/${secret}/leases`)).text);
      answers.push(
        (
          await call(
            server.url,
            'POST',
            `/pools/${secret}/leases/k_000000000000000000000000.0.zzzz.0123456789abcdef/complete`,
          )
        ).text,
      );
      answers.push((await call(server.url, 'POST', `/pools/${secret}/keys/k_000000000000000000000000/usage`)).text);
      answers.push((await call(server.url, 'GET', `/pools/${secret}`)).text);
    } finally {
      capture.stop();
    }
    // Assess
    expect(answers.every((text) => text.includes('pool_not_found'))).toBe(true);
    expect(capture.lines()).not.toContain(secret);
    for (const answer of answers) expect(answer).not.toContain(secret);
  });

  it('a secret in a path no route takes is not echoed in the 404', async () => {
    // Prepare
    const secret = fakeKey('path');
    // Act: a client that put its key where no route has a parameter (a lease id without /complete).
    const answer = await call(server.url, 'POST', `/pools/${uniqueName('p')}/leases/${secret}`);
    // Assess
    expect(answer.status).toBe(404);
    expect((answer.body as { error: string }).error).toBe('not_found');
    expect(answer.text).not.toContain(secret);
  });
});
