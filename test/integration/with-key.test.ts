/**
 * withKey (the client package, @keypool/client) against DynamoDB Local and the fake provider,
 * through both sources an application can use: a Broker in the account (brokerKeySource) and the
 * real local HTTP server (a Keypool's pool on /pools/{pool}/...). Every provider answer, the provider's Retry-After on a
 * rate_limited completion, waiting for a cooling key within maxWaitSeconds, fn throwing,
 * timeouts, retries exhausted, secret-free errors, unknown pools, and the lease path's metrics.
 */
import { createServer, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type KeySource,
  Keypool,
  type LeaseWait,
  NoUsableKey,
  PoolNotFound,
  type ProviderCall,
  ProviderCallError,
  withKey,
} from '@keypool/client';
import { brokerKeySource } from '../../lib/client/broker-key-source.js';
import type { Broker } from '../../lib/use-cases/broker.js';
import type { ImportResult, PoolSettings } from '../../lib/domain/types.js';
import { freePort } from '../../lib/local/dynamodb-local.js';
import type { LocalServer } from '../../lib/local/server.js';
import { broker as brokerOver } from '../../lib/wiring-secrets.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import {
  FAKE_PNG,
  type FakeKey,
  type FakeProvider,
  IMAGE_COST,
  MODERATED_WORD,
  startFakeProvider,
} from '../support/fake-provider.js';
import { captureEmf } from '../support/pool-api.js';
import { call, startTestServer } from '../support/server.js';

let table: TestTable;
let provider: FakeProvider;
let server: LocalServer;
let broker: Broker;

beforeAll(async () => {
  table = await createTestTable('withkey');
  provider = await startFakeProvider();
  server = await startTestServer(table.tableName);
  broker = brokerOver({ endpoint: table.endpoint, region: undefined, tableName: table.tableName });
});

afterAll(async () => {
  await server.close();
  await provider.close();
});

/**
 * Creates a pool through the API (PUT /pools/{pool}, then POST /pools/{pool}/keys, in this
 * order: the first key is leased first) and programs the fake provider for each key.
 */
async function seed(
  specs: (Partial<FakeKey> & { unknown?: boolean })[],
  settings: Partial<PoolSettings> = {},
): Promise<{ pool: string; keys: { keyId: string; apiKey: string }[] }> {
  const pool = uniqueName('wk');
  const created = await call(server.url, 'PUT', `/pools/${pool}`, settings);
  if (created.status !== 200) throw new Error(`PUT /pools/${pool} answered ${created.status}: ${created.text}`);
  const secrets = specs.map((_, i) => fakeKey(`${i}-`));
  if (secrets.length > 0) {
    const imported = await call(server.url, 'POST', `/pools/${pool}/keys`, {
      keys: secrets.map((apiKey) => ({ apiKey })),
    });
    if (imported.status !== 201)
      throw new Error(`POST /pools/${pool}/keys answered ${imported.status}: ${imported.text}`);
    specs.forEach(({ unknown, ...behaviour }, i) => {
      if (!unknown) provider.setKey(secrets[i] ?? '', behaviour);
    });
    return {
      pool,
      keys: (imported.body as ImportResult).keys.map((k, i) => ({ keyId: k.keyId, apiKey: secrets[i] ?? '' })),
    };
  }
  return { pool, keys: [] };
}

/** Stability's Core endpoint, as the docs example calls it. */
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

/** `call`, after which the key answers normally (its forced status and Retry-After dropped). */
function thenHealthy(call: ProviderCall): ProviderCall {
  return async (apiKey, attempt) => {
    const response = await call(apiKey, attempt);
    provider.setKey(apiKey, { generateStatus: undefined, retryAfter: undefined });
    return response;
  };
}

async function keyState(keyId: string) {
  const key = await table.store.get(keyId);
  if (!key) throw new Error('no key');
  return {
    status: key.status,
    usageCount: key.usageCount,
    open: Object.values(key.slots).filter((slot) => slot.outcome === undefined).length,
  };
}

const fast = { backoffMs: 1 };

/** A sleep that really sleeps and records how long it was asked to. */
function recordedSleep(): { slept: number[]; sleep: (ms: number) => Promise<void> } {
  const slept: number[] = [];
  return { slept, sleep: (ms) => (slept.push(ms), new Promise((done) => setTimeout(done, ms))) };
}

