/**
 * How withKey (src/with-key.ts) turns what the provider call did into the lease's
 * outcome: from the answer's status, or from what the call threw.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { keySource } from '../src/waiting.js';
import { outcomeFor, outcomeForThrow, withKey } from '../src/with-key.js';

describe('outcomeFor', () => {
  it.each([
    [200, 'success', false],
    [201, 'success', false],
    [401, 'invalid_key', true],
    [402, 'out_of_credits', true],
    [429, 'rate_limited', true],
    [500, 'failure', true],
    [503, 'failure', true],
    [403, 'failure', false],
    [400, 'failure', false],
  ] as const)('%i -> %s, retry %s', (status, outcome, retry) => {
    expect(outcomeFor(status)).toEqual({ outcome, retry });
  });
});

describe('outcomeForThrow', () => {
  it.each([
    [
      'a refused connection (never sent)',
      Object.assign(new TypeError('fetch failed'), {
        cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
      }),
      'failure',
    ],
    ['an unknown host (never sent)', Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND' }), 'failure'],
    [
      'a reset mid-answer',
      Object.assign(new TypeError('fetch failed'), {
        cause: Object.assign(new Error('socket'), { code: 'ECONNRESET' }),
      }),
      'unknown',
    ],
    ['an abort by timeout', new DOMException('The operation was aborted', 'TimeoutError'), 'unknown'],
    ['anything else the call threw', new Error('boom'), 'unknown'],
  ] as const)('%s completes as %s', (_what, error, outcome) => {
    expect(outcomeForThrow(error)).toBe(outcome);
  });
});

describe('withKey and the secret', () => {
  it('never rethrows an error that holds the secret in a field of its own (an HTTP library keeps the request it sent)', async () => {
    // Prepare: an axios-style error, its request's headers kept on it
    const secret = 'sk-test-0123456789abcdef0123456789abcdef';
    const keys = keySource({
      lease: () =>
        Promise.resolve({
          leaseId: 'lease-1',
          keyId: 'key-1',
          apiKey: secret,
          pool: 'p',
          usageCount: 0,
          expiresAt: new Date(0).toISOString(),
        }),
      complete: () => Promise.resolve({}),
    });
    const thrown = Object.assign(new Error('Request failed with status code 500'), {
      config: { headers: { Authorization: `Bearer ${secret}` } },
    });
    // Act
    const error = await withKey({ keys, retries: 0 }, () => Promise.reject(thrown)).catch((e: unknown) => e);
    // Assess: neither a log line (util.inspect) nor a JSON log sees the secret
    expect(error).toBeInstanceOf(Error);
    expect(inspect(error, { depth: null })).not.toContain(secret);
    expect(JSON.stringify(error)).not.toContain(secret);
  });
});

describe('withKey always completes the lease', () => {
  it("also when fn's answer is not a Response (a JavaScript caller's HTTP library): the lease completes unknown, the error is thrown", async () => {
    // Prepare: an axios-style answer, its headers a plain object without get()
    const reports: unknown[] = [];
    const keys = keySource({
      lease: () =>
        Promise.resolve({
          leaseId: 'lease-1',
          keyId: 'key-1',
          apiKey: 'sk-test-0123456789abcdef',
          pool: 'p',
          usageCount: 0,
          expiresAt: new Date(0).toISOString(),
        }),
      complete: (_leaseId, report) => (reports.push(report), Promise.resolve({})),
    });
    const answer = { status: 429, headers: { 'retry-after': '5' } } as unknown as Response;
    // Act
    const error = await withKey({ keys, retries: 0 }, () => Promise.resolve(answer)).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(TypeError);
    expect(reports).toEqual([{ outcome: 'unknown' }]);
  });
});
