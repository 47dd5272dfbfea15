/**
 * Keypool and Pool speak the pool routes: every request is signed with SigV4 when credentials
 * are available (given, or found by the default chain) and unsigned only when there are none;
 * answers map to one error class per code (a 409's Retry-After included); a lease waits within
 * its bound, carries an Idempotency-Key it repeats on its own retries, and never follows a
 * redirect. A recording server on loopback stands in for keypool.
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import {
  AccessDenied,
  InvalidRequest,
  keyIdFor,
  Keypool,
  KeypoolApiError,
  KeypoolError,
  KeypoolUnavailable,
  LeaseExpired,
  NoUsableKey,
  PoolNotFound,
} from '../src/index.js';
import { NO_AWS_CREDENTIALS, type Recorder, startRecorder, withEnv } from './support/recorder.js';
import { checkSignature } from './support/sigv4.js';

const GRANT = {
  leaseId: 'l',
  keyId: 'k',
  apiKey: 'sk-test-x0123456789abcdef',
  pool: 'p',
  usageCount: 0,
  expiresAt: new Date(0).toISOString(),
};
const COMPLETION = { keyId: 'k', usageCount: 1, status: 'active' };

let server: Recorder;
beforeAll(async () => {
  server = await startRecorder({ status: 200, body: GRANT });
});
afterAll(() => server.close());
beforeEach(() => {
  server.seen.length = 0;
  server.replies.length = 0;
});

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
/** A sleep that only records. */
const recordSleep = (slept: number[]) => (ms: number) => (slept.push(ms), Promise.resolve());

describe('signing', () => {
  it.each([
    [
      'lease',
      '/pools/images-eu/leases',
      '{"maxUses":2,"ttlSeconds":60}',
      (k: Keypool) => k.pool('images-eu').lease({ maxUses: 2, ttlSeconds: 60 }),
    ],
    [
      'complete',
      '/pools/images-eu/leases/k1.0.1.abc/complete',
      '{"outcome":"rate_limited","retryAfterSeconds":30}',
      (k: Keypool) => k.pool('images-eu').complete('k1.0.1.abc', { outcome: 'rate_limited', retryAfterSeconds: 30 }),
    ],
    ['increment', '/pools/images-eu/keys/k1/usage', '', (k: Keypool) => k.pool('images-eu').increment('k1')],
  ] as const)(
    '%s: POST %s signed with SigV4 for execute-api; the signature re-derived from what arrived matches',
    async (_name, path, body, act) => {
      // Prepare
      const client = new Keypool({ url: server.url, region: 'eu-west-1', credentials });
      server.replies.push({ status: 200, body: path.endsWith('leases') ? GRANT : { ...COMPLETION, usageCount: 1 } });
      // Act
      await act(client);
      // Assess
      const request = server.seen[0];
      if (!request) throw new Error('nothing arrived');
      expect(server.seen).toHaveLength(1);
      expect([request.method, request.path, request.body.toString('utf8')]).toEqual(['POST', path, body]);
      const check = checkSignature(request, credentials.secretAccessKey);
      expect(check).toMatchObject({ accessKeyId: 'AKIDEXAMPLE', region: 'eu-west-1', service: 'execute-api' });
      expect(check.signedHeaders).toContain('host');
      expect(check.signedHeaders).toContain('x-amz-date');
      expect(check.signature).toMatch(/^[0-9a-f]{64}$/);
      expect(check.signature).toBe(check.expected);
    },
  );

  it('a signature made with other credentials does not verify: the check can fail', async () => {
    // Prepare
    const client = new Keypool({ url: server.url, region: 'eu-west-1', credentials });
    // Act
    await client.pool('p').lease();
    // Assess
    const request = server.seen[0];
    if (!request) throw new Error('nothing arrived');
    const check = checkSignature(request, 'another-secret');
    expect(check.signature).not.toBe(check.expected);
  });

  it("signs with the default chain's credentials when it finds some (here, from the environment), for AWS_REGION", async () => {
    // Prepare
    const env = {
      ...NO_AWS_CREDENTIALS,
      AWS_ACCESS_KEY_ID: 'AKIDFROMENV',
      AWS_SECRET_ACCESS_KEY: 'secret-from-env',
      AWS_REGION: 'ap-south-1',
    };
    // Act
    const signs = await withEnv(env, async () => {
      const client = new Keypool({ url: server.url });
      await client.pool('p').lease();
      return client.signs();
    });
    // Assess
    const check = checkSignature(server.seen[0] ?? ({} as never), 'secret-from-env');
    expect(signs).toBe(true);
    expect(check).toMatchObject({ accessKeyId: 'AKIDFROMENV', region: 'ap-south-1', service: 'execute-api' });
    expect(check.signature).toBe(check.expected);
  });

  it('goes unsigned only when the default chain finds no credentials (the local stack checks none)', async () => {
    // Act
    const signs = await withEnv(NO_AWS_CREDENTIALS, async () => {
      const client = new Keypool({ url: server.url });
      await client.pool('p').lease();
      return client.signs();
    });
    // Assess
    expect(signs).toBe(false);
    expect(server.seen[0]?.headers.authorization).toBeUndefined();
    expect(server.seen[0]?.headers['x-amz-date']).toBeUndefined();
  });

  it('an unsigned request refused by API Gateway (403, its own body) is AccessDenied saying no credentials were found', async () => {
    // Prepare
    server.replies.push({ status: 403, body: { message: 'Forbidden' } });
    // Act
    const error = await withEnv(NO_AWS_CREDENTIALS, () =>
      new Keypool({ url: server.url })
        .pool('p')
        .lease()
        .catch((e: unknown) => e),
    );
    // Assess
    expect(error).toBeInstanceOf(AccessDenied);
    expect((error as Error).message).toBe('Forbidden (the request went unsigned: no AWS credentials were found)');
  });

  it('refuses credentials it could only sign for a guessed region; an execute-api URL names its own', () => {
    // Act / Assess
    return withEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined }, () => {
      expect(() => new Keypool({ url: 'https://keypool.example.com', credentials })).toThrow(/region/);
      expect(
        () => new Keypool({ url: 'https://abc123.execute-api.ap-south-1.amazonaws.com', credentials }),
      ).not.toThrow();
      return Promise.resolve();
    });
  });
});

