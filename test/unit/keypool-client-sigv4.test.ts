/**
 * KeypoolClient speaks the pool routes: it signs requests to a deployed API with SigV4 exactly
 * as sent (the local stack gets plain HTTP), maps the API's answers to typed errors (a 409's
 * Retry-After included), waits within its bound, and never follows a redirect.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeypoolApiError, KeypoolClient } from '../../lib/client/keypool-client.js';
import { NoUsableKey, PoolNotFound } from '../../lib/domain/errors.js';
import { DEFAULT_POOL } from '../../lib/domain/types.js';

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** the answer is lost: the connection is reset after the request arrived */
  drop?: boolean;
}

const GRANT = {
  leaseId: 'l',
  keyId: 'k',
  apiKey: 'sk-test-x',
  pool: 'p',
  usageCount: 0,
  expiresAt: new Date(0).toISOString(),
};

const seen: Seen[] = [];
/** Answers for the next requests, in order; when none is left, a lease grant for any path. */
const replies: Reply[] = [];
let url = '';
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  request.on('end', () => {
    seen.push({
      method: request.method ?? '',
      path: request.url ?? '',
      headers: request.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    });
    const reply = replies.shift() ?? { status: 200, body: GRANT };
    if (reply.drop) {
      request.socket.destroy();
      return;
    }
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
    response.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...reply.headers,
    });
    response.end(text);
  });
});

beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

beforeEach(() => {
  seen.length = 0;
  replies.length = 0;
});

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

/** The Authorization header SigV4 computes again from what arrived. */
async function signatureOf(request: Seen): Promise<string | undefined> {
  const authorization = String(request.headers.authorization);
  const amzDate = String(request.headers['x-amz-date']);
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const signedNames = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  const headers = Object.fromEntries(signedNames.map((name) => [name, String(request.headers[name])]));
  const signer = new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials, sha256: Sha256 });
  const again = await signer.sign(
    new HttpRequest({
      method: request.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: request.path,
      headers,
      ...(request.body === '' ? {} : { body: request.body }),
    }),
    { signingDate },
  );
  return again.headers.authorization;
}

