/**
 * withKey against DynamoDB Local and the fake provider, directly on the Broker and through
 * the real local HTTP server with KeypoolClient: every provider answer, fn throwing, timeouts,
 * retries exhausted, secret-free errors, and the lease path's metrics.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeypoolClient } from '../../lib/client/keypool-client.js';
import { type ProviderCall, ProviderCallError, withKey } from '../../lib/client/with-key.js';
import { NoUsableKey } from '../../lib/domain/errors.js';
import { freePort } from '../../lib/local/dynamodb-local.js';
import { loadHandlers } from '../../lib/local/handlers.js';
import { type LocalServer, startServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { FAKE_PNG, type FakeKey, type FakeProvider, IMAGE_COST, MODERATED_WORD, startFakeProvider } from '../support/fake-provider.js';

let table: TestTable;
let provider: FakeProvider;
let server: LocalServer;

beforeAll(async () => {
  table = await createTestTable('withkey');
  provider = await startFakeProvider();
  // The handlers read the table once, on first use: set it before loading them.
  process.env.KEYPOOL_TABLE = table.tableName;
  process.env.KEYPOOL_DYNAMODB_ENDPOINT = table.endpoint;
  server = await startServer(await loadHandlers(), 0);
});

afterAll(async () => {
  await server.close();
  await provider.close();
});

/** Imports keys (in this order: the first is leased first) and programs the fake provider. */
async function seed(specs: (Partial<FakeKey> & { unknown?: boolean })[]): Promise<{ pool: string; keys: { keyId: string; apiKey: string }[] }> {
  const pool = uniqueName('wk');
  const secrets = specs.map((_, i) => fakeKey(`${i}-`));
  const result = await table.broker().importKeys(secrets.map((apiKey) => ({ apiKey, pool })));
  specs.forEach(({ unknown, ...behaviour }, i) => {
    if (!unknown) provider.setKey(secrets[i] ?? '', behaviour);
  });
  return { pool, keys: result.keys.map((k, i) => ({ keyId: k.keyId, apiKey: secrets[i] ?? '' })) };
}

/** Stability's Core endpoint, as the README example calls it. */
function generate(prompt: string): ProviderCall {
  return (apiKey, { signal }) => {
    const form = new FormData();
    form.append('prompt', prompt);
    form.append('output_format', 'png');
    return fetch(`${provider.url}/v2beta/stable-image/generate/core`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, accept: 'image/*' },
      body: form,
      signal,
    });
  };
}

async function keyState(keyId: string) {
  const key = await table.store.get(keyId);
  if (!key) throw new Error('no key');
  return { status: key.status, usageCount: key.usageCount, open: Object.values(key.slots).filter((slot) => slot.outcome === undefined).length };
}

const fast = { backoffMs: 1 };

