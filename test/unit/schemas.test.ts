/** The request schemas (lib/http/schemas.ts): strict, never coercing. */
import { describe, expect, it } from 'vitest';
import { LeaseBody, ListQuery } from '../../lib/http/schemas.js';

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
});