describe('answers', () => {
  it('uses the pool stability when none is named, under the base URL path (an API stage)', async () => {
    // Act
    await new Keypool({ url: `${server.url}/prod`, credentials, region: 'eu-west-1' }).pool().lease();
    // Assess
    expect(server.seen.map((r) => [r.path, r.body.toString()])).toEqual([['/prod/pools/stability/leases', '{}']]);
  });

  it.each(ERROR_CODES)(
    'an answer with error code %s is its own class, with the code, the status and the message',
    async (code) => {
      // Prepare
      server.replies.push({ status: 418, body: { error: code, message: `refused: ${code}` } });
      // Act
      const error = await new Keypool({ url: server.url, credentials, retries: 0 })
        .pool('p')
        .complete('x')
        .catch((e: unknown) => e);
      // Assess
      expect(error).toBeInstanceOf(KeypoolError);
      expect(error).not.toBeInstanceOf(KeypoolApiError);
      expect(error).toMatchObject({ code, status: 418, message: `refused: ${code}` });
      expect((error as Error).name).toMatch(/^[A-Z][A-Za-z]+$/);
      expect((error as Error).name).not.toBe('KeypoolError');
    },
  );

  it('a code newer than the package is a KeypoolApiError with that code; InvalidRequest keeps its details', async () => {
    // Prepare
    server.replies.push({ status: 422, body: { error: 'something_new', message: 'm' } });
    server.replies.push({
      status: 400,
      body: { error: 'invalid_request', message: 'no', details: [{ path: 'body.maxUses', message: 'at most 2' }] },
    });
    const pool = new Keypool({ url: server.url, credentials }).pool('p');
    // Act
    const newer = await pool.complete('x').catch((e: unknown) => e);
    const invalid = await pool.complete('x').catch((e: unknown) => e);
    // Assess
    expect(newer).toBeInstanceOf(KeypoolApiError);
    expect(newer).toMatchObject({ code: 'something_new', status: 422 });
    expect(invalid).toBeInstanceOf(InvalidRequest);
    expect((invalid as InvalidRequest).details).toEqual([{ path: 'body.maxUses', message: 'at most 2' }]);
  });

  it('never puts a secret in a message, even when an answer in between echoes one', async () => {
    // Prepare
    const secret = 'sk-live-0123456789abcdefABCDEF';
    server.replies.push({ status: 502, body: { message: `upstream said: Bearer ${secret}` } });
    // Act
    const error = await new Keypool({ url: server.url, credentials, retries: 0 })
      .pool('p')
      .complete('x')
      .catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(KeypoolApiError);
    expect((error as Error).message).toBe('upstream said: Bearer sk-...');
    expect(JSON.stringify(error) + String((error as Error).stack)).not.toContain(secret.slice(3));
  });

  it("never puts a secret in a 400's details: each refused field is text, masked as messages are", async () => {
    // Prepare: a gateway between the client and keypool echoes a secret in a refused field
    const secret = 'sk-live-0123456789abcdefABCDEF';
    server.replies.push({
      status: 400,
      body: {
        error: 'invalid_request',
        message: 'refused',
        details: [{ path: `headers.${secret}`, message: `got ${secret}`, echo: secret }, 'not a field', { path: 3 }],
      },
    });
    // Act
    const error = await new Keypool({ url: server.url, credentials })
      .pool('p')
      .complete('x')
      .catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(InvalidRequest);
    expect((error as InvalidRequest).details).toEqual([
      { path: 'headers.sk-...', message: 'got sk-...' },
      { path: '', message: '' },
    ]);
    expect(inspect(error, { depth: 8 }) + JSON.stringify(error)).not.toContain(secret.slice(3));
  });

  it('409 no_usable_key: NoUsableKey with the API message and retryAfterSeconds from the body, or from Retry-After alone', async () => {
    // Prepare
    const pool = new Keypool({ url: server.url, credentials }).pool('p');
    const message = 'pool "p" has no active key with usageCount <= 5; a key comes back from its cooldown in 42 s';
    server.replies.push(
      {
        status: 409,
        headers: { 'retry-after': '42' },
        body: { error: 'no_usable_key', message, retryAfterSeconds: 42 },
      },
      { status: 409, headers: { 'retry-after': '7' }, body: { error: 'no_usable_key', message: 'none' } },
      { status: 409, body: { error: 'no_usable_key', message: 'none' } },
    );
    // Act
    const errors = [
      await pool.lease().catch((e: unknown) => e),
      await pool.lease().catch((e: unknown) => e),
      await pool.lease().catch((e: unknown) => e),
    ];
    // Assess
    for (const error of errors) expect(error).toBeInstanceOf(NoUsableKey);
    expect(errors.map((e) => (e as NoUsableKey).retryAfterSeconds)).toEqual([42, 7, undefined]);
    expect((errors[0] as Error).message).toBe(message);
    expect(server.seen).toHaveLength(3);
  });

  it("409 no_usable_key carries why the pool is dry: unusable by why, countedAt, nextReturnAt; counts not in the API's shape are left out", async () => {
    // Prepare
    const unusable = {
      overCap: 4,
      cooling: 1,
      suspect: 0,
      exhausted: 0,
      disabled: 1,
      undecryptable: 0,
      accountExhausted: 0,
    };
    const counted = { countedAt: '2026-12-07T05:40:00.000Z', nextReturnAt: '2026-12-07T05:40:42.000Z' };
    const dry = { error: 'no_usable_key', message: 'dry', retryAfterSeconds: 42 };
    server.replies.push(
      { status: 409, body: { ...dry, unusable, ...counted } },
      { status: 409, body: dry },
      { status: 409, body: { ...dry, unusable: { ...unusable, cooling: -1 }, countedAt: 'sk-live-0123456789abcdef' } },
    );
    const pool = new Keypool({ url: server.url, credentials }).pool('p');
    // Act
    const [full, bare, malformed] = [
      await pool.lease().catch((e: unknown) => e),
      await pool.lease().catch((e: unknown) => e),
      await pool.lease().catch((e: unknown) => e),
    ] as NoUsableKey[];
    // Assess
    expect(full).toBeInstanceOf(NoUsableKey);
    expect(full).toMatchObject({ retryAfterSeconds: 42, unusable, ...counted });
    expect(bare).toMatchObject({ retryAfterSeconds: 42, unusable: undefined, countedAt: undefined });
    expect(malformed).toMatchObject({ unusable: undefined, countedAt: undefined, nextReturnAt: undefined });
  });

  it('404 pool_not_found: PoolNotFound', async () => {
    // Prepare
    server.replies.push({ status: 404, body: { error: 'pool_not_found', message: 'no pool "nowhere"' } });
    // Act
    const error = await new Keypool({ url: server.url, credentials })
      .pool('nowhere')
      .lease()
      .catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(PoolNotFound);
    expect(error).toMatchObject({ code: 'pool_not_found', status: 404 });
  });

  it('never follows a redirect: the signed request is not resent and a 3xx is an error', async () => {
    // Prepare
    server.replies.push({ status: 307, headers: { location: '/elsewhere' } });
    // Act
    const error = await new Keypool({ url: server.url, credentials })
      .pool('p')
      .lease({ maxUses: 3 })
      .catch((e: unknown) => e);
    // Assess
    expect(server.seen.map((r) => r.path)).toEqual(['/pools/p/leases']);
    expect(error).toBeInstanceOf(KeypoolApiError);
    expect(error).toMatchObject({ code: 'redirect', status: 307 });
  });

  it('refuses a pool name the API would refuse, and a negative wait, before anything is sent', () => {
    // Prepare
    const client = new Keypool({ url: server.url, credentials });
    // Act / Assess
    expect(() => client.pool('../keys')).toThrow(/pool/);
    expect(() => client.pool('..')).toThrow(/pool/);
    expect(() => new Keypool({ url: server.url, maxWaitSeconds: -1 })).toThrow(/maxWaitSeconds/);
    expect(server.seen).toEqual([]);
  });
});