const SOURCES: [string, (pool: string) => KeySource][] = [
  ['directly on a Broker (brokerKeySource)', (pool) => brokerKeySource(broker, pool)],
  ['through the HTTP API (a Keypool pool, local server)', (pool) => new Keypool({ url: server.url }).pool(pool)],
];

describe.each(SOURCES)('withKey %s', (_name, sourceFor) => {
  it('2xx: returns the image and completes success, so the use stays counted', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }]);
    // Act
    const response = await withKey({ keys: sourceFor(pool), ...fast }, generate('a lighthouse'));
    // Assess
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(FAKE_PNG)).toBe(true);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
    expect(provider.keys.get(keys[0]?.apiKey ?? '')?.credits).toBe(10 - IMAGE_COST);
  });

  it.each([
    [401, { unknown: true }, 'suspect'],
    [402, { credits: 1 }, 'exhausted'],
    [429, { generateStatus: 429 as const }, 'cooling'],
    [503, { generateStatus: 503 as const }, 'active'],
  ] as const)(
    '%i: completes with the matching outcome (key %o -> %s), refunds the use and retries with another key',
    async (status, first, after) => {
      // Prepare
      const { pool, keys } = await seed([first, { credits: 10 }]);
      // Act
      const response = await withKey({ keys: sourceFor(pool), ...fast }, generate('a lighthouse'));
      // Assess
      expect(response.status).toBe(200);
      expect(
        provider
          .requestsTo('/v2beta/stable-image/generate/core')
          .filter((r) => r.apiKey === keys[0]?.apiKey)
          .map((r) => r.status),
      ).toEqual([status]);
      expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: after, usageCount: 0, open: 0 });
      expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
    },
  );

  it("429 with Retry-After: the key rests as long as the provider asked (up to the pool's maxClientCooldownSeconds), not the pool's cooldown", async () => {
    // Prepare: the pool's cooldown is 60 s; the provider asks for 900 s, which the pool allows a client to pass on.
    const { pool, keys } = await seed([{ generateStatus: 429, retryAfter: '900' }, { credits: 10 }], {
      cooldownSeconds: 60,
      maxClientCooldownSeconds: 900,
    });
    // Act
    const before = Date.now();
    const response = await withKey({ keys: sourceFor(pool), ...fast }, generate('a lighthouse'));
    const after = Date.now();
    // Assess
    expect(response.status).toBe(200);
    const cooled = await table.store.get(keys[0]?.keyId ?? '');
    expect(cooled?.status).toBe('cooling');
    expect(cooled?.cooldownUntil).toBeGreaterThanOrEqual(before + 900_000);
    expect(cooled?.cooldownUntil).toBeLessThanOrEqual(after + 900_000);
  });

  it('403 content moderation: the answer is returned, the lease completed as failure, and no other key is tried', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }, { credits: 10 }]);
    const inner = sourceFor(pool);
    const leases = vi.fn();
    const source: KeySource = {
      lease: (request?: LeaseWait) => (leases(), inner.lease(request)),
      complete: inner.complete.bind(inner),
    };
    // Act
    const response = await withKey({ keys: source, ...fast }, generate(`a ${MODERATED_WORD} thing`));
    // Assess
    expect(response.status).toBe(403);
    expect(((await response.json()) as { name: string }).name).toBe('content_moderation');
    expect(leases).toHaveBeenCalledTimes(1);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
  });

  it('retries exhausted: after 1 + retries refusals it throws ProviderCallError naming keys and statuses, never a secret', async () => {
    // Prepare
    const { pool, keys } = await seed([
      { generateStatus: 500 },
      { credits: 0 },
      { generateStatus: 429 },
      { credits: 10 },
    ]);
    // Act
    const error = await withKey({ keys: sourceFor(pool), retries: 2, ...fast }, generate('a lighthouse')).catch(
      (e: unknown) => e,
    );
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

  it('fn cannot connect (the request never left): the lease is completed as failure, refunded; the error is rethrown and no other key is tried', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }, { credits: 10 }]);
    const closed = await freePort();
    const unreachable: ProviderCall = (apiKey) =>
      fetch(`http://127.0.0.1:${closed}/`, { headers: { authorization: `Bearer ${apiKey}` } });
    // Act
    const error = await withKey({ keys: sourceFor(pool), ...fast }, unreachable).catch((e: unknown) => e);
    // Assess
    expect((error as Error).message).toBe('fetch failed');
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
  });

  it('fn throws an error that quotes the key: the error that comes out never holds the secret; the use stays counted (unknown)', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }]);
    const secret = keys[0]?.apiKey ?? '';
    const quoting: ProviderCall = (apiKey) =>
      Promise.reject(new Error(`request with Authorization: Bearer ${apiKey} failed`, { cause: new Error(apiKey) }));
    // Act
    const error = await withKey({ keys: sourceFor(pool), ...fast }, quoting).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProviderCallError);
    const text = `${(error as Error).message}\n${(error as Error).stack ?? ''}\n${String((error as Error).cause)}`;
    expect(text).not.toContain(secret);
    expect(text).toContain(`${secret.slice(0, 3)}...${secret.slice(-4)}`);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
  });

  it('a provider slower than timeoutMs: the call is aborted, the lease completed unknown: the use the provider probably billed stays counted, the slot is free', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10, delayMs: 2_000 }]);
    // Act
    const began = Date.now();
    const error = await withKey({ keys: sourceFor(pool), timeoutMs: 200, ...fast }, generate('a lighthouse')).catch(
      (e: unknown) => e,
    );
    // Assess
    expect(Date.now() - began).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(ProviderCallError);
    expect((error as Error).message).toMatch(/longer than 200 ms/);
    expect((error as ProviderCallError).attempts.map((a) => a.outcome)).toEqual(['unknown']);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
  });

  it('a pool with no keys: NoUsableKey without retryAfterSeconds, even with a wait bound, and fn is never called', async () => {
    // Prepare
    const { pool } = await seed([]);
    const provide = vi.fn<ProviderCall>();
    const { slept, sleep } = recordedSleep();
    // Act
    const error = await withKey({ keys: sourceFor(pool), maxWaitSeconds: 30, sleep }, provide).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect((error as NoUsableKey).retryAfterSeconds).toBeUndefined();
    expect(slept).toEqual([]);
    expect(provide).not.toHaveBeenCalled();
  });

  it('a pool that does not exist: PoolNotFound, and fn is never called', async () => {
    // Prepare
    const pool = uniqueName('nowhere');
    const provide = vi.fn<ProviderCall>();
    // Act
    const error = await withKey({ keys: sourceFor(pool) }, provide).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(PoolNotFound);
    expect(provide).not.toHaveBeenCalled();
  });

  it('a dry pool whose cooling key comes back within maxWaitSeconds is waited out: the same key is leased again and answers', async () => {
    // Prepare: the only key is rate limited for 1 s (the provider's Retry-After), then healthy.
    const { pool, keys } = await seed([{ generateStatus: 429, retryAfter: '1', credits: 10 }]);
    const { slept, sleep } = recordedSleep();
    // Act
    const began = Date.now();
    const response = await withKey(
      { keys: sourceFor(pool), maxWaitSeconds: 5, retries: 1, ...fast, sleep },
      thenHealthy(generate('a lighthouse')),
    );
    // Assess
    expect(response.status).toBe(200);
    const waits = slept.filter((ms) => ms >= 1_000);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeLessThanOrEqual(1_100);
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(
      provider
        .requestsTo('/v2beta/stable-image/generate/core')
        .filter((r) => r.apiKey === keys[0]?.apiKey)
        .map((r) => r.status),
    ).toEqual([429, 200]);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
  });

  it('without maxWaitSeconds a dry pool throws at once, and NoUsableKey carries when the cooling key comes back', async () => {
    // Prepare: the only key is rate limited for 30 s.
    const { pool } = await seed([{ generateStatus: 429, retryAfter: '30' }]);
    const { slept, sleep } = recordedSleep();
    // Act
    const error = await withKey({ keys: sourceFor(pool), retries: 1, ...fast, sleep }, generate('a lighthouse')).catch(
      (e: unknown) => e,
    );
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect((error as NoUsableKey).retryAfterSeconds).toBe(30);
    expect((error as Error).message).toMatch(/in 30 s/);
    expect(slept.filter((ms) => ms >= 1_000)).toEqual([]);
  });

  it('a key that comes back after maxWaitSeconds is not waited for: NoUsableKey at once', async () => {
    // Prepare: the only key is rate limited for 30 s; the caller waits at most 5 s.
    const { pool } = await seed([{ generateStatus: 429, retryAfter: '30' }]);
    const { slept, sleep } = recordedSleep();
    // Act
    const began = Date.now();
    const error = await withKey(
      { keys: sourceFor(pool), maxWaitSeconds: 5, retries: 1, ...fast, sleep },
      generate('a lighthouse'),
    ).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect((error as NoUsableKey).retryAfterSeconds).toBe(30);
    expect(slept.filter((ms) => ms >= 1_000)).toEqual([]);
    expect(Date.now() - began).toBeLessThan(1_000);
  });
});

