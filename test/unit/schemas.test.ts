/** The request schemas (lib/http/schemas.ts): strict, never coercing. */
import { describe, expect, it } from 'vitest';
import { POOL_NAME_PATTERN } from '../../lib/domain/pool-name.js';
import { LeaseBody, ListQuery, PoolParams } from '../../lib/http/schemas.js';

describe('schemas', () => {
  it('never coerce: "3" is not 3', () => {
    expect(LeaseBody.safeParse({ maxUses: '3' }).success).toBe(false);
    expect(LeaseBody.safeParse({ maxUses: 3 }).success).toBe(true);
    expect(LeaseBody.safeParse({ maxUses: 3, x: 1 }).success).toBe(false);
  });

  it('take only the exact digits of 1..1000 as a list limit', () => {
    expect(ListQuery.safeParse({ limit: '1000' })).toMatchObject({ success: true, data: { limit: 1000 } });
    for (const bad of ['0', '1001', '01', '1e3', ' 5', '-1'])
      expect(ListQuery.safeParse({ limit: bad }).success).toBe(false);
  });

  it('refuse "." and ".." as a pool name: a path segment every URL parser resolves away, so no route and no link could reach the pool', () => {
    for (const pool of ['.', '..']) {
      expect(PoolParams.safeParse({ pool }).success, pool).toBe(false);
      expect(POOL_NAME_PATTERN.test(pool), pool).toBe(false);
    }
    for (const pool of ['...', '.a', 'a..b', '-', '_']) expect(PoolParams.safeParse({ pool }).success, pool).toBe(true);
    // The name as a URL path segment: "." and ".." vanish, "%2e%2e" too (WHATWG URL), "..." stays.
    expect(new URL('http://127.0.0.1/pools/..').pathname).toBe('/');
    expect(new URL('http://127.0.0.1/pools/%2e%2e/keys').pathname).toBe('/keys');
    expect(new URL('http://127.0.0.1/pools/...').pathname).toBe('/pools/...');
  });
});
