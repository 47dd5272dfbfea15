/**
 * Issue 24's "why is the pool dry" and "retire what is no longer wanted" over HTTP, through
 * the real local server on DynamoDB Local: a `no_usable_key` answer counts the pool's unusable
 * keys by why; DELETE retires a key (its secret removed from the table, its record kept) or a
 * pool; an import of a retired key reports it, or revives it with `revive=true`.
 * Each test isolates itself by pool name; the file has one table.
 */
import { GetCommand } from '../../lib/adapters/dynamo-wire.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdFor } from '../../lib/domain/keys.js';
import { type LocalServer, startServer } from '../../lib/local/server.js';
import { POOL_DELETION_RESERVE_MS } from '../../lib/use-cases/retirement.js';
import { loadHandlers } from '../../bin/local-handlers.js';
import { createTestTable, type TestTable, uniqueName } from '../support/dynamo.js';
import { expectError, type KeyViewBody, poolApi } from '../support/pool-api.js';
import { plainKey } from '../support/seed.js';
import { call, startTestServer } from '../support/server.js';

let server: LocalServer;
let table: TestTable;
let api: ReturnType<typeof poolApi>;

beforeAll(async () => {
  table = await createTestTable('retire');
  server = await startTestServer(table.tableName);
  api = poolApi(server.url);
});

afterAll(async () => {
  await server.close();
});

/** The key's item as the table holds it, every attribute. */
async function item(keyId: string): Promise<Record<string, unknown> | undefined> {
  const out = await table.store.client.send(
    new GetCommand({ TableName: table.tableName, Key: { keyId }, ConsistentRead: true }),
  );
  return out.Item;
}

/** A new pool with `count` keys; answers its name, key ids and secrets. */
async function poolWith(prefix: string, count: number, settings: Record<string, unknown> = {}) {
  const pool = uniqueName(prefix);
  await api.putPool(pool, settings);
  if (count === 0) return { pool, ids: [], secrets: [] };
  const { keys, secrets } = await api.importKeys(pool, count);
  return { pool, ids: keys.map((k) => k.keyId), secrets };
}

interface DryBody {
  unusable: Record<string, number>;
  countedAt: string;
  nextReturnAt?: string;
}

describe('409 no_usable_key says why the pool is dry', () => {
  it('counts the keys not usable by why (over the cap, cooling with its return, disabled; retired not at all) and points to keypool status', async () => {
    // Prepare
    const { pool, ids } = await poolWith('dry', 4, { maxUses: 0 });
    const [, cooling, disabled, retired] = ids;
    await api.complete(pool, (await api.grant(pool)).leaseId, { outcome: 'success' });
    const rested = await api.grant(pool);
    await api.complete(pool, rested.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 120 });
    await api.call('PATCH', `/pools/${pool}/keys/${disabled ?? ''}`, { status: 'disabled' });
    await api.call('DELETE', `/pools/${pool}/keys/${retired ?? ''}`);
    const before = Date.now();
    // Act
    const answer = await api.countedRefusal(pool);
    // Assess
    const body = expectError(answer, 409, 'no_usable_key') as unknown as DryBody & { message: string };
    expect(rested.keyId).toBe(cooling);
    expect(body.unusable).toEqual({
      overCap: 1,
      cooling: 1,
      suspect: 0,
      exhausted: 0,
      disabled: 1,
      undecryptable: 0,
      accountExhausted: 0,
    });
    expect(Date.parse(body.countedAt)).toBeGreaterThanOrEqual(before - 1_000);
    expect(Date.parse(body.nextReturnAt ?? '')).toBeGreaterThan(before + 100_000);
    expect(body.message).toContain('keypool status');
    expect(body.message).toContain('1 over the cap, 1 cooling, 1 disabled');
    expect(answer.headers.get('retry-after')).not.toBeNull();
  });

  it('counts at most once a minute: a change meanwhile shows in the next minute, not in the next refusal', async () => {
    // Prepare
    const { pool, ids } = await poolWith('stale', 1);
    await api.call('PATCH', `/pools/${pool}/keys/${ids[0] ?? ''}`, { status: 'disabled' });
    const first = expectError(await api.countedRefusal(pool), 409, 'no_usable_key') as unknown as DryBody;
    await api.importKeys(pool, 1);
    await api.call('PATCH', `/pools/${pool}/keys/${(await api.grant(pool)).keyId}`, { status: 'disabled' });
    // Act
    const second = expectError(await api.lease(pool), 409, 'no_usable_key') as unknown as DryBody;
    // Assess
    expect(second.countedAt).toBe(first.countedAt);
    expect(second.unusable.disabled).toBe(1);
  });
});