describe('waiting for a cooling key', () => {
  it('a dry pool whose key comes back within maxWaitSeconds is waited out and leased again', async () => {
    // Prepare
    const slept: number[] = [];
    const client = new Keypool({
      url: server.url,
      credentials,
      maxWaitSeconds: 5,
      sleep: recordSleep(slept),
      random: () => 0.5,
    });
    server.replies.push({
      status: 409,
      headers: { 'retry-after': '2' },
      body: { error: 'no_usable_key', message: 'none', retryAfterSeconds: 2 },
    });
    // Act
    const lease = await client.pool('p').lease();
    // Assess
    expect(lease.leaseId).toBe('l');
    expect(slept).toEqual([2_000 + 0.5 * 200]);
    expect(server.seen).toHaveLength(2);
  });

  it('a key that comes back after the bound is not waited for: NoUsableKey at once, and a per-call bound overrides the client', async () => {
    // Prepare
    const slept: number[] = [];
    const pool = new Keypool({ url: server.url, credentials, maxWaitSeconds: 5, sleep: recordSleep(slept) }).pool('p');
    server.replies.push(
      { status: 409, body: { error: 'no_usable_key', message: 'none', retryAfterSeconds: 6 } },
      { status: 409, body: { error: 'no_usable_key', message: 'none', retryAfterSeconds: 1 } },
    );
    // Act
    const beyond = await pool.lease().catch((e: unknown) => e);
    const noWait = await pool.lease({ maxWaitSeconds: 0 }).catch((e: unknown) => e);
    // Assess
    expect((beyond as NoUsableKey).retryAfterSeconds).toBe(6);
    expect((noWait as NoUsableKey).retryAfterSeconds).toBe(1);
    expect(slept).toEqual([]);
    expect(server.seen).toHaveLength(2);
  });
});