describe("withKey through the HTTP API: the lease path's metrics", () => {
  it('a 402 then a 2xx: the first key is exhausted and refunded, the second counted; the lease path counts LeasesGranted', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 2 }, { credits: 10 }]);
    const client = new Keypool({ url: server.url }).pool(pool);
    // Act
    let response: Response | undefined;
    const { records: emf } = await captureEmf(async () => {
      response = await withKey({ keys: client, ...fast }, generate('a lighthouse'));
    });
    // Assess
    expect(response?.status).toBe(200);
    expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'exhausted', usageCount: 0, open: 0 });
    expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
    const granted = emf.filter((r) => r.pool === pool && r.LeasesGranted === 1);
    expect(granted).toHaveLength(2);
    expect(granted[0]?._aws).toMatchObject({
      CloudWatchMetrics: [
        { Namespace: 'keypool', Dimensions: [['pool']], Metrics: [{ Name: 'LeasesGranted', Unit: 'Count' }] },
      ],
    });
  });

  it('a pool with no keys answers 409, which the client turns into NoUsableKey; the lease path counts NoUsableKey', async () => {
    // Prepare
    const { pool } = await seed([]);
    const client = new Keypool({ url: server.url }).pool(pool);
    // Act
    let error: unknown;
    const { records: emf } = await captureEmf(async () => {
      error = await withKey({ keys: client }, generate('a lighthouse')).catch((e: unknown) => e);
    });
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect(emf.filter((r) => r.pool === pool).map((r) => r.NoUsableKey)).toEqual([1]);
  });

  it('a pool that does not exist answers 404, which the client turns into PoolNotFound; no metric is published for it', async () => {
    // Prepare
    const pool = uniqueName('nowhere');
    const client = new Keypool({ url: server.url }).pool(pool);
    // Act
    let error: unknown;
    const { records: emf } = await captureEmf(async () => {
      error = await withKey({ keys: client }, generate('a lighthouse')).catch((e: unknown) => e);
    });
    // Assess
    expect(error).toBeInstanceOf(PoolNotFound);
    expect(emf.filter((r) => r.pool === pool)).toEqual([]);
  });
});