describe('DELETE /pools/{pool}/keys/{keyId} retires a key', () => {
  it('200 with the key retired by the operator; never leased again; its ciphertext and index entry gone, its record listed', async () => {
    // Prepare
    const { pool, ids } = await poolWith('retire', 1);
    const keyId = ids[0] ?? '';
    await api.complete(pool, (await api.grant(pool)).leaseId, { outcome: 'success' });
    // Act
    const answer = await api.call('DELETE', `/pools/${pool}/keys/${keyId}`);
    const again = await api.call('DELETE', `/pools/${pool}/keys/${keyId}`);
    const lease = await api.lease(pool);
    // Assess
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({
      keyId,
      status: 'retired',
      statusBy: 'operator',
      statusReason: 'retired',
      usageCount: 1,
      maskedKey: expect.stringMatching(/^sk-\.\.\./) as string,
    });
    expect(again).toMatchObject({
      status: 200,
      body: { statusAt: (answer.body as KeyViewBody & { statusAt: string }).statusAt },
    });
    expectError(lease, 409, 'no_usable_key');
    const stored = await item(keyId);
    expect(stored).toMatchObject({ status: 'retired', usageCount: 1 });
    expect(stored).not.toHaveProperty('sealedKey');
    expect(stored).not.toHaveProperty('apiKey');
    expect(stored).not.toHaveProperty('upk');
    expect(await api.listAll(pool, '&status=retired')).toMatchObject([{ keyId, status: 'retired' }]);
  });

  it('a status change of a retired key is refused: it stays retired, out of the index, and revivable by an import', async () => {
    // Prepare
    const { pool, ids, secrets } = await poolWith('stays', 1);
    const keyId = ids[0] ?? '';
    const retired = await api.call('DELETE', `/pools/${pool}/keys/${keyId}`);
    // Act
    const enable = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'active' });
    const disable = await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { status: 'disabled' });
    const stored = await item(keyId);
    const imported = await api.call('POST', `/pools/${pool}/keys`, { keys: secrets.map((apiKey) => ({ apiKey })) });
    // Assess
    expect(expectError(enable, 400, 'invalid_request').message).toContain('revive');
    expectError(disable, 400, 'invalid_request');
    expect(stored).toMatchObject({
      status: 'retired',
      statusBy: 'operator',
      statusReason: 'retired',
      statusAt: (retired.body as KeyViewBody & { statusAt: string }).statusAt,
    });
    expect(stored).not.toHaveProperty('upk');
    expect(imported).toMatchObject({ status: 201, body: { retired: 1, keys: [{ keyId, status: 'retired' }] } });
  });

  it('409 key_not_sealed for a key still in plain text (from before sealing): nothing changes until a reseal', async () => {
    // Prepare
    const pool = uniqueName('plain');
    await api.putPool(pool);
    const secret = 'sk-test-plain-retire-0000000000';
    const keyId = keyIdFor(secret);
    await table.store.insert(plainKey(pool, secret));
    // Act
    const answer = await api.call('DELETE', `/pools/${pool}/keys/${keyId}`);
    const withPool = await api.call('DELETE', `/pools/${pool}?retireKeys=true`);
    // Assess
    expect(expectError(answer, 409, 'key_not_sealed').message).toContain('keypool reseal');
    expectError(withPool, 409, 'key_not_sealed');
    expect(await item(keyId)).toMatchObject({ status: 'active', apiKey: secret });
    expect((await api.call('GET', `/pools/${pool}`)).status).toBe(200);
  });

  it('404 for a key of another pool or an unknown one', async () => {
    // Prepare
    const { ids } = await poolWith('mine', 1);
    const { pool: other } = await poolWith('other', 0);
    // Act
    const elsewhere = await api.call('DELETE', `/pools/${other}/keys/${ids[0] ?? ''}`);
    const unknown = await api.call('DELETE', `/pools/${other}/keys/k_000000000000000000000000`);
    // Assess
    expectError(elsewhere, 404, 'key_not_found');
    expectError(unknown, 404, 'key_not_found');
  });

  it('an open lease of a retired key still completes: success counts, a report changes no status', async () => {
    // Prepare
    const { pool, ids } = await poolWith('open', 1, { maxUses: 5 });
    const first = await api.grant(pool);
    const second = await api.grant(pool);
    await api.call('DELETE', `/pools/${pool}/keys/${ids[0] ?? ''}`);
    // Act
    const success = await api.complete(pool, first.leaseId, { outcome: 'success' });
    const report = await api.complete(pool, second.leaseId, { outcome: 'rate_limited' });
    // Assess
    expect(success).toMatchObject({ status: 200, body: { keyId: ids[0], usageCount: 2, status: 'retired' } });
    expect(report).toMatchObject({ status: 200, body: { keyId: ids[0], usageCount: 1, status: 'retired' } });
  });
});

