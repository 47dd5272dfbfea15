/** The HTTP routes (lib/http/routes.ts), matched as API Gateway matches them. */
import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../lib/http/routes.js';

describe('routes', () => {
  it('match like API Gateway: path parameters, 405 for a known path, 404 otherwise', () => {
    expect(matchRoute('POST', '/pools/p/leases/abc/complete')).toEqual({
      found: true,
      routeKey: 'POST /pools/{pool}/leases/{leaseId}/complete',
      params: { pool: 'p', leaseId: 'abc' },
    });
    expect(matchRoute('patch', '/pools/p/keys/k1')).toMatchObject({
      found: true,
      routeKey: 'PATCH /pools/{pool}/keys/{keyId}',
    });
    expect(matchRoute('DELETE', '/pools/p/keys/k1')).toEqual({
      found: true,
      routeKey: 'DELETE /pools/{pool}/keys/{keyId}',
      params: { pool: 'p', keyId: 'k1' },
    });
    expect(matchRoute('POST', '/pools/p/keys/k1')).toEqual({
      found: false,
      reason: 'method_not_allowed',
      allowed: ['PATCH', 'DELETE'],
    });
    expect(matchRoute('POST', '/pools/p')).toEqual({
      found: false,
      reason: 'method_not_allowed',
      allowed: ['PUT', 'GET', 'DELETE'],
    });
    expect(matchRoute('GET', '/pools/p/keys/k1/usage/more')).toMatchObject({ found: false, reason: 'not_found' });
    expect(matchRoute('GET', '/pools//keys')).toMatchObject({ found: false });
    expect(matchRoute('POST', '/leases')).toMatchObject({ found: false, reason: 'not_found' });
  });
});