describe('Idempotency-Key and retries', () => {
  const idempotencyKeys = (): (string | undefined)[] =>
    server.seen.map((r) => r.headers['idempotency-key'] as string | undefined);

  it('sends one with every lease, a new one for each lease() call, and signs it', async () => {
    // Prepare
    const pool = new Keypool({ url: server.url, region: 'eu-west-1', credentials }).pool('p');
    // Act
    await pool.lease();
    await pool.lease();
    // Assess
    const [first, second] = idempotencyKeys();
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(second).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).not.toBe(first);
    expect(checkSignature(server.seen[0] ?? ({} as never), credentials.secretAccessKey).signedHeaders).toContain(
      'idempotency-key',
    );
  });

  it('an answer lost on the way back (reset), or a 5xx, is asked again with the same key: the server replays the lease', async () => {
    // Prepare
    const slept: number[] = [];
    const pool = new Keypool({ url: server.url, credentials, sleep: recordSleep(slept) }).pool('p');
    server.replies.push({ status: 200, drop: true }, { status: 502, body: { message: 'Internal Server Error' } });
    // Act
    const lease = await pool.lease({ maxUses: 2 });
    // Assess
    expect(lease.leaseId).toBe('l');
    expect(server.seen).toHaveLength(3);
    expect(new Set(idempotencyKeys()).size).toBe(1);
    expect(server.seen.map((r) => r.body.toString())).toEqual(['{"maxUses":2}', '{"maxUses":2}', '{"maxUses":2}']);
    expect(slept).toHaveLength(2);
  });

  it('waits out a short Retry-After (503, 429) before asking again; a long one is the answer', async () => {
    // Prepare
    const slept: number[] = [];
    const pool = new Keypool({ url: server.url, credentials, sleep: recordSleep(slept) }).pool('p');
    server.replies.push(
      { status: 503, headers: { 'retry-after': '5' }, body: { error: 'sealing_unavailable', message: 'm' } },
      { status: 429, headers: { 'retry-after': '1' }, body: { message: 'Too Many Requests' } },
      { status: 200, body: GRANT },
      { status: 429, headers: { 'retry-after': '60' }, body: { message: 'Too Many Requests' } },
    );
    // Act
    const lease = await pool.lease();
    const error = await pool.lease().catch((e: unknown) => e);
    // Assess
    expect(lease.leaseId).toBe('l');
    expect(slept).toEqual([5_000, 1_000]);
    expect(error).toMatchObject({ status: 429, retryAfterSeconds: 60 });
    expect(server.seen).toHaveLength(4);
  });

  it('gives up after its retries (KeypoolUnavailable, its cause the lost answer); a 4xx is never retried', async () => {
    // Prepare
    const pool = new Keypool({ url: server.url, credentials, retries: 1, sleep: () => Promise.resolve() }).pool('p');
    server.replies.push({ status: 200, drop: true }, { status: 200, drop: true });
    server.replies.push({ status: 400, body: { error: 'invalid_request', message: 'no' } });
    // Act
    const lost = await pool.lease().catch((e: unknown) => e);
    const refused = await pool.lease().catch((e: unknown) => e);
    // Assess
    expect(lost).toBeInstanceOf(KeypoolUnavailable);
    expect((lost as Error).cause).toBeInstanceOf(Error);
    expect(refused).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(server.seen).toHaveLength(3);
  });

  it("sends a caller's own key as given: a retry after a restart replays the same lease", async () => {
    // Prepare
    const pool = new Keypool({ url: server.url, credentials }).pool('p');
    // Act
    await pool.lease({ idempotencyKey: 'render-job-42' });
    await pool.lease({ idempotencyKey: 'render-job-42' });
    // Assess
    expect(idempotencyKeys()).toEqual(['render-job-42', 'render-job-42']);
  });

  it('a count without a lease is never sent twice: its lost answer is KeypoolUnavailable after one request', async () => {
    // Prepare
    const pool = new Keypool({ url: server.url, credentials, sleep: () => Promise.resolve() }).pool('p');
    server.replies.push({ status: 200, drop: true });
    // Act
    const error = await pool.increment('k_0').catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(KeypoolUnavailable);
    expect(server.seen).toHaveLength(1);
  });

  it('incrementUsage counts the key holding a secret by its id; the secret itself is never sent', async () => {
    // Prepare
    const secret = 'sk-test-0123456789abcdef0123';
    server.replies.push({ status: 200, body: { keyId: keyIdFor(secret), usageCount: 4 } });
    // Act
    const counted = await new Keypool({ url: server.url, credentials }).pool('p').incrementUsage(secret);
    // Assess
    expect(keyIdFor(secret)).toMatch(/^k_[0-9a-f]{24}$/);
    expect(server.seen.map((r) => r.path)).toEqual([`/pools/p/keys/${keyIdFor(secret)}/usage`]);
    expect(JSON.stringify(server.seen)).not.toContain(secret);
    expect(counted.usageCount).toBe(4);
  });
});