describe('KeypoolClient', () => {
  it.each([
    [
      'lease',
      '/pools/images-eu/leases',
      '{"maxUses":2,"ttlSeconds":60}',
      (c: KeypoolClient) => c.lease({ maxUses: 2, ttlSeconds: 60 }),
    ],
    [
      'complete',
      '/pools/images-eu/leases/k1.0.1.abc/complete',
      '{"outcome":"rate_limited","retryAfterSeconds":30}',
      (c: KeypoolClient) => c.complete('k1.0.1.abc', { outcome: 'rate_limited', retryAfterSeconds: 30 }),
    ],
    ['increment', '/pools/images-eu/keys/k1/usage', '', (c: KeypoolClient) => c.increment('k1')],
  ] as const)(
    '%s: POST %s signed with SigV4 for execute-api, the signature recomputed from what arrived matches',
    async (_name, path, body, act) => {
      // Prepare
      const client = new KeypoolClient({ url, pool: 'images-eu', signing: 'sigv4', region: 'eu-west-1', credentials });
      // Act
      await act(client);
      // Assess
      const request = seen[0];
      if (!request) throw new Error('nothing arrived');
      expect(seen).toHaveLength(1);
      expect([request.method, request.path, request.body]).toEqual(['POST', path, body]);
      const authorization = String(request.headers.authorization);
      expect(authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
      );
      expect(await signatureOf(request)).toBe(authorization);
    },
  );

  it('uses the default pool when none is given, under the base URL path (an API stage)', async () => {
    // Prepare
    const client = new KeypoolClient({ url: `${url}/prod` });
    // Act
    await client.lease();
    // Assess
    expect(seen.map((r) => [r.path, r.body])).toEqual([[`/prod/pools/${DEFAULT_POOL}/leases`, '{}']]);
  });

  it('speaks plain HTTP to a loopback URL, and maps an error answer to a typed error with the API code', async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'p' });
    replies.push({ status: 410, body: { error: 'lease_expired', message: 'lease "x" expired' } });
    // Act
    const error = await client.complete('x', { outcome: 'success' }).catch((e: unknown) => e);
    // Assess
    expect(seen[0]?.headers.authorization).toBeUndefined();
    expect(error).toBeInstanceOf(KeypoolApiError);
    expect(error).toMatchObject({ code: 'lease_expired', status: 410 });
  });

  it('409 no_usable_key: NoUsableKey with the API message and retryAfterSeconds from the body, or from Retry-After alone', async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'p' });
    const message = 'pool "p" has no active key with usageCount <= 5; a key comes back from its cooldown in 42 s';
    replies.push({
      status: 409,
      headers: { 'retry-after': '42' },
      body: { error: 'no_usable_key', message, retryAfterSeconds: 42 },
    });
    replies.push({ status: 409, headers: { 'retry-after': '7' }, body: { error: 'no_usable_key', message: 'none' } });
    replies.push({ status: 409, body: { error: 'no_usable_key', message: 'none' } });
    // Act
    const errors = [
      await client.lease().catch((e: unknown) => e),
      await client.lease().catch((e: unknown) => e),
      await client.lease().catch((e: unknown) => e),
    ];
    // Assess
    for (const error of errors) expect(error).toBeInstanceOf(NoUsableKey);
    expect(errors.map((e) => (e as NoUsableKey).retryAfterSeconds)).toEqual([42, 7, undefined]);
    expect((errors[0] as Error).message).toBe(message);
    expect(seen).toHaveLength(3);
  });

  it('404 pool_not_found: PoolNotFound, the class a Broker throws', async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'nowhere' });
    replies.push({ status: 404, body: { error: 'pool_not_found', message: 'no pool "nowhere"' } });
    // Act
    const error = await client.lease().catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(PoolNotFound);
  });

  it('with maxWaitSeconds, a dry pool whose key comes back within the bound is waited out and leased again', async () => {
    // Prepare
    const slept: number[] = [];
    const client = new KeypoolClient({
      url,
      pool: 'p',
      maxWaitSeconds: 5,
      sleep: (ms) => (slept.push(ms), Promise.resolve()),
      random: () => 0.5,
    });
    replies.push({
      status: 409,
      headers: { 'retry-after': '2' },
      body: { error: 'no_usable_key', message: 'none', retryAfterSeconds: 2 },
    });
    // Act
    const grant = await client.lease();
    // Assess
    expect(grant.leaseId).toBe('l');
    expect(slept).toEqual([2_000 + 0.5 * 200]);
    expect(seen).toHaveLength(2);
  });

  it('a key that comes back after the bound is not waited for: NoUsableKey at once, and a per-call bound overrides the client', async () => {
    // Prepare
    const slept: number[] = [];
    const client = new KeypoolClient({
      url,
      pool: 'p',
      maxWaitSeconds: 5,
      sleep: (ms) => (slept.push(ms), Promise.resolve()),
    });
    replies.push({ status: 409, body: { error: 'no_usable_key', message: 'none', retryAfterSeconds: 6 } });
    replies.push({ status: 409, body: { error: 'no_usable_key', message: 'none', retryAfterSeconds: 1 } });
    // Act
    const beyond = await client.lease().catch((e: unknown) => e);
    const noWait = await client.lease({}, { maxWaitSeconds: 0 }).catch((e: unknown) => e);
    // Assess
    expect((beyond as NoUsableKey).retryAfterSeconds).toBe(6);
    expect((noWait as NoUsableKey).retryAfterSeconds).toBe(1);
    expect(slept).toEqual([]);
    expect(seen).toHaveLength(2);
  });

  it('never follows a redirect: the signed request is not resent and a 3xx is an error', async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'p', signing: 'sigv4', region: 'eu-west-1', credentials });
    replies.push({ status: 307, headers: { location: '/elsewhere' } });
    // Act
    const error = await client.lease({ maxUses: 3 }).catch((e: unknown) => e);
    // Assess
    expect(seen.map((r) => r.path)).toEqual(['/pools/p/leases']);
    expect(error).toBeInstanceOf(KeypoolApiError);
    expect(error).toMatchObject({ code: 'redirect', status: 307 });
  });

  it('refuses a pool name the API would refuse before anything is sent', () => {
    // Act / Assess
    expect(() => new KeypoolClient({ url, pool: '../keys' })).toThrow(/pool/);
    expect(() => new KeypoolClient({ url, pool: 'p', maxWaitSeconds: -1 })).toThrow(/maxWaitSeconds/);
    expect(seen).toEqual([]);
  });

  it('refuses SigV4 without a region rather than signing for the wrong one', () => {
    // Prepare
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      // Act / Assess
      expect(() => new KeypoolClient({ url: 'https://keypool.example.com', credentials })).toThrow(/region/);
      expect(
        () => new KeypoolClient({ url: 'https://abc123.execute-api.ap-south-1.amazonaws.com', credentials }),
      ).not.toThrow();
    } finally {
      if (saved.r !== undefined) process.env.AWS_REGION = saved.r;
      if (saved.d !== undefined) process.env.AWS_DEFAULT_REGION = saved.d;
    }
  });
});