describe('importing a retired key', () => {
  it('reports it retired and stores nothing; with revive=true it is sealed anew, active, its count kept, and leased', async () => {
    // Prepare
    const { pool, ids, secrets } = await poolWith('again', 1);
    const keyId = ids[0] ?? '';
    await api.complete(pool, (await api.grant(pool)).leaseId, { outcome: 'success' });
    await api.call('DELETE', `/pools/${pool}/keys/${keyId}`);
    const body = { keys: secrets.map((apiKey) => ({ apiKey })) };
    // Act
    const plain = await api.call('POST', `/pools/${pool}/keys`, body);
    const afterPlain = await item(keyId);
    const revived = await api.call('POST', `/pools/${pool}/keys?revive=true`, body);
    const grant = await api.grant(pool);
    // Assess
    expect(plain).toMatchObject({
      status: 201,
      body: { imported: 0, duplicates: 0, retired: 1, revived: 0, keys: [{ keyId, status: 'retired' }] },
    });
    expect(afterPlain).not.toHaveProperty('sealedKey');
    expect(revived).toMatchObject({
      status: 201,
      body: { imported: 0, duplicates: 0, retired: 0, revived: 1, keys: [{ keyId, status: 'active', usageCount: 1 }] },
    });
    expect(grant).toMatchObject({ keyId, apiKey: secrets[0], usageCount: 1 });
  });

  it('400 for a revive flag other than true or false', async () => {
    // Act
    const answer = await api.call('POST', `/pools/${uniqueName('flag')}/keys?revive=yes`, {
      keys: [{ apiKey: 'sk-test-0000000000000000000000' }],
    });
    // Assess
    expectError(answer, 400, 'invalid_request');
  });
});

