/**
 * Sealed secrets as the table holds them, on DynamoDB Local through the real local server (HTTP)
 * and the real `keypool` bin (CLI): after every path that writes a key, the raw items hold no
 * secret anywhere and only ciphertexts that open for their own item; swapped ciphertexts make
 * both keys undecryptable (shown, never leased, refunded, logged without secrets), and
 * maintenance marks such keys without asking the provider; a key still stored in plain text
 * (from before sealing) is never leased until `keypool reseal` seals it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamoCalls, PutCommand, ScanCommand, UpdateCommand } from '../../lib/adapters/dynamo-wire.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectSealed } from '../../lib/adapters/esdk-sealer.js';
import { toKeyItem } from '../../lib/adapters/key-item.js';
import { keyIdFor, maskKey } from '../../lib/domain/keys.js';
import { SecretUndecryptable } from '../../lib/domain/errors.js';
import type { LocalServer } from '../../lib/local/server.js';
import { type CliRun, runKeypool } from '../support/cli.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { expectError, type KeyViewBody, type LeaseGrantBody, poolApi } from '../support/pool-api.js';
import { testSealer } from '../support/sealing.js';
import { captureOutput, startTestServer } from '../support/server.js';

let table: TestTable;
let client: DynamoCalls;
let server: LocalServer;
let provider: FakeProvider;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'keypool-sealed-'));

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  table = await createTestTable('sealed');
  client = table.store.client;
  server = await startTestServer(table.tableName);
  provider = await startFakeProvider();
  env = {
    KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint,
    KEYPOOL_TABLE: table.tableName,
    STABILITY_API_BASE_URL: provider.url,
    KEYPOOL_BALANCE_RATE: '10',
  };
});

afterAll(async () => {
  await server.close();
  await provider.close();
});

/** Runs keypool on the test table; asserts exit 0 unless told otherwise. */
async function keypool(args: string[], stdin?: string, code = 0): Promise<CliRun> {
  const run = await runKeypool(args, env, stdin);
  expect(run.code, `keypool ${args.join(' ')}: ${run.stderr}`).toBe(code);
  return run;
}

/** Every item of the table, pool and idempotency records included (consistent, all pages). */
async function rawItems(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: table.tableName, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The key items of one pool (keyId `k_...`). */
async function keyItems(pool: string): Promise<Record<string, unknown>[]> {
  return (await rawItems()).filter((item) => String(item.keyId).startsWith('k_') && item.pool === pool);
}

/** Every attribute name and every text value of a value, at any depth; binary values as text and as base64. */
function texts(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (typeof value === 'number' || typeof value === 'bigint') into.push(String(value));
  else if (value instanceof Uint8Array)
    into.push(Buffer.from(value).toString('latin1'), Buffer.from(value).toString('base64'));
  else if (value instanceof Set) for (const v of value) texts(v, into);
  else if (Array.isArray(value)) for (const v of value) texts(v, into);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      into.push(k);
      texts(v, into);
    }
  }
  return into;
}

/** Each run of `length` characters of a secret: finding one in the table means the secret leaked in part. */
function windows(secret: string, length = 12): string[] {
  return Array.from({ length: secret.length - length + 1 }, (_, i) => secret.slice(i, i + length));
}

/** What a table holds of these secrets, in any attribute, at any depth, and inside any base64 ciphertext. */
function leaks(items: Record<string, unknown>[], secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const item of items) {
    const all = texts(item);
    // A sealed value is base64: what it holds in the clear (its header: context, key names) too.
    for (const text of [...all])
      if (/^[A-Za-z0-9+/]{40,}={0,2}$/.test(text)) all.push(Buffer.from(text, 'base64').toString('latin1'));
    for (const secret of secrets) {
      for (const part of windows(secret))
        if (all.some((text) => text.includes(part))) found.push(`${String(item.keyId)}: ${part}`);
    }
  }
  return found;
}

