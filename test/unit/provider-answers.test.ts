/** Proxy mode's outcome table (lib/domain/provider-answers.ts), row by row. */
import { describe, expect, it } from 'vitest';
import { classifyProviderAnswer, needsErrorBody, slotOutcome } from '../../lib/domain/provider-answers.js';

const answer = (status: number, documented = true, retryAfterSeconds?: number) =>
  classifyProviderAnswer({ status, documented, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });

describe('classifyProviderAnswer', () => {
  it.each([200, 201, 202, 204, 299])('a %i is a success: the use stays counted, no other key is tried', (status) => {
    expect(answer(status, false)).toEqual({ outcome: 'success', givesBack: false, failover: false });
  });

  it.each([
    [401, 'invalid_key'],
    [402, 'out_of_credits'],
    [429, 'rate_limited'],
  ] as const)('a %i in the documented shape is %s: the use given back, another key tried', (status, outcome) => {
    expect(answer(status)).toEqual({ outcome, givesBack: true, failover: true });
  });

  it("a documented 429 carries the provider's Retry-After, and only a 429 does", () => {
    expect(answer(429, true, 30)).toEqual({
      outcome: 'rate_limited',
      givesBack: true,
      failover: true,
      retryAfterSeconds: 30,
    });
    expect(answer(401, true, 30)).not.toHaveProperty('retryAfterSeconds');
    expect(answer(429, false, 30)).not.toHaveProperty('retryAfterSeconds');
  });

  it.each([401, 402, 403, 429])(
    'a %i not in the documented shape (a firewall page) is provider_unavailable: the key unchanged, the use given back, another key tried',
    (status) => {
      expect(answer(status, false)).toEqual({ outcome: 'provider_unavailable', givesBack: true, failover: true });
    },
  );

  it('a documented 403 is moderation: a failure of the caller’s request, no other key tried', () => {
    expect(answer(403)).toEqual({ outcome: 'failure', givesBack: true, failover: false });
  });

  it.each([400, 404, 405, 408, 409, 410, 411, 413, 415, 422, 451, 499])(
    'a %i is a failure of the caller’s request whatever its body: the use given back, no other key tried',
    (status) => {
      expect(answer(status)).toEqual({ outcome: 'failure', givesBack: true, failover: false });
      expect(answer(status, false)).toEqual({ outcome: 'failure', givesBack: true, failover: false });
    },
  );

  it.each([500, 502, 503, 504, 599])(
    'a %i is a failure of the provider: the use given back, another key tried',
    (status) => {
      expect(answer(status, false)).toEqual({ outcome: 'failure', givesBack: true, failover: true });
    },
  );

  it('no connection before the request went out is a failure: the use given back, another key tried', () => {
    expect(classifyProviderAnswer({ failed: { sent: false } })).toEqual({
      outcome: 'failure',
      givesBack: true,
      failover: true,
    });
  });

  it('a timeout or reset after the request went out is unknown: the use stays counted, never another key', () => {
    expect(classifyProviderAnswer({ failed: { sent: true } })).toEqual({
      outcome: 'unknown',
      givesBack: false,
      failover: false,
    });
  });

  it.each([100, 301, 302, 304, 307, 308, 600])(
    'a %i (a refused redirect, or no API status) is provider_unavailable: the use given back, no other key tried',
    (status) => {
      expect(answer(status)).toEqual({ outcome: 'provider_unavailable', givesBack: true, failover: false });
    },
  );
});

describe('needsErrorBody', () => {
  it('asks for the body of exactly the statuses whose meaning depends on its shape', () => {
    const needing = Array.from({ length: 500 }, (_, i) => i + 100).filter(needsErrorBody);
    expect(needing).toEqual([401, 402, 403, 429]);
  });
});

describe('slotOutcome', () => {
  it('records provider_unavailable as a failure and every lease outcome as itself', () => {
    expect(slotOutcome('provider_unavailable')).toBe('failure');
    expect(slotOutcome('invalid_key')).toBe('invalid_key');
    expect(slotOutcome('unknown')).toBe('unknown');
  });
});