describe('DELETE /pools/{pool}', () => {
  it('409 pool_not_empty while it holds keys not retired, and nothing changes', async () => {
    // Prepare
    const { pool, ids } = await poolWith('full', 2);
    // Act
    const answer = await api.call('DELETE', `/pools/${pool}`);
    // Assess
    const body = expectError(answer, 409, 'pool_not_empty');
    expect(body.message).toContain('2 key(s)');
    expect(body.message).toContain('retireKeys=true');
    expect((await api.call('GET', `/pools/${pool}`)).status).toBe(200);
    expect(ids).toContain((await api.grant(pool)).keyId);
  });

  it('with retireKeys=true retires every key, then deletes the pool: leases are pool_not_found, the records stay', async () => {
    // Prepare
    const { pool, ids } = await poolWith('gone', 3);
    await api.call('DELETE', `/pools/${pool}/keys/${ids[0] ?? ''}`);
    // Act
    const answer = await api.call('DELETE', `/pools/${pool}?retireKeys=true`);
    const lease = await api.lease(pool);
    const read = await api.call('GET', `/pools/${pool}`);
    // Assess
    expect(answer).toMatchObject({ status: 200, body: { pool, deleted: true, retiredKeys: 2 } });
    expectError(lease, 404, 'pool_not_found');
    expectError(read, 404, 'pool_not_found');
    for (const keyId of ids) {
      const stored = await item(keyId);
      expect(stored).toMatchObject({ status: 'retired', statusBy: 'operator', pool });
      expect(stored).not.toHaveProperty('sealedKey');
    }
    expect((await item(ids[1] ?? ''))?.statusReason).toBe('pool_deleted');
  });

  it('deletes a pool with no key, or only retired ones, without the flag; 404 for one that does not exist', async () => {
    // Prepare
    const { pool: empty } = await poolWith('empty', 0);
    const { pool: retiredOnly, ids } = await poolWith('retired', 1);
    await api.call('DELETE', `/pools/${retiredOnly}/keys/${ids[0] ?? ''}`);
    // Act
    const first = await api.call('DELETE', `/pools/${empty}`);
    const second = await api.call('DELETE', `/pools/${retiredOnly}`);
    const missing = await api.call('DELETE', `/pools/${empty}`);
    const badFlag = await api.call('DELETE', `/pools/${retiredOnly}?retireKeys=1`);
    // Assess
    expect(first).toMatchObject({ status: 200, body: { pool: empty, deleted: true, retiredKeys: 0 } });
    expect(second).toMatchObject({ status: 200, body: { pool: retiredOnly, deleted: true, retiredKeys: 0 } });
    expectError(missing, 404, 'pool_not_found');
    expectError(badFlag, 400, 'invalid_request');
  });
});

describe('DELETE /pools/{pool}?retireKeys=true within the time the function has', () => {
  it('answers 202 with every key remaining and none tried when its time has run out before it starts, then 200 once a call has the time', async () => {
    // Prepare: the keys function told it has only its reserve left, so each call's deadline has passed as it starts.
    const handlers = await loadHandlers();
    const short = await startServer(
      {
        ...handlers,
        keys: (event, context) =>
          handlers.keys(event, { ...context, getRemainingTimeInMillis: () => POOL_DELETION_RESERVE_MS }),
      },
      0,
    );
    const { pool, ids } = await poolWith('bounded', 12);
    try {
      // Act
      const first = await call(short.url, 'DELETE', `/pools/${pool}?retireKeys=true`);
      const second = await call(short.url, 'DELETE', `/pools/${pool}?retireKeys=true`);
      const pending = await api.call('GET', `/pools/${pool}`);
      const inTime = await api.call('DELETE', `/pools/${pool}?retireKeys=true`);
      const after = await api.call('DELETE', `/pools/${pool}?retireKeys=true`);
      // Assess: a call past its deadline starts no retirement, and says what remains.
      expect(first).toMatchObject({ status: 202, body: { pool, deleted: false, retiredKeys: 0, remainingKeys: 12 } });
      expect(second.body).toEqual(first.body);
      expect(pending.status).toBe(200);
      expect(inTime).toMatchObject({ status: 200, body: { pool, deleted: true, retiredKeys: 12 } });
      expect(inTime.body).toEqual({ pool, deleted: true, retiredKeys: 12 });
      expectError(after, 404, 'pool_not_found');
      for (const keyId of ids) expect((await item(keyId))?.status).toBe('retired');
    } finally {
      await short.close();
    }
  });
});