/** Writes a key item as keypool wrote them before sealing: the secret in `apiKey`, no `sealedKey`. */
async function putPlainKey(
  pool: string,
  secret: string,
  options: { createdAt?: string; withMask?: boolean } = {},
): Promise<string> {
  const keyId = keyIdFor(secret);
  const createdAt = options.createdAt ?? '2025-01-01T00:00:00.000Z';
  const item = toKeyItem({
    keyId,
    pool,
    secret,
    sealed: false,
    maskedKey: maskKey(secret),
    usageCount: 0,
    status: 'active',
    createdAt,
    lastUsedAt: null,
    slots: {},
  });
  if (options.withMask === false) delete item.maskedKey;
  expect(item).toHaveProperty('apiKey', secret);
  expect(item).not.toHaveProperty('sealedKey');
  await client.send(new PutCommand({ TableName: table.tableName, Item: item }));
  return keyId;
}

/** Swaps two items' sealedKey values in the table, as anyone with write access could. */
async function swapCiphertexts(a: string, b: string): Promise<[string, string]> {
  const items = await rawItems();
  const sealedOf = (keyId: string): string => String(items.find((item) => item.keyId === keyId)?.sealedKey);
  const [first, second] = [sealedOf(a), sealedOf(b)];
  for (const [keyId, value] of [
    [a, second],
    [b, first],
  ] as const) {
    await client.send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { keyId },
        UpdateExpression: 'SET sealedKey = :v',
        ExpressionAttributeValues: { ':v': value },
      }),
    );
  }
  return [first, second];
}

describe('the raw table after every path that writes a key', () => {
  it('holds no secret in any attribute, only sealedKey (never apiKey), each opening to its secret for its own pool and key id only', async () => {
    // Prepare
    const pool = uniqueName('raw');
    const api = poolApi(server.url);
    await api.putPool(pool, { maxUses: 10, cooldownSeconds: 1 });
    const secrets: string[] = [];
    // Act: import over HTTP and through the CLI (a file), lease and complete (success, refunding
    // outcomes), an idempotent lease, a usage increment, a migration from a file, and a reseal of
    // a key written before sealing.
    const http = await api.importKeys(pool, 3);
    secrets.push(...http.secrets);
    const viaCli = [fakeKey('cli-a-'), fakeKey('cli-b-')];
    const keysFile = join(dir, `${uniqueName('keys')}.txt`);
    writeFileSync(keysFile, `${viaCli.join('\n')}\n`);
    await keypool(['add', '--file', keysFile, '--pool', pool, '--label', 'from-cli']);
    secrets.push(...viaCli);
    for (const outcome of ['success', 'failure', 'invalid_key', 'rate_limited', 'unknown']) {
      const grant = await api.grant(pool);
      expect(secrets).toContain(grant.apiKey);
      const done = await api.complete(
        pool,
        grant.leaseId,
        outcome === 'rate_limited' ? { outcome, retryAfterSeconds: 1 } : { outcome },
      );
      expect(done.status, done.text).toBe(200);
    }
    const idempotent = await api.call('POST', `/pools/${pool}/leases`, {}, { 'idempotency-key': 'sealed-raw-1' });
    expect(idempotent.status, idempotent.text).toBe(200);
    const usage = await api.call('POST', `/pools/${pool}/keys/${http.keys[0]?.keyId ?? ''}/usage`);
    expect(usage.status, usage.text).toBe(200);
    const migrated = [
      `sk-test-migrated-${uniqueName('a')}-0123456789abcdef`,
      `sk-test-migrated-${uniqueName('b')}-0123456789abcdef`,
    ];
    const exportFile = join(dir, `${uniqueName('export')}.ndjson`);
    writeFileSync(
      exportFile,
      migrated
        .map((key, i) =>
          JSON.stringify({ api_key: key, credits_left: 20 - i, created_at: { $date: '2024-05-06T07:08:09Z' } }),
        )
        .join('\n'),
    );
    await keypool(['migrate', '--from-mongo-export', exportFile, '--pool', pool, '--json']);
    secrets.push(...migrated);
    const legacy = fakeKey('legacy-');
    await putPlainKey(pool, legacy);
    secrets.push(legacy);
    const resealed = JSON.parse((await keypool(['reseal', '--pool', pool, '--json'])).stdout) as { sealed: number };
    // Assess
    expect(resealed.sealed).toBe(1);
    const items = await rawItems();
    expect(items.some((item) => String(item.keyId).startsWith('idem#'))).toBe(true);
    expect(leaks(items, secrets)).toEqual([]);
    const keys = await keyItems(pool);
    expect(keys).toHaveLength(secrets.length);
    const byId = new Map(secrets.map((secret) => [keyIdFor(secret), secret]));
    const otherPool = uniqueName('elsewhere');
    for (const item of keys) {
      const keyId = String(item.keyId);
      expect(item, keyId).not.toHaveProperty('apiKey');
      expect(typeof item.sealedKey, keyId).toBe('string');
      const sealed = String(item.sealedKey);
      const header = inspectSealed(sealed);
      expect(header.sealed && header.context, keyId).toEqual({ pool, keyId });
      expect(await testSealer().open(sealed, { pool, keyId })).toBe(byId.get(keyId));
      const someOtherId = [...byId.keys()].find((id) => id !== keyId) ?? '';
      await expect(testSealer().open(sealed, { pool: otherPool, keyId })).rejects.toBeInstanceOf(SecretUndecryptable);
      await expect(testSealer().open(sealed, { pool, keyId: someOtherId })).rejects.toBeInstanceOf(SecretUndecryptable);
    }
  });
});

