import { describe, expect, it } from 'vitest';
import { keyIdFor, KEY_ID_PATTERN, maskKey } from '../../lib/domain/keys.js';
import { effectiveStatus } from '../../lib/domain/rules.js';
import { formatLeaseId, LEASE_SLOTS, parseLeaseId } from '../../lib/domain/lease-id.js';
import { matchRoute } from '../../lib/http/routes.js';
import { LeaseBody, ListQuery } from '../../lib/http/schemas.js';
import { redact, rememberSecret } from '../../lib/shared/redact.js';
import { STAMP_EPOCH_MS, USAGE_TIER, usageSortKey, usageSortKeyBound } from '../../lib/table.js';

describe('key ids and masks', () => {
  it('derives a stable id from the secret that does not reveal it', () => {
    const id = keyIdFor('sk-test-abcdefghijklmnopqrstuvwxyz012345');
    expect(id).toMatch(KEY_ID_PATTERN);
    expect(keyIdFor('sk-test-abcdefghijklmnopqrstuvwxyz012345')).toBe(id);
    expect(keyIdFor('sk-test-abcdefghijklmnopqrstuvwxyz012346')).not.toBe(id);
  });

  it('masks to at most the first 3 and last 4 characters, less for short secrets', () => {
    expect(maskKey('sk-test-abcdefghijklmnop1234')).toBe('sk-...1234');
    expect(maskKey('abcdefghij')).toBe('...ij');
    expect(maskKey('abc')).toBe('...');
  });

  it('a cooling key past its cooldown is active', () => {
    expect(effectiveStatus({ status: 'cooling', cooldownUntil: 1000 }, 999)).toBe('cooling');
    expect(effectiveStatus({ status: 'cooling', cooldownUntil: 1000 }, 1000)).toBe('active');
    expect(effectiveStatus({ status: 'disabled' }, 0)).toBe('disabled');
  });
});

describe('lease ids', () => {
  it('round-trip and lead to the key', () => {
    const ref = { keyId: keyIdFor('sk-test-x'), slot: 7, expiresAtMs: Date.UTC(2030, 0, 1), nonce: '0123456789abcdef' };
    expect(parseLeaseId(formatLeaseId(ref))).toEqual(ref);
  });

  it('reject anything else', () => {
    const good = formatLeaseId({ keyId: keyIdFor('sk-test-x'), slot: 1, expiresAtMs: 1, nonce: '0123456789abcdef' });
    for (const bad of [
      '',
      'garbage',
      good.replace('.1.', `.${LEASE_SLOTS}.`),
      `${good}0`,
      good.toUpperCase(),
      `${good}\n`,
    ]) {
      expect(parseLeaseId(bad)).toBeUndefined();
    }
  });
});

describe('usage sort key', () => {
  it('orders by count first, then by the moment of last use', () => {
    const t = STAMP_EPOCH_MS + 5_000;
    expect(usageSortKey(0, t + 1_000_000)).toBeLessThan(usageSortKey(1, t));
    expect(usageSortKey(2, t)).toBeLessThan(usageSortKey(2, t + 1));
    expect(usageSortKey(3, Date.UTC(2050, 0, 1))).toBeLessThan(usageSortKeyBound(3));
    expect(usageSortKeyBound(3)).toBe(4 * USAGE_TIER);
    expect(Number.isSafeInteger(usageSortKey(1001, Date.UTC(2054, 0, 1)))).toBe(true);
  });
});

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
      found: false,
      reason: 'method_not_allowed',
      allowed: ['PATCH'],
    });
    expect(matchRoute('DELETE', '/pools/p')).toEqual({
      found: false,
      reason: 'method_not_allowed',
      allowed: ['PUT', 'GET'],
    });
    expect(matchRoute('GET', '/pools/p/keys/k1/usage/more')).toMatchObject({ found: false, reason: 'not_found' });
    expect(matchRoute('GET', '/pools//keys')).toMatchObject({ found: false });
    expect(matchRoute('POST', '/leases')).toMatchObject({ found: false, reason: 'not_found' });
  });
});

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

describe('redact', () => {
  it('masks anything shaped like a credential and leaves ids alone', () => {
    const text = `provider said: bad key sk-test-${'a'.repeat(40)} for k_0123456789abcdef01234567`;
    expect(redact(text)).toBe('provider said: bad key sk-...[redacted] for k_0123456789abcdef01234567');
  });

  it("masks the README's own 28-character sample key (shorter than the 32-character rule)", () => {
    expect(redact('{"apiKey":"sk-test-0123456789abcdef0123"}')).toBe('{"apiKey":"sk-...[redacted]"}');
  });

  it('masks every secret the process handled, whatever its shape or length', () => {
    // Prepare: a short provider key with no telling prefix, remembered as a key would be.
    rememberSecret('Zq9#short!');
    // Act
    const out = redact('the provider echoed Zq9#short! twice: Zq9#short!');
    // Assess
    expect(out).toBe('the provider echoed Zq9...[redacted] twice: Zq9...[redacted]');
  });

  it('leaves an AWS ARN whole: an audit line names the role that called', () => {
    const arn = 'arn:aws:sts::123456789012:assumed-role/image-generation-worker/i-0abcdef1234567890';
    expect(redact(`caller ${arn}`)).toBe(`caller ${arn}`);
  });
});