/**
 * A proxy in front of the local server that loses the first lease answer: the request reaches
 * keypool (the lease is granted and its use counted), then the connection is reset before the
 * answer gets back. Every other request passes through.
 */
async function losingFirstLeaseAnswer(target: string): Promise<{ url: string; close: () => Promise<void> }> {
  let lost = false;
  const proxy = createServer((incoming, outgoing) => {
    const upstream = httpRequest(
      `${target}${incoming.url ?? '/'}`,
      { method: incoming.method, headers: { ...incoming.headers, host: new URL(target).host } },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          if (!lost && incoming.method === 'POST' && (incoming.url ?? '').endsWith('/leases')) {
            lost = true;
            outgoing.socket?.destroy();
            return;
          }
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          outgoing.end(Buffer.concat(chunks));
        });
      },
    );
    incoming.pipe(upstream);
  });
  await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', () => done()));
  const address = proxy.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    close: () => new Promise<void>((done) => (proxy.closeAllConnections(), proxy.close(() => done()))),
  };
}

describe('withKey through the HTTP API when a lease answer is lost', () => {
  it('the client asks again with the same Idempotency-Key: the same lease comes back, one use counted, no slot left open', async () => {
    // Prepare
    const { pool, keys } = await seed([{ credits: 10 }, { credits: 10 }]);
    const proxy = await losingFirstLeaseAnswer(server.url);
    try {
      const client = new Keypool({ url: proxy.url }).pool(pool);
      // Act
      const response = await withKey({ keys: client, ...fast }, generate('a lighthouse'));
      // Assess: the first key's lease (granted, answer lost) is the one used and completed.
      expect(response.status).toBe(200);
      expect(await keyState(keys[0]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 1, open: 0 });
      expect(await keyState(keys[1]?.keyId ?? '')).toEqual({ status: 'active', usageCount: 0, open: 0 });
    } finally {
      await proxy.close();
    }
  });
});
