/**
 * Proxy mode through the real local server against the fake provider: every row of the outcome
 * table with the key's count and status after it, failover, the refusals made before any key is
 * taken, the headers that cross, Idempotency-Key replays and async jobs; and, once the file is
 * done, no key in any answer, log line or item of the table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanTable, uniqueName } from '../support/dynamo.js';
import { FAKE_PNG } from '../support/fake-provider.js';
import { expectError, type KeyViewBody } from '../support/pool-api.js';
import {
  type Proxied,
  type ProxyInit,
  promptForm,
  proxy,
  proxyPool,
  type ProxyStack,
  startProxyStack,
} from '../support/proxy-api.js';
import { captureOutput } from '../support/server.js';

const GENERATE = 'v2beta/stable-image/generate/core';
const WAF_PAGE = { status: 403, contentType: 'text/html', body: '<html><body>Access denied (WAF)</body></html>' };

let stack: ProxyStack;
let output: ReturnType<typeof captureOutput>;
const answers: string[] = [];
const secrets: string[] = [];

beforeAll(async () => {
  stack = await startProxyStack('proxy');
  output = captureOutput();
});

afterAll(async () => {
  output.stop();
  await stack.close();
});

/** A proxied call whose answer the secrets scan reads at the end. */
async function call(pool: string, path: string, init: ProxyInit = {}): Promise<Proxied> {
  const answer = await proxy(stack.server.url, pool, path, init);
  answers.push(answer.text, JSON.stringify([...answer.headers]));
  return answer;
}

const generate = (pool: string, init: ProxyInit = {}): Promise<Proxied> =>
  call(pool, GENERATE, { body: promptForm(), headers: { accept: 'image/*' }, ...init });

/** A fresh pool of `count` keys; the keys are remembered for the secrets scan. */
async function pool(count: number, settings: Record<string, unknown> = {}) {
  const name = uniqueName('px');
  const keys = await proxyPool(stack, name, count, settings);
  secrets.push(...keys.map((k) => k.apiKey));
  return { name, keys };
}

async function view(poolName: string, keyId: string): Promise<KeyViewBody> {
  const key = await stack.api.view(poolName, keyId);
  if (!key) throw new Error(`no key ${keyId}`);
  return key;
}

function keypoolHeaders(answer: Proxied): [string | null, string | null, string | null] {
  return [
    answer.headers.get('x-keypool-key-id'),
    answer.headers.get('x-keypool-attempts'),
    answer.headers.get('x-keypool-outcome'),
  ];
}