describe('a Lease', () => {
  it('shows its ids and count, never the secret, when printed or turned into JSON', async () => {
    // Act
    const lease = await new Keypool({ url: server.url, credentials }).pool('p').lease();
    // Assess
    expect(lease.apiKey).toBe(GRANT.apiKey);
    expect(lease).toMatchObject({ keyId: 'k', leaseId: 'l', usageCount: 0, expiresAt: GRANT.expiresAt });
    expect(JSON.stringify(lease)).not.toContain(GRANT.apiKey);
    expect(inspect(lease, { showHidden: true, depth: 5 })).not.toContain(GRANT.apiKey);
    expect(JSON.parse(JSON.stringify(lease))).toMatchObject({ keyId: 'k', leaseId: 'l', usageCount: 0 });
  });

  it('completes once: success by default, the same outcome again answers the first completion, another outcome is refused', async () => {
    // Prepare
    const lease = await new Keypool({ url: server.url, credentials }).pool('p').lease();
    server.replies.push({ status: 200, body: COMPLETION });
    // Act
    const first = await lease.complete();
    const again = await lease.complete('success');
    const other = await lease.complete('failure').catch((e: unknown) => e);
    // Assess
    expect(first).toEqual(COMPLETION);
    expect(again).toBe(first);
    expect(other).toBeInstanceOf(Error);
    expect(lease.outcome).toBe('success');
    expect(server.seen.map((r) => [r.path, r.body.toString()])).toEqual([
      ['/pools/p/leases', '{}'],
      ['/pools/p/leases/l/complete', '{"outcome":"success"}'],
    ]);
  });

  it.each([
    ['30', 30],
    [12.2, 13],
    [86_400, 3600],
    ['Wed, 21 Oct 2015 07:28:00 GMT', undefined],
    [null, undefined],
  ] as const)('rate_limited with Retry-After %s asks the key to rest %s s', async (retryAfter, rest) => {
    // Prepare
    const lease = await new Keypool({ url: server.url, credentials }).pool('p').lease();
    server.replies.push({ status: 200, body: COMPLETION });
    // Act
    await lease.complete('rate_limited', { retryAfterSeconds: retryAfter });
    // Assess
    expect(JSON.parse(server.seen[1]?.body.toString() ?? '')).toEqual(
      rest === undefined ? { outcome: 'rate_limited' } : { outcome: 'rate_limited', retryAfterSeconds: rest },
    );
  });

  it('an expired lease: success resolves undefined (the use stayed counted, as asked); a refund rejects with LeaseExpired', async () => {
    // Prepare
    const pool = new Keypool({ url: server.url, credentials }).pool('p');
    const kept = await pool.lease();
    const refunded = await pool.lease();
    const expired = { status: 410, body: { error: 'lease_expired', message: 'lease "l" expired' } };
    server.replies.push(expired, expired);
    // Act
    const keptAnswer = await kept.complete('success');
    const refundAnswer = await refunded.complete('failure').catch((e: unknown) => e);
    // Assess
    expect(keptAnswer).toBeUndefined();
    expect(kept.outcome).toBe('success');
    expect(refundAnswer).toBeInstanceOf(LeaseExpired);
    expect(refunded.outcome).toBeUndefined();
  });
});