describe('KeypoolClient: Idempotency-Key on every lease', () => {
  const idempotencyKeys = (): (string | undefined)[] =>
    seen.map((r) => r.headers['idempotency-key'] as string | undefined);

  it('sends one with every lease, a new one for each lease() call, and signs it', async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'p', signing: 'sigv4', region: 'eu-west-1', credentials });
    // Act
    await client.lease();
    await client.lease();
    // Assess
    const [first, second] = idempotencyKeys();
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(second).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).not.toBe(first);
    expect(String(seen[0]?.headers.authorization)).toMatch(/SignedHeaders=[a-z0-9;-]*idempotency-key/);
  });

  it('an answer lost on the way back (reset), or a 5xx, is asked again with the same key: the server replays the lease', async () => {
    // Prepare
    const slept: number[] = [];
    const client = new KeypoolClient({ url, pool: 'p', sleep: (ms) => (slept.push(ms), Promise.resolve()) });
    replies.push({ status: 200, drop: true }, { status: 502, body: { message: 'Internal Server Error' } });
    // Act
    const grant = await client.lease({ maxUses: 2 });
    // Assess
    expect(grant.leaseId).toBe('l');
    expect(seen).toHaveLength(3);
    expect(new Set(idempotencyKeys()).size).toBe(1);
    expect(seen.map((r) => r.body)).toEqual(['{"maxUses":2}', '{"maxUses":2}', '{"maxUses":2}']);
    expect(slept).toHaveLength(2);
  });

  it('waits out a short Retry-After (503, 429) before asking again; a long one is the answer', async () => {
    // Prepare
    const slept: number[] = [];
    const client = new KeypoolClient({ url, pool: 'p', sleep: (ms) => (slept.push(ms), Promise.resolve()) });
    replies.push({
      status: 503,
      headers: { 'retry-after': '5' },
      body: { error: 'sealing_unavailable', message: 'm' },
    });
    replies.push({ status: 429, headers: { 'retry-after': '1' }, body: { message: 'Too Many Requests' } });
    replies.push({ status: 200, body: GRANT });
    replies.push({ status: 429, headers: { 'retry-after': '60' }, body: { message: 'Too Many Requests' } });
    // Act
    const grant = await client.lease();
    const error = await client.lease().catch((e: unknown) => e);
    // Assess
    expect(grant.leaseId).toBe('l');
    expect(slept).toEqual([5_000, 1_000]);
    expect(error).toMatchObject({ status: 429 });
    expect(seen).toHaveLength(4);
  });

  it('gives up after its retries with the last error; a 4xx is never retried', async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'p', leaseRetries: 1, sleep: () => Promise.resolve() });
    replies.push({ status: 200, drop: true }, { status: 200, drop: true });
    replies.push({ status: 400, body: { error: 'invalid_request', message: 'no' } });
    // Act
    const lost = await client.lease().catch((e: unknown) => e);
    const refused = await client.lease().catch((e: unknown) => e);
    // Assess
    expect(lost).toBeInstanceOf(Error);
    expect(refused).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(seen).toHaveLength(3);
  });

  it("sends a caller's own key as given: a retry after a restart replays the same lease", async () => {
    // Prepare
    const client = new KeypoolClient({ url, pool: 'p' });
    // Act
    await client.lease({}, { idempotencyKey: 'render-job-42' });
    await client.lease({}, { idempotencyKey: 'render-job-42' });
    // Assess
    expect(idempotencyKeys()).toEqual(['render-job-42', 'render-job-42']);
  });
});