describe('withKey directly on the Broker', () => {
  it('2xx: returns the image and completes success, so the use stays counted', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }]);
    // Act
    const response = await withKey({ keys: table.broker(), pool, ...fast }, generate('a lighthouse'));
    // Assess
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(FAKE_PNG)).toBe(true);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
    expect(provider.keys.get(keys[0]?.apiKey ?? '')?.credits).toBe(10 - IMAGE_COST);
  });

  it.each([
    [401, { unknown: true }, 'disabled'],
    [402, { credits: 1 }, 'exhausted'],
    [429, { generateStatus: 429 as const }, 'cooling'],
    [503, { generateStatus: 503 as const }, 'active'],
  ] as const)('%i: completes with the matching outcome (key %o -> %s), refunds the use and retries with another key', async (status, first, after) => {
    // Prepare
    const { pool, keys } = await seed([first, { credits: 10 }]);
    // Act
    const response = await withKey({ keys: table.broker(), pool, ...fast }, generate('a lighthouse'));
    // Assess
    expect(response.status).toBe(200);
    expect(provider.requestsTo('/v2beta/stable-image/generate/core').filter((r) => r.apiKey === keys[0]?.apiKey).map((r) => r.status)).toEqual([status]);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: after, usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
  });

  it('403 content moderation: the answer is returned, the lease completed as failure, and no other key is tried', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }, { credits: 10 }]);
    const leases = vi.fn();
    const broker = table.broker();
    const source = { lease: (r?: Parameters<typeof broker.lease>[0]) => (leases(), broker.lease(r)), complete: broker.complete.bind(broker) };
    // Act
    const response = await withKey({ keys: source, pool, ...fast }, generate(`a ${MODERATED_WORD} thing`));
    // Assess
    expect(response.status).toBe(403);
    expect(((await response.json()) as { name: string }).name).toBe('content_moderation');
    expect(leases).toHaveBeenCalledTimes(1);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
  });

  it('retries exhausted: after 1 + retries refusals it throws ProviderCallError naming keys and statuses, never a secret', async () => {
    // Prepare
    const { pool, keys } = await seed([{ generateStatus: 500 }, { credits: 0 }, { generateStatus: 429 }, { credits: 10 }]);
    // Act
    const error = await withKey({ keys: table.broker(), pool, retries: 2, ...fast }, generate('a lighthouse')).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProviderCallError);
    const failure = error as ProviderCallError;
    expect(failure.status).toBe(429);
    expect(failure.attempts.map((a) => [a.keyId, a.status, a.outcome])).toEqual([
      [keys[0]?.keyId, 500, 'failure'],
      [keys[1]?.keyId, 402, 'out_of_credits'],
      [keys[2]?.keyId, 429, 'rate_limited'],
    ]);
    const text = `${failure.message}\n${failure.stack ?? ''}\n${JSON.stringify(failure)}`;
    for (const key of keys) expect(text).not.toContain(key.apiKey.slice(8));
    expect(await keyState(keys[3]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 }); // never tried
    for (const key of keys.slice(0, 3)) expect((await keyState(key.keyId)).usageCount).toBe(0);
  });

  it('fn throws (network error): the lease is completed as failure, the error is rethrown and no other key is tried', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }, { credits: 10 }]);
    const closed = await freePort();
    const call: ProviderCall = (apiKey) => fetch(`http://127.0.0.1:${closed}/`, { headers: { authorization: `Bearer ${apiKey}` } });
    // Act
    const error = await withKey({ keys: table.broker(), pool, ...fast }, call).catch((e: unknown) => e);
    // Assess
    expect((error as Error).message).toBe('fetch failed');
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
  });

  it('fn throws an error that quotes the key: the error that comes out never holds the secret', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }]);
    const secret = keys[0]?.apiKey ?? '';
    const call: ProviderCall = (apiKey) => Promise.reject(new Error(`request with Authorization: Bearer ${apiKey} failed`, { cause: new Error(apiKey) }));
    // Act
    const error = await withKey({ keys: table.broker(), pool, ...fast }, call).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProviderCallError);
    const text = `${(error as Error).message}\n${(error as Error).stack ?? ''}\n${String((error as Error).cause)}`;
    expect(text).not.toContain(secret);
    expect(text).toContain(`${secret.slice(0, 3)}...${secret.slice(-4)}`);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
  });

  it('a provider slower than timeoutMs: the call is aborted, the lease completed as failure', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10, delayMs: 2_000 }]);
    // Act
    const began = Date.now();
    const error = await withKey({ keys: table.broker(), pool, timeoutMs: 200, ...fast }, generate('a lighthouse')).catch((e: unknown) => e);
    // Assess
    expect(Date.now() - began).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(ProviderCallError);
    expect((error as Error).message).toMatch(/longer than 200 ms/);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
  });

  it('an empty pool: NoUsableKey, and fn is never called', async () => {
    // Prepare
    const pool = uniqueName('empty');
    const call = vi.fn<ProviderCall>();
    // Act
    const error = await withKey({ keys: table.broker(), pool }, call).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect(call).not.toHaveBeenCalled();
  });
});

/** Captures stdout (Powertools writes EMF there) while `work` runs; returns the EMF records. */
async function captureEmf(work: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return lines
    .join('')
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('withKey through the HTTP API (KeypoolClient, local server)', () => {
  it('a 402 then a 2xx: the first key is exhausted and refunded, the second counted; the lease path counts LeasesGranted', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 2 }, { credits: 10 }]);
    const client = new KeypoolClient({ url: server.url });
    // Act
    let response: Response | undefined;
    const emf = await captureEmf(async () => {
      response = await withKey({ keys: client, pool, ...fast }, generate('a lighthouse'));
    });
    // Assess
    expect(response?.status).toBe(200);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'exhausted', usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
    const granted = emf.filter((r) => r.pool === pool && r.LeasesGranted === 1);
    expect(granted).toHaveLength(2);
    expect(granted[0]?._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: 'keypool', Dimensions: [['pool']], Metrics: [{ Name: 'LeasesGranted', Unit: 'Count' }] }] });
  });

  it('an empty pool answers 409, which KeypoolClient turns into NoUsableKey; the lease path counts NoUsableKey', async () => {
    // Prepare
    const pool = uniqueName('none');
    const client = new KeypoolClient({ url: server.url });
    // Act
    let error: unknown;
    const emf = await captureEmf(async () => {
      error = await withKey({ keys: client, pool }, generate('a lighthouse')).catch((e: unknown) => e);
    });
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect(emf.filter((r) => r.pool === pool).map((r) => r.NoUsableKey)).toEqual([1]);
  });
});
