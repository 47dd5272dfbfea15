/** Which provider paths proxy mode reaches, which headers cross it, and how a Retry-After is read. */
import { describe, expect, it } from 'vitest';
import {
  forwardedHeaders,
  retryAfterSeconds,
  returnedHeaders,
  unsendableHeader,
} from '../../lib/domain/proxy-headers.js';
import { polledJobId, providerPath, startedJobId } from '../../lib/domain/proxy-paths.js';

describe('providerPath', () => {
  it.each([
    ['v2beta/stable-image/generate/core', 'v2beta/stable-image/generate/core'],
    ['v2alpha/3d/stable-point-aware-3d', 'v2alpha/3d/stable-point-aware-3d'],
    [
      'v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image',
      'v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image',
    ],
    ['v2beta/stable-image/generate/%63ore', 'v2beta/stable-image/generate/core'],
    ['v2beta/results/abc123', 'v2beta/results/abc123'],
  ])('lets %s through as %s', (raw, path) => {
    expect(providerPath('stability', raw)).toBe(path);
  });

  it.each([
    ['the balance endpoint', 'v1/user/balance'],
    ['the account endpoint', 'v1/user/account'],
    ['the account endpoint in other case', 'v1/USER/account'],
    ['the account endpoint, encoded', 'v1/%75ser/balance'],
    ['a path outside the prefixes', 'v3/anything'],
    ['a prefix alone', 'v2beta'],
    ['a prefix in other case', 'V1/engines/list'],
    ['a dot-dot segment', 'v2beta/../v1/user/balance'],
    ['an encoded dot-dot segment', 'v2beta/%2e%2e/v1/user/balance'],
    ['an encoded slash', 'v2beta%2F..%2Fv1/user/balance'],
    ['a double-encoded slash', 'v2beta/%252F/x'],
    ['an encoded backslash', 'v2beta/a%5Cb'],
    ['an empty segment', 'v2beta//x'],
    ['a trailing slash', 'v2beta/x/'],
    ['a leading slash', '/v2beta/x'],
    ['a broken escape', 'v2beta/%zz'],
    ['a control character', 'v2beta/a%0Ab'],
    ['a query mark, encoded', 'v2beta/a%3Fb'],
    ['a very long path', `v2beta/${'a/'.repeat(600)}a`],
  ])('refuses %s', (_why, raw) => {
    expect(providerPath('stability', raw)).toBeUndefined();
  });

  it('a pool with no provider reaches no path', () => {
    expect(providerPath('none', 'v2beta/stable-image/generate/core')).toBeUndefined();
  });
});

describe('jobs', () => {
  it('reads the polled id of a result path only', () => {
    expect(polledJobId('v2beta/results/a1b2')).toBe('a1b2');
    expect(polledJobId('v2beta/results/a1b2/x')).toBeUndefined();
    expect(polledJobId('v2beta/stable-image/generate/core')).toBeUndefined();
  });

  it("knows the per-endpoint result paths of Stability's async endpoints as polls too", () => {
    expect(polledJobId('v2beta/image-to-video/result/a1b2')).toBe('a1b2');
    expect(polledJobId('v2beta/stable-image/upscale/creative/result/a1b2')).toBe('a1b2');
    expect(polledJobId('v2alpha/generation/image-to-video/result/a1b2')).toBe('a1b2');
    expect(polledJobId('v2beta/image-to-video/result')).toBeUndefined();
    expect(polledJobId('v2beta/result/a1b2')).toBeUndefined();
    expect(polledJobId('v1/generation/result/a1b2')).toBeUndefined();
  });

  it('reads a started job id from a 2xx JSON answer only', () => {
    expect(startedJobId(200, 'application/json; charset=utf-8', '{"id":"abc"}')).toBe('abc');
    expect(startedJobId(202, 'application/json', '{"id":"abc"}')).toBe('abc');
    expect(startedJobId(400, 'application/json', '{"id":"abc"}')).toBeUndefined();
    expect(startedJobId(200, 'image/png', '{"id":"abc"}')).toBeUndefined();
    expect(startedJobId(200, 'application/json', '{"id":"../x"}')).toBeUndefined();
    expect(startedJobId(200, 'application/json', '{"id":7}')).toBeUndefined();
    expect(startedJobId(200, 'application/json', 'not json')).toBeUndefined();
  });
});

describe('headers', () => {
  it('forwards only the listed request headers', () => {
    const sent = {
      'content-type': 'multipart/form-data; boundary=x',
      'content-length': '10',
      accept: 'image/*',
      'stability-client-id': 'app',
      'stability-client-user-id': 'u',
      'stability-client-version': '1',
      authorization: 'AWS4-HMAC-SHA256 ...',
      cookie: 'a=b',
      host: 'example.com',
      'x-amz-date': '20261207T000000Z',
      'x-forwarded-for': '10.0.0.1',
      forwarded: 'for=10.0.0.1',
      'idempotency-key': 'k',
    };
    expect(Object.keys(forwardedHeaders(sent)).sort()).toEqual([
      'accept',
      'content-length',
      'content-type',
      'stability-client-id',
      'stability-client-user-id',
      'stability-client-version',
    ]);
  });

  it('names a forwarded header whose value node:http cannot send; Latin-1 and headers not forwarded pass', () => {
    expect(unsendableHeader({ accept: 'image/*', 'stability-client-id': 'caf\u00e9\tx' })).toBeUndefined();
    expect(unsendableHeader({ 'x-anything': 'studio \u2603', accept: 'image/*' })).toBeUndefined();
    expect(unsendableHeader({ accept: 'image/*', 'stability-client-id': 'studio \u2603' })).toBe('stability-client-id');
    expect(unsendableHeader({ 'content-type': 'text/plain\u0000' })).toBe('content-type');
  });

  it('returns only the listed answer headers', () => {
    const answered = {
      'content-type': 'image/png',
      'content-length': '8',
      'finish-reason': 'SUCCESS',
      seed: '1',
      'x-request-id': 'r',
      'retry-after': '3',
      'set-cookie': 'a=b',
      server: 'cloudflare',
      'cf-ray': 'x',
    };
    expect(Object.keys(returnedHeaders(answered)).sort()).toEqual([
      'content-length',
      'content-type',
      'finish-reason',
      'retry-after',
      'seed',
      'x-request-id',
    ]);
  });

  it('reads Retry-After as seconds or a date, and nothing else', () => {
    const now = Date.parse('2026-12-07T08:00:00Z');
    expect(retryAfterSeconds('30', now)).toBe(30);
    expect(retryAfterSeconds('Mon, 07 Dec 2026 08:01:00 GMT', now)).toBe(60);
    expect(retryAfterSeconds('Mon, 07 Dec 2026 07:00:00 GMT', now)).toBe(0);
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds(undefined, now)).toBeUndefined();
    expect(retryAfterSeconds('99999999', now)).toBe(86_400);
  });
});