describe('two items whose ciphertexts were swapped', () => {
  it('are never leased (409, no 500), show undecryptable in list and status, keep their counts, and are logged by id without a secret', async () => {
    // Prepare
    const pool = uniqueName('swap');
    const api = poolApi(server.url);
    await api.putPool(pool, { maxUses: 5 });
    const { keys, secrets } = await api.importKeys(pool, 2);
    const [a = '', b = ''] = keys.map((k) => k.keyId);
    // Counts that are not zero, to see that nothing moves them.
    await api.call('POST', `/pools/${pool}/keys/${a}/usage`);
    const ciphertexts = await swapCiphertexts(a, b);
    const capture = captureOutput();
    const answers = [];
    try {
      // Act
      answers.push(await api.lease(pool));
      answers.push(await api.lease(pool));
    } finally {
      capture.stop();
    }
    const listed = await api.listAll(pool);
    const cliList = JSON.parse((await keypool(['list', '--pool', pool, '--json'])).stdout) as { keys: KeyViewBody[] };
    const cliListText = (await keypool(['list', '--pool', pool])).stdout;
    const status = JSON.parse((await keypool(['status', '--json'])).stdout) as { pools: Record<string, unknown>[] };
    const statusText = (await keypool(['status'])).stdout;
    // Assess: no key handed out, a clear 409 each time.
    for (const answer of answers) {
      expectError(answer, 409, 'no_usable_key');
      for (const secret of secrets) expect(answer.text).not.toContain(secret);
    }
    const expected = [
      { keyId: a, status: 'undecryptable', usageCount: 1 },
      { keyId: b, status: 'undecryptable', usageCount: 0 },
    ].sort((x, y) => x.keyId.localeCompare(y.keyId));
    const shape = (views: KeyViewBody[]) =>
      views
        .map(({ keyId, status: s, usageCount }) => ({ keyId, status: s, usageCount }))
        .sort((x, y) => x.keyId.localeCompare(y.keyId));
    expect(shape(listed)).toEqual(expected);
    expect(shape(cliList.keys)).toEqual(expected);
    expect(cliListText.match(/undecryptable/g)).toHaveLength(2);
    expect(status.pools.find((p) => p.pool === pool)).toMatchObject({
      total: 2,
      undecryptable: 2,
      active: 0,
      usable: 0,
    });
    const statusRow = statusText.split('\n').find((line) => line.startsWith(pool)) ?? '';
    const header = statusText.split('\n')[0]?.split(/\s+/) ?? [];
    expect(header).toContain('undecryptable');
    expect(statusRow.split(/\s+/)[header.indexOf('undecryptable')]).toBe('2');
    // The error line names the key and the pool, never the secret or either ciphertext.
    const logs = capture.lines();
    const errors = logs.split('\n').filter((line) => line.includes('"level":"ERROR"'));
    expect(errors.filter((line) => line.includes('cannot be decrypted'))).toHaveLength(2);
    for (const keyId of [a, b]) expect(errors.some((line) => line.includes(keyId) && line.includes(pool))).toBe(true);
    expect(logs).not.toContain('internal error');
    for (const hidden of [...secrets, ...ciphertexts, ...ciphertexts.map((c) => c.slice(40, 80))])
      expect(logs).not.toContain(hidden);
    // Both leases' slots were closed as failures: no lease of either key is open.
    for (const item of await keyItems(pool)) {
      const slots = Object.values(item.L as Record<string, { o?: string }>);
      expect(
        slots.every((slot) => slot.o === 'failure'),
        String(item.keyId),
      ).toBe(true);
      expect(item, String(item.keyId)).not.toHaveProperty('upk');
    }
  });

  it("with an Idempotency-Key, a lease that meets them grants the pool's good key, and a retry replays that lease", async () => {
    // Prepare: two swapped keys imported first (the head of the pool), then a good one.
    const pool = uniqueName('swapidem');
    const api = poolApi(server.url);
    await api.putPool(pool);
    const { keys } = await api.importKeys(pool, 2);
    const { keys: good, secrets } = await api.importKeys(pool, 1);
    await swapCiphertexts(keys[0]?.keyId ?? '', keys[1]?.keyId ?? '');
    const headers = { 'idempotency-key': uniqueName('idem') };
    // Act
    const first = await api.call('POST', `/pools/${pool}/leases`, {}, headers);
    const retry = await api.call('POST', `/pools/${pool}/leases`, {}, headers);
    // Assess
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ keyId: good[0]?.keyId, apiKey: secrets[0], usageCount: 0 });
    expect(retry.body).toEqual(first.body);
    const listed = await api.listAll(pool);
    const swapped = listed.filter((k) => k.keyId !== good[0]?.keyId);
    expect(listed.find((k) => k.keyId === good[0]?.keyId)).toMatchObject({ status: 'active', usageCount: 1 });
    // The lease met at least the head; after a refusal a broker spreads over the head's equals,
    // so it may reach the good key before the second swapped one (left untouched: found by the
    // next lease or by maintenance). Neither swapped key was ever counted.
    expect(swapped.map((k) => k.usageCount)).toEqual([0, 0]);
    expect(swapped.some((k) => k.status === 'undecryptable')).toBe(true);
    expect(swapped.every((k) => k.status === 'undecryptable' || k.status === 'active')).toBe(true);
  });

  it('maintenance marks them undecryptable and reports them without asking the provider about them', async () => {
    // Prepare: a stability pool with a good key and two swapped ones, all never checked.
    const pool = uniqueName('swapmaint');
    const api = poolApi(server.url);
    await api.putPool(pool, { provider: 'stability' });
    const { keys, secrets } = await api.importKeys(pool, 3);
    for (const secret of secrets) provider.setKey(secret, { credits: 50 });
    const [a = '', b = '', good = ''] = keys.map((k) => k.keyId);
    await swapCiphertexts(a, b);
    const before = provider.requests.length;
    // Act
    const first = JSON.parse((await keypool(['maintain', '--pool', pool, '--json'])).stdout) as {
      checked: number;
      undecryptable: number;
      errors: { keyId: string; reason: string }[];
    };
    // The keys the provider was asked about (the good one twice: its account, then its balance).
    const asked = [...new Set(provider.requests.slice(before).map((r) => r.apiKey))];
    const second = JSON.parse((await keypool(['maintain', '--pool', pool, '--json'])).stdout) as typeof first;
    // Assess
    expect(asked).toEqual([secrets[2]]);
    expect(first.checked).toBe(1);
    expect(first.undecryptable).toBe(2);
    expect(first.errors.map((e) => e.keyId).sort()).toEqual([a, b].sort());
    for (const error of first.errors)
      expect(error.reason).toMatch(/cannot be decrypted \(context-mismatch\); marked undecryptable$/);
    expect((await api.view(pool, a))?.status).toBe('undecryptable');
    expect((await api.view(pool, b))?.status).toBe('undecryptable');
    expect((await api.view(pool, good))?.status).toBe('active');
    // Already marked: the next run neither opens nor reports them again, and still never asks about them.
    expect(second).toMatchObject({ checked: 1, undecryptable: 2, errors: [] });
    expect(provider.requests.slice(before).filter((r) => r.apiKey !== secrets[2])).toEqual([]);
  });
});

