/**
 * How withKey (src/with-key.ts) turns what the provider call did into the lease's
 * outcome: from the answer's status, or from what the call threw.
 */
import { describe, expect, it } from 'vitest';
import { outcomeFor, outcomeForThrow } from '../src/with-key.js';

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