describe('the outcome table, row by row', () => {
  it('2xx: success, the image streamed back with the listed headers only, the use counted', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    const [key] = keys;
    // Act
    const answer = await generate(name, {
      headers: {
        accept: 'image/*',
        authorization: 'Bearer caller-credential',
        cookie: 'session=1',
        'x-amz-date': '20261207T000000Z',
        'x-forwarded-for': '10.1.2.3',
        'stability-client-id': 'my-app',
      },
    });
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.bytes.equals(FAKE_PNG)).toBe(true);
    expect(keypoolHeaders(answer)).toEqual([key?.keyId, '1', 'success']);
    expect(answer.headers.get('content-type')).toBe('image/png');
    expect(answer.headers.get('finish-reason')).toBe('SUCCESS');
    expect(answer.headers.get('seed')).toBe('1');
    expect(answer.headers.get('x-request-id')).toBeTruthy();
    expect(answer.headers.get('set-cookie')).toBeNull();
    const seen = stack.provider.requests.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${key?.apiKey}`);
    expect(seen?.headers['stability-client-id']).toBe('my-app');
    for (const dropped of ['cookie', 'x-amz-date', 'x-forwarded-for', 'idempotency-key', 'origin'])
      expect(seen?.headers[dropped]).toBeUndefined();
    const after = await view(name, key?.keyId ?? '');
    expect([after.usageCount, after.status]).toEqual([1, 'active']);
  });

  it.each([
    [400, 'bad_request'],
    [403, 'content_moderation'],
    [404, 'not_found'],
    [413, 'payload_too_large'],
    [415, 'unsupported_media_type'],
    [422, 'invalid_parameters'],
  ] as const)('%i (%s): the caller request failed, the use given back, no other key tried', async (status, name_) => {
    // Prepare
    const { name, keys } = await pool(2, { proxyAttempts: 3 });
    for (const key of keys) stack.provider.setKey(key.apiKey, { generateStatus: status });
    const before = stack.provider.requests.length;
    // Act
    const answer = await generate(name);
    // Assess
    expect(answer.status).toBe(status);
    expect((answer.json as { name: string }).name).toBe(name_);
    expect(keypoolHeaders(answer)[1]).toBe('1');
    expect(keypoolHeaders(answer)[2]).toBe('failure');
    expect(stack.provider.requests.length - before).toBe(1);
    for (const key of keys) expect((await view(name, key.keyId)).usageCount).toBe(0);
    expect((await view(name, answer.headers.get('x-keypool-key-id') ?? '')).status).toBe('active');
  });

  it.each([
    [401, {}, 'invalid_key', 'suspect'],
    [402, {}, 'out_of_credits', 'exhausted'],
    [429, { retryAfter: '120' }, 'rate_limited', 'cooling'],
    [500, {}, 'failure', 'active'],
    [503, {}, 'failure', 'active'],
  ] as const)(
    '%i: %s, the use given back, the key %s... and the next key answers',
    async (status, extra, outcome, keyStatus) => {
      // Prepare
      const { name, keys } = await pool(2);
      const [first, second] = keys;
      stack.provider.setKey(first?.apiKey ?? '', { generateStatus: status, ...extra });
      // Act
      const answer = await generate(name);
      // Assess
      expect(answer.status).toBe(200);
      expect(keypoolHeaders(answer)).toEqual([second?.keyId, '2', 'success']);
      const failed = await view(name, first?.keyId ?? '');
      expect([failed.usageCount, failed.status]).toEqual([0, keyStatus]);
      expect((await view(name, second?.keyId ?? '')).usageCount).toBe(1);
      expect(stack.provider.callsWith(first?.apiKey ?? '')).toBe(1);
      if (status === 429) {
        // max(Retry-After 120, cooldownSeconds 60)
        const until = Date.parse((failed as KeyViewBody & { cooldownUntil: string }).cooldownUntil);
        expect(until - Date.now()).toBeGreaterThan(100_000);
      }
      // Logged by its outcome, the provider's body never.
      expect(output.lines()).toContain(`"outcome":"${outcome}"`);
    },
  );

  it('a 429 on the last key: the caller gets it with its Retry-After, and the outcome', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { generateStatus: 429, retryAfter: '7' });
    // Act
    const answer = await generate(name);
    // Assess
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('7');
    expect(keypoolHeaders(answer)).toEqual([keys[0]?.keyId, '1', 'rate_limited']);
    expect((answer.json as { name: string }).name).toBe('rate_limit_exceeded');
    expect((await view(name, keys[0]?.keyId ?? '')).status).toBe('cooling');
  });

  it("a 401's body never carries what it echoes of the key", async () => {
    // Prepare
    const { name, keys } = await pool(1);
    const apiKey = keys[0]?.apiKey ?? '';
    stack.provider.setKey(apiKey, { generateStatus: 401 });
    // Act
    const answer = await generate(name);
    // Assess
    expect(answer.status).toBe(401);
    expect(answer.text).not.toContain(apiKey.slice(0, 10));
    expect(Number(answer.headers.get('content-length'))).toBe(answer.bytes.length);
    expect((await view(name, keys[0]?.keyId ?? '')).status).toBe('suspect');
  });

  it.each([400, 404, 500, 503])(
    "a %i's body never carries what it echoes of the key either (a gateway echoing the request's authorization)",
    async (status) => {
      // Prepare
      const { name, keys } = await pool(1);
      const apiKey = keys[0]?.apiKey ?? '';
      const body = JSON.stringify({
        name: 'bad_request',
        errors: [`unexpected header authorization: Bearer ${apiKey}`],
      });
      stack.provider.setKey(apiKey, { generatePage: { status, contentType: 'application/json', body } });
      // Act
      const answer = await generate(name);
      // Assess
      expect(answer.status).toBe(status);
      expect(answer.text).toContain('unexpected header authorization: Bearer sk-');
      expect(answer.text).not.toContain(apiKey.slice(0, 12));
      expect(Number(answer.headers.get('content-length'))).toBe(answer.bytes.length);
    },
  );

  it('a WAF page (403 text/html): provider_unavailable, the key unchanged, the next key tried', async () => {
    // Prepare
    const { name, keys } = await pool(2);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { generatePage: WAF_PAGE });
    stack.provider.setKey(keys[1]?.apiKey ?? '', { generatePage: WAF_PAGE });
    // Act
    const answer = await generate(name);
    // Assess: the last key's answer, as it came
    expect(answer.status).toBe(403);
    expect(answer.text).toBe(WAF_PAGE.body);
    expect(keypoolHeaders(answer)[1]).toBe('2');
    expect(keypoolHeaders(answer)[2]).toBe('provider_unavailable');
    for (const key of keys) expect(await view(name, key.keyId)).toMatchObject({ usageCount: 0, status: 'active' });
  });

  it.each([
    // An authorization middleware's own error (express-jwt's UnauthorizedError, serialized).
    [401, { name: 'UnauthorizedError', message: 'No authorization token was found', code: 'credentials_required' }],
    // A serialized JavaScript Error from a billing proxy.
    [402, { name: 'Error', message: 'Payment Required' }],
  ] as const)(
    "a gateway's own JSON %i (a name and a message, no error id): provider_unavailable, the key unchanged",
    async (status, page) => {
      // Prepare
      const { name, keys } = await pool(1);
      const body = JSON.stringify(page);
      stack.provider.setKey(keys[0]?.apiKey ?? '', { generatePage: { status, contentType: 'application/json', body } });
      // Act
      const answer = await generate(name);
      // Assess
      expect(answer.status).toBe(status);
      expect(answer.text).toBe(body);
      expect(keypoolHeaders(answer)[2]).toBe('provider_unavailable');
      expect(await view(name, keys[0]?.keyId ?? '')).toMatchObject({ usageCount: 0, status: 'active' });
    },
  );

  it('no connection before the request went out: failure, the use given back, every attempt made; 502', async () => {
    // Prepare
    const { name, keys } = await pool(3, { proxyAttempts: 2 });
    await stack.provider.pause();
    // Act
    const answer = await generate(name).finally(() => stack.provider.resume());
    // Assess
    expectError({ ...answer, body: answer.json }, 502, 'provider_failed');
    expect(keypoolHeaders(answer)[1]).toBe('2');
    expect(keypoolHeaders(answer)[2]).toBe('failure');
    for (const key of keys) expect(await view(name, key.keyId)).toMatchObject({ usageCount: 0, status: 'active' });
  });

  it('a timeout after the request went out: unknown, the use stays counted, no other key tried; 504', async () => {
    // Prepare
    const { name, keys } = await pool(2, { proxyTimeoutSeconds: 1 });
    for (const key of keys) stack.provider.setKey(key.apiKey, { delayMs: 1_500 });
    const before = stack.provider.requests.length;
    // Act
    const answer = await generate(name);
    // Assess
    expectError({ ...answer, body: answer.json }, 504, 'provider_timeout');
    expect(keypoolHeaders(answer)[2]).toBe('unknown');
    expect(stack.provider.requests.length - before).toBe(1);
    const tried = answer.headers.get('x-keypool-key-id') ?? '';
    expect((await view(name, tried)).usageCount).toBe(1);
  });

  it('a reset after the request went out: unknown, counted, no other key tried; 502', async () => {
    // Prepare
    const { name, keys } = await pool(2);
    for (const key of keys) stack.provider.setKey(key.apiKey, { resetBeforeAnswer: true });
    const before = stack.provider.requests.length;
    // Act
    const answer = await generate(name);
    // Assess
    expectError({ ...answer, body: answer.json }, 502, 'provider_failed');
    expect(keypoolHeaders(answer)[2]).toBe('unknown');
    expect(stack.provider.requests.length - before).toBe(1);
    expect((await view(name, answer.headers.get('x-keypool-key-id') ?? '')).usageCount).toBe(1);
  });

  it('a reset in the middle of the body: the caller sees a cut answer, the use stays counted', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { resetMidBody: true, imageBytes: 4096 });
    // Act
    const error = await generate(name).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(Error);
    await expect.poll(() => output.lines(), { timeout: 15_000 }).toContain('"outcome":"unknown"');
    expect((await view(name, keys[0]?.keyId ?? '')).usageCount).toBe(1);
  });

  it('409 no_usable_key when no key is left, the provider never called', async () => {
    // Prepare
    const name = uniqueName('px');
    await stack.api.putPool(name);
    const before = stack.provider.requests.length;
    // Act
    const answer = await generate(name);
    // Assess
    expectError({ ...answer, body: answer.json }, 409, 'no_usable_key');
    expect(stack.provider.requests.length).toBe(before);
  });
});

describe('refusals before any key is taken', () => {
  it.each([
    ['the balance endpoint', 'v1/user/balance'],
    ['an encoded way to it', 'v2beta/%2e%2e/v1/user/balance'],
    ['an encoded slash', 'v2beta%2F..%2Fv1/user/balance'],
    ['a path outside the prefixes', 'v3/anything'],
  ])('403 path_not_allowed for %s', async (_why, path) => {
    // Prepare
    const { name, keys } = await pool(1);
    const before = stack.provider.requests.length;
    // Act
    const answer = await call(name, path, { method: 'GET' });
    // Assess
    expectError({ ...answer, body: answer.json }, 403, 'path_not_allowed');
    expect(stack.provider.requests.length).toBe(before);
    expect((await view(name, keys[0]?.keyId ?? '')).usageCount).toBe(0);
  });

  it.each([
    ['a value', 'prompt=%FF'],
    ['a name', 'ok=1&%C3=1'],
    ['a value holding the bytes of a lone surrogate', 'prompt=%ED%A0%80'],
  ])('400 invalid_request for a query whose %s percent-decodes to bytes that are not UTF-8', async (_why, query) => {
    // Prepare
    const { name, keys } = await pool(1);
    const before = stack.provider.requests.length;
    // Act
    const answer = await generate(name, { query });
    // Assess
    const body = expectError({ ...answer, body: answer.json }, 400, 'invalid_request');
    expect(Object.keys(body).sort()).toEqual(['details', 'error', 'message']);
    expect(body.details?.[0]?.path).toMatch(/^query/);
    expect(stack.provider.requests.length).toBe(before);
    expect((await view(name, keys[0]?.keyId ?? '')).usageCount).toBe(0);
  });

  it('a query that is UTF-8 once percent-decoded reaches the provider as it was sent', async () => {
    // Prepare
    const { name } = await pool(1);
    const query = 'prompt=%E2%82%AC+%zz&b=%F0%9F%90%9F&b=2';
    // Act
    const answer = await generate(name, { query });
    // Assess
    expect(answer.status).toBe(200);
    expect(stack.provider.requests.at(-1)?.query).toBe(query);
  });

  it('409 no_provider for a pool whose provider is none', async () => {
    // Prepare
    const { name } = await pool(1, { provider: 'none' });
    // Act
    const answer = await generate(name);
    // Assess
    expectError({ ...answer, body: answer.json }, 409, 'no_provider');
  });

  it('413 for a body over 10 MiB, nothing taken', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    // Act
    const answer = await call(name, GENERATE, {
      body: new Uint8Array(10 * 1024 * 1024 + 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    // Assess
    expectError({ ...answer, body: answer.json }, 413, 'payload_too_large');
    expect((await view(name, keys[0]?.keyId ?? '')).usageCount).toBe(0);
  });

  it('403 forbidden_origin for a page of another origin, and for a cross-site fetch', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    // Act
    const fromPage = await generate(name, { headers: { origin: 'https://evil.example' } });
    const crossSite = await generate(name, { headers: { 'sec-fetch-site': 'cross-site' } });
    // Assess
    expectError({ ...fromPage, body: fromPage.json }, 403, 'forbidden_origin');
    expectError({ ...crossSite, body: crossSite.json }, 403, 'forbidden_origin');
    expect((await view(name, keys[0]?.keyId ?? '')).usageCount).toBe(0);
  });

  it('405 for a method the route does not take', async () => {
    // Prepare
    const { name } = await pool(1);
    // Act
    const answer = await call(name, GENERATE, { method: 'PUT' as 'POST' });
    // Assess
    expectError({ ...answer, body: answer.json }, 405, 'method_not_allowed');
  });
});

describe('Idempotency-Key', () => {
  it('a retry after a dropped connection replays the image: one provider call, one use', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { delayMs: 300 });
    const headers = { accept: 'image/*', 'idempotency-key': 'job-dropped-1' };
    const form = promptForm('a dropped connection');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    // Act
    const dropped = await generate(name, { headers, body: form, signal: controller.signal }).catch((e: unknown) => e);
    // The first request ran to its end (its audit line) although its caller left.
    const audited = (): boolean =>
      output
        .lines()
        .split('\n')
        .some((line) => line.includes('"audit":"proxy"') && line.includes(`"keyId":"${keys[0]?.keyId ?? ''}"`));
    await expect.poll(audited, { timeout: 15_000 }).toBe(true);
    const retry = await generate(name, { headers, body: form });
    // Assess
    expect(dropped).toBeInstanceOf(Error);
    expect(retry.status).toBe(200);
    expect(retry.bytes.equals(FAKE_PNG)).toBe(true);
    expect(keypoolHeaders(retry)).toEqual([keys[0]?.keyId, '0', 'success']);
    expect(stack.provider.callsWith(keys[0]?.apiKey ?? '')).toBe(1);
    expect((await view(name, keys[0]?.keyId ?? '')).usageCount).toBe(1);
  });

  it('8 requests at once under one key: one provider call, one use; every later retry replays that answer', async () => {
    // Prepare
    const { name, keys } = await pool(2);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { delayMs: 200 });
    stack.provider.setKey(keys[1]?.apiKey ?? '', { delayMs: 200 });
    const headers = { accept: 'image/*', 'idempotency-key': 'job-crowd-1' };
    const form = promptForm('a crowd of retries');
    // Act
    const crowd = await Promise.all(Array.from({ length: 8 }, () => generate(name, { headers, body: form })));
    const later = await Promise.all(Array.from({ length: 3 }, () => generate(name, { headers, body: form })));
    // Assess: one ran; each other was told it runs or, once it ended, got its answer replayed
    const ran = crowd.filter((answer) => answer.status === 200 && answer.headers.get('x-keypool-attempts') !== '0');
    expect(ran).toHaveLength(1);
    for (const answer of crowd.filter((a) => !ran.includes(a))) {
      if (answer.status === 200) expect(keypoolHeaders(answer)[1]).toBe('0');
      else expectError({ ...answer, body: answer.json }, 409, 'request_in_progress');
    }
    for (const answer of later) {
      expect(answer.status).toBe(200);
      expect(answer.bytes.equals(FAKE_PNG)).toBe(true);
      expect(keypoolHeaders(answer)).toEqual([ran[0]?.headers.get('x-keypool-key-id'), '0', 'success']);
    }
    const calls = keys.map((key) => stack.provider.callsWith(key.apiKey));
    const counts = await Promise.all(keys.map(async (key) => (await view(name, key.keyId)).usageCount));
    expect(calls.reduce((a, b) => a + b, 0)).toBe(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('409 request_in_progress with Retry-After while the first runs; 400 for the same key with another request', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { delayMs: 400 });
    const headers = { accept: 'image/*', 'idempotency-key': 'job-running-1' };
    const body = JSON.stringify({ same: true });
    const jsonHeaders = { ...headers, 'content-type': 'application/json' };
    // Act
    const first = call(name, 'v1/generation/sdxl/text-to-image', { body, headers: jsonHeaders });
    await new Promise((done) => setTimeout(done, 150));
    const running = await call(name, 'v1/generation/sdxl/text-to-image', { body, headers: jsonHeaders });
    const other = await call(name, 'v1/generation/sdxl/text-to-image', { body: '{"other":1}', headers: jsonHeaders });
    const done = await first;
    // Assess
    expectError({ ...running, body: running.json }, 409, 'request_in_progress');
    expect(Number(running.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expectError({ ...other, body: other.json }, 400, 'invalid_request');
    expect(done.status).toBe(200);
    expect(stack.provider.callsWith(keys[0]?.apiKey ?? '')).toBe(1);
  });

  it('a 2xx whose body broke off is not asked for again: its retry is 409 idempotency_conflict, one provider call', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { resetMidBody: true, imageBytes: 4096 });
    const headers = { accept: 'image/*', 'idempotency-key': 'job-cut-1' };
    const cut = await generate(name, { headers }).catch((e: unknown) => e);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { resetMidBody: false });
    // Act
    const retry = await generate(name, { headers });
    // Assess
    expect(cut).toBeInstanceOf(Error);
    expectError({ ...retry, body: retry.json }, 409, 'idempotency_conflict');
    expect(stack.provider.callsWith(keys[0]?.apiKey ?? '')).toBe(1);
  });

  it('a request that did not end in a 2xx is not kept: its retry calls the provider again', async () => {
    // Prepare
    const { name, keys } = await pool(1);
    stack.provider.setKey(keys[0]?.apiKey ?? '', { generateStatus: 500 });
    const headers = { accept: 'image/*', 'idempotency-key': 'job-500' };
    // Act
    const first = await generate(name, { headers });
    stack.provider.setKey(keys[0]?.apiKey ?? '', { generateStatus: undefined });
    const retry = await generate(name, { headers });
    // Assess
    expect([first.status, retry.status], retry.text).toEqual([500, 200]);
    expect(stack.provider.callsWith(keys[0]?.apiKey ?? '')).toBe(2);
  });
});

describe('async jobs', () => {
  it('a started job is polled with the key that started it, polls never counted; another id is 404 job_not_found', async () => {
    // Prepare
    const { name, keys } = await pool(3);
    const other = await pool(1);
    // Act
    const started = await call(name, 'v2beta/stable-image/upscale/creative', { body: promptForm() });
    const id = (started.json as { id: string }).id;
    const running = await call(name, `v2beta/results/${id}`, { method: 'GET', headers: { accept: 'image/*' } });
    const done = await call(name, `v2beta/results/${id}`, { method: 'GET', headers: { accept: 'image/*' } });
    const unknown = await call(name, 'v2beta/results/0123456789abcdef', { method: 'GET' });
    const elsewhere = await call(other.name, `v2beta/results/${id}`, { method: 'GET' });
    // Assess
    expect(started.status).toBe(200);
    const keyId = started.headers.get('x-keypool-key-id');
    expect([running.status, running.headers.get('x-keypool-key-id')]).toEqual([202, keyId]);
    expect([done.status, done.headers.get('x-keypool-key-id')]).toEqual([200, keyId]);
    expect(done.bytes.equals(FAKE_PNG)).toBe(true);
    expectError({ ...unknown, body: unknown.json }, 404, 'job_not_found');
    expectError({ ...elsewhere, body: elsewhere.json }, 404, 'job_not_found');
    const counts = await Promise.all(keys.map(async (k) => (await view(name, k.keyId)).usageCount));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
  });
});

describe('secrets', () => {
  it('no key in any answer, log line, item of the table or kept answer after the proxied calls above', async () => {
    // Prepare
    const items = JSON.stringify(await scanTable(stack.table.store.client, stack.table.tableName));
    const logs = output.lines();
    const dataDir = process.env.KEYPOOL_DATA_DIR ?? '';
    const kept = readdirSync(dataDir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => readFileSync(join(entry.parentPath, entry.name)).toString('latin1'));
    // Assess
    expect(secrets.length).toBeGreaterThan(10);
    expect(kept.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      for (const [where, text] of [
        ['answers', answers.join('\n')],
        ['logs', logs],
        ['table', items],
        ['kept answers', kept.join('\n')],
      ] as const)
        expect(text.includes(secret), `${where} hold a key`).toBe(false);
    }
    expect(logs).toContain('"audit":"proxy"');
    expect(logs).toContain('"path":["v2beta","stable-image","generate","core"]');
  });
});