describe('a key still stored in plain text (written before sealing)', () => {
  it('is never leased and is reported once; maintenance still checks it; keypool reseal seals it and then it is leased', async () => {
    // Prepare
    const pool = uniqueName('plain');
    const api = poolApi(server.url);
    await api.putPool(pool, { provider: 'stability' });
    const secret = fakeKey('plain-');
    const keyId = await putPlainKey(pool, secret);
    provider.setKey(secret, { credits: 40 });
    const capture = captureOutput();
    const refused = [];
    try {
      // Act: two leases of a pool whose only key is plain.
      refused.push(await api.lease(pool));
      refused.push(await api.lease(pool));
    } finally {
      capture.stop();
    }
    const before = provider.requests.length;
    const maintained = JSON.parse((await keypool(['maintain', '--pool', pool, '--json'])).stdout) as {
      checked: number;
    };
    const asked = [...new Set(provider.requests.slice(before).map((r) => r.apiKey))];
    const report = JSON.parse((await keypool(['reseal', '--pool', pool, '--json'])).stdout) as Record<string, unknown>;
    const [item] = await keyItems(pool);
    const granted = await api.grant(pool);
    // Assess
    for (const answer of refused) expectError(answer, 409, 'no_usable_key');
    const warnings = capture
      .lines()
      .split('\n')
      .filter((line) => line.includes('stored unsealed'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(keyId);
    expect(capture.lines()).not.toContain(secret);
    expect(maintained.checked).toBe(1);
    expect(asked).toEqual([secret]);
    expect(report).toEqual({
      keys: 1,
      resealed: 0,
      sealed: 1,
      revived: 0,
      unchanged: 0,
      undecryptable: [],
      keyNotHeld: [],
      changedMeanwhile: 0,
    });
    expect(item).not.toHaveProperty('apiKey');
    expect(await testSealer().open(String(item?.sealedKey), { pool, keyId })).toBe(secret);
    expect(granted).toMatchObject({ keyId, apiKey: secret, usageCount: 0 } satisfies Partial<LeaseGrantBody>);
  });

  it('does not keep the sealed keys of its pool from being leased, however many plain keys come first; reseal puts them back', async () => {
    // Prepare: more plain keys than one candidate page (25), all older than the one sealed key.
    const pool = uniqueName('plainmany');
    const api = poolApi(server.url);
    await api.putPool(pool);
    const plain: string[] = [];
    for (let i = 0; i < 30; i++)
      plain.push(
        await putPlainKey(pool, fakeKey(`old${i}-`), {
          createdAt: `2025-01-01T00:00:${String(i).padStart(2, '0')}.000Z`,
        }),
      );
    const { keys } = await api.importKeys(pool, 1);
    // Act
    const started = Date.now();
    const answer = await api.lease(pool);
    const tookMs = Date.now() - started;
    const afterLease = await keyItems(pool);
    await keypool(['reseal', '--pool', pool]);
    const afterReseal = await keyItems(pool);
    const next = await api.lease(pool);
    // Assess
    expect(answer.status, answer.text).toBe(200);
    expect((answer.body as LeaseGrantBody).keyId).toBe(keys[0]?.keyId);
    expect(tookMs).toBeLessThan(3_000);
    // The plain keys the lease met left the usage index (still active); the reseal put them back.
    const plainItems = afterLease.filter((item) => 'apiKey' in item);
    expect(plainItems).toHaveLength(30);
    expect(plainItems.filter((item) => 'upk' in item).length).toBeLessThanOrEqual(5);
    expect(plainItems.every((item) => item.status === 'active')).toBe(true);
    expect(afterReseal.every((item) => item.upk === pool && 'sealedKey' in item && !('apiKey' in item))).toBe(true);
    expect(next.status, next.text).toBe(200);
    // The sealed key holds a use now: a formerly plain key (count 0) comes first. Which one is
    // not fixed: the refused writes made the broker spread its first tries for a moment.
    expect(plain).toContain((next.body as LeaseGrantBody).keyId);
  });

  it('keeps showing its mask after keypool reseal, even when it was written before keys kept one', async () => {
    // Prepare: an item with only the plain secret, no maskedKey. The list reads no secret, so
    // until the reseal it can show only "...".
    const pool = uniqueName('nomask');
    const api = poolApi(server.url);
    await api.putPool(pool);
    const secret = fakeKey('nomask-');
    const keyId = await putPlainKey(pool, secret, { withMask: false });
    const shownBefore = (await api.view(pool, keyId))?.maskedKey;
    // Act
    await keypool(['reseal', '--pool', pool]);
    // Assess
    expect(shownBefore).toBe('...');
    expect((await api.view(pool, keyId))?.maskedKey).toBe(maskKey(secret));
    const [item] = await keyItems(pool);
    expect(item?.maskedKey).toBe(maskKey(secret));
  });
});
