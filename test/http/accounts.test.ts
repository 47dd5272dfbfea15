/**
 * Accounts over HTTP, through the real local server on DynamoDB Local: an import naming an
 * account, a PATCH setting one, GET /pools/{pool}/accounts paged, and the edge refusing what is
 * not an account name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdFor } from '../../lib/domain/keys.js';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { expectError, type KeyViewBody, poolApi } from '../support/pool-api.js';
import { call, startTestServer } from '../support/server.js';

let server: LocalServer;
let api: ReturnType<typeof poolApi>;

beforeAll(async () => {
  const table = await createTestTable('accounts-http');
  server = await startTestServer(table.tableName);
  api = poolApi(server.url);
});

afterAll(async () => {
  await server.close();
});

interface AccountPageBody {
  accounts: { account: string; keys: number; usableKeys: number; status: string; credits: number | null }[];
  cursor: string | null;
}

describe('accounts over HTTP', () => {
  it('an import names the account, a PATCH sets one, and GET /pools/{pool}/accounts pages through them with their keys counted', async () => {
    // Prepare
    const pool = uniqueName('acct');
    const secrets = [fakeKey(), fakeKey(), fakeKey()];
    const imported = await call(server.url, 'POST', `/pools/${pool}/keys`, {
      keys: [
        { apiKey: secrets[0], account: 'org-a' },
        { apiKey: secrets[1], account: 'org-a' },
        { apiKey: secrets[2] },
      ],
    });
    expect(imported.status).toBe(201);
    const views = (imported.body as { keys: KeyViewBody[] }).keys;
    expect(views.map((v) => v.account)).toEqual(['org-a', 'org-a', null]);
    // Act
    const patched = await call(server.url, 'PATCH', `/pools/${pool}/keys/${keyIdFor(secrets[2] ?? '')}`, {
      account: 'org-b',
    });
    const first = await call(server.url, 'GET', `/pools/${pool}/accounts?limit=1`);
    const cursor = (first.body as AccountPageBody).cursor;
    const second = await call(server.url, 'GET', `/pools/${pool}/accounts?limit=1&cursor=${cursor}`);
    // Assess
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ account: 'org-b', status: 'active' });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      accounts: [{ account: 'org-a', keys: 2, usableKeys: 2, credits: null, creditsCheckedAt: null, status: 'active' }],
      cursor: expect.any(String) as string,
    });
    expect((second.body as AccountPageBody).accounts).toEqual([
      { account: 'org-b', keys: 1, usableKeys: 1, credits: null, creditsCheckedAt: null, status: 'active' },
    ]);
    const listed = await api.listAll(pool);
    expect(listed.map((k) => k.account).sort()).toEqual(['org-a', 'org-a', 'org-b']);
  });

  it('refuses an account that is not a name (400, nothing stored) and an unknown pool (404)', async () => {
    // Prepare
    const pool = uniqueName('bad');
    // Act
    const hashed = await call(server.url, 'POST', `/pools/${pool}/keys`, {
      keys: [{ apiKey: fakeKey(), account: 'a#b' }],
    });
    const spaced = await call(server.url, 'PATCH', `/pools/${pool}/keys/k_000000000000000000000000`, {
      account: 'a b',
    });
    const unknown = await call(server.url, 'GET', `/pools/${uniqueName('none')}/accounts`);
    const badCursor = await call(server.url, 'GET', `/pools/${pool}/accounts?cursor=nope`);
    // Assess
    expectError(hashed, 400, 'invalid_request');
    expectError(spaced, 400, 'invalid_request');
    expectError(unknown, 404, 'pool_not_found');
    expect(badCursor.status).toBe(404);
  });
});
