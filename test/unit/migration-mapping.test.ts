import { describe, expect, it } from 'vitest';
import { decodeExtended, type MapResult, mapRow, parseIsoDate } from '../../lib/domain/migration-mapping.js';

const NOW = '2026-01-01T00:00:00.000Z';
const options = { initialCredits: 25, nowIso: NOW };
const SECRET = 'sk-test-0123456789abcdef0123456789abcdef';

function mapped(row: Record<string, unknown>, initialCredits = 25): Extract<MapResult, { ok: true }>['row'] {
  const result = mapRow({ api_key: SECRET, ...row }, { ...options, initialCredits });
  if (!result.ok) throw new Error(`expected a valid row, got: ${result.reason}`);
  return result.row;
}

function reason(row: unknown): string {
  const result = mapRow(row, options);
  if (result.ok) throw new Error('expected an invalid row');
  return result.reason;
}

describe('Extended JSON v2 decoding', () => {
  it.each([
    ['$numberInt', { $numberInt: '3' }, 3],
    ['$numberLong', { $numberLong: '7' }, 7],
    ['$numberDouble', { $numberDouble: '22.5' }, 22.5],
    ['$numberDouble exponent', { $numberDouble: '2.25E1' }, 22.5],
    ['$numberDecimal', { $numberDecimal: '1.5' }, 1.5],
    ['$oid', { $oid: '65a000000000000000000001' }, '65a000000000000000000001'],
    ['relaxed number', 4, 4],
    ['relaxed string', 'x', 'x'],
  ])('decodes %s', (_name, input, expected) => {
    // Prepare / Act
    const value = decodeExtended(input);
    // Assess
    expect(value).toBe(expected);
  });

  it.each([
    ['relaxed ISO', { $date: '2024-06-01T12:00:00Z' }],
    ['relaxed ISO with offset', { $date: '2024-06-01T14:00:00+02:00' }],
    ['canonical $numberLong', { $date: { $numberLong: '1717243200000' } }],
    ['legacy milliseconds', { $date: 1717243200000 }],
  ])('decodes a $date in the %s form to the same instant', (_name, input) => {
    // Act
    const value = decodeExtended(input);
    // Assess
    expect(value).toBeInstanceOf(Date);
    expect((value as Date).toISOString()).toBe('2024-06-01T12:00:00.000Z');
  });

  it('turns malformed wrappers into values no numeric or date field accepts', () => {
    // Act / Assess
    expect(decodeExtended({ $numberInt: 'three' })).toBeNaN();
    expect(decodeExtended({ $numberDouble: 'NaN' })).toBeNaN();
    expect(decodeExtended({ $numberDouble: 'Infinity' })).toBe(Infinity);
    expect(Number.isNaN((decodeExtended({ $date: 'yesterday' }) as Date).getTime())).toBe(true);
    expect(decodeExtended({ $binary: { base64: 'AA==', subType: '00' } })).toEqual({
      $binary: { base64: 'AA==', subType: '00' },
    });
  });
});

describe('usage count', () => {
  it('takes usage_count when present, over credits_left (it is newer)', () => {
    expect(mapped({ usage_count: { $numberInt: '3' }, credits_left: 25 }).usageCount).toBe(3);
    expect(mapped({ usage_count: { $numberLong: '7' }, credits_left: { $numberDouble: '1.0' } }).usageCount).toBe(7);
  });

  it('derives max(0, 25 - credits_left) from credits_left, rounding a partial use up', () => {
    expect(mapped({ credits_left: 22 }).usageCount).toBe(3);
    expect(mapped({ credits_left: { $numberDouble: '22.5' } }).usageCount).toBe(3);
    expect(mapped({ credits_left: { $numberDouble: '24.9' } }).usageCount).toBe(1);
    expect(mapped({ credits_left: 25 }).usageCount).toBe(0);
    expect(mapped({ credits_left: 40 }).usageCount).toBe(0);
    expect(mapped({ credits_left: -3 }).usageCount).toBe(28);
  });

  it('does not count float noise of the old arithmetic as a partial use', () => {
    // 25 - 21.999999999999996 is 3.000000000000004: three uses, not four.
    expect(mapped({ credits_left: 21.999999999999996 }).usageCount).toBe(3);
  });

  it('uses --initial-credits instead of 25', () => {
    expect(mapped({ credits_left: 6 }, 10).usageCount).toBe(4);
    expect(mapped({ credits_left: 2.5 }, 6.5).usageCount).toBe(4);
  });

  it('rounds a fractional usage_count up too, and starts at 0 with neither field', () => {
    expect(mapped({ usage_count: 2.5 }).usageCount).toBe(3);
    expect(mapped({}).usageCount).toBe(0);
    expect(mapped({ usage_count: null, credits_left: 20 }).usageCount).toBe(5);
  });

  it.each([
    [{ usage_count: -1 }, 'usage_count is negative'],
    [{ usage_count: { $numberInt: '-2' } }, 'usage_count is negative'],
    [{ usage_count: '3' }, 'usage_count is not a number'],
    [{ usage_count: { $numberDouble: 'NaN' } }, 'usage_count is not a number'],
    [{ usage_count: true }, 'usage_count is not a number'],
    [{ credits_left: 'lots' }, 'credits_left is not a number'],
    [{ credits_left: { $numberDouble: '-Infinity' } }, 'credits_left is not a number'],
    [{ usage_count: 1e300 }, 'usage_count is out of range'],
  ])('rejects %j', (row, why) => {
    expect(reason({ api_key: SECRET, ...row })).toBe(why);
  });
});

describe('numbers: linear time and a length cap', () => {
  const MIB = 1024 * 1024;

  it.each([
    ['digits then a letter (the old regex backtracked quadratically on these)', `${'1'.repeat(MIB)}x`],
    ['a decimal point and digits then a letter', `1.${'1'.repeat(MIB)}x`],
    ['only digits', '1'.repeat(MIB)],
  ])('a 1 MiB $numberLong of %s is an invalid row, mapped in well under a second', (_why, digits) => {
    // Prepare
    const row = { api_key: SECRET, credits_left: { $numberLong: digits } };
    // Act
    const began = performance.now();
    const result = mapRow(row, options);
    const took = performance.now() - began;
    // Assess
    expect(result).toEqual({ ok: false, reason: 'credits_left is not a number', unknownFields: [] });
    expect(took).toBeLessThan(1000);
  });

  it('reads numbers up to 64 characters and refuses longer ones', () => {
    // Act / Assess
    expect(mapped({ usage_count: { $numberLong: `${'0'.repeat(63)}3` } }).usageCount).toBe(3);
    expect(reason({ api_key: SECRET, usage_count: { $numberLong: `${'0'.repeat(64)}3` } })).toBe(
      'usage_count is not a number',
    );
    expect(decodeExtended({ $numberDecimal: '-1.234567890123456789012345678901234E+6144' })).toBe(-Infinity);
  });
});

describe('api_key', () => {
  it.each([
    [{}, 'api_key is missing'],
    [{ api_key: null }, 'api_key is missing'],
    [{ api_key: '' }, 'api_key is empty'],
    [{ api_key: 42 }, 'api_key is not a string'],
    [{ api_key: { $numberLong: '7' } }, 'api_key is not a string'],
    [{ api_key: 'x'.repeat(5000) }, 'api_key is not 8-512 characters long'],
  ])('rejects a row with %j', (row, why) => {
    expect(mapRow(row, options)).toMatchObject({ ok: false, reason: why });
  });

  it.each([
    ['a trailing space', `${SECRET} `, 'api_key has a space, control or non-ASCII character'],
    ['a trailing carriage return', `${SECRET}\r`, 'api_key has a space, control or non-ASCII character'],
    ['a leading tab', `\t${SECRET}`, 'api_key has a space, control or non-ASCII character'],
    ['a space inside', 'sk-test 0123456789', 'api_key has a space, control or non-ASCII character'],
    ['a non-ASCII letter', 'sk-test-0123456789é', 'api_key has a space, control or non-ASCII character'],
    ['a zero-width space', `${SECRET}\u200b`, 'api_key has a space, control or non-ASCII character'],
    ['7 characters', 'sk-test', 'api_key is not 8-512 characters long'],
    ['513 characters', `sk-test-${'a'.repeat(505)}`, 'api_key is not 8-512 characters long'],
  ])("applies the API's rule to api_key: %s is an invalid row, not a new key", (_why, apiKey, why) => {
    // Act
    const result = mapRow({ api_key: apiKey, usage_count: 1 }, options);
    // Assess
    expect(result).toEqual({ ok: false, reason: why, unknownFields: [] });
  });

  it('accepts what the API accepts: 8 and 512 printable ASCII characters', () => {
    // Act / Assess
    expect(mapRow({ api_key: 'sk-test-' }, options)).toMatchObject({ ok: true, row: { apiKey: 'sk-test-' } });
    const longest = `sk-test-${'~'.repeat(504)}`;
    expect(mapRow({ api_key: longest }, options)).toMatchObject({ ok: true, row: { apiKey: longest } });
  });

  it('never puts the secret or any value into a reason', () => {
    // Prepare
    const rows = [
      { api_key: SECRET, usage_count: SECRET },
      { api_key: SECRET, credits_left: SECRET },
      { api_key: SECRET, last_used: SECRET },
      { api_key: SECRET, created_at: { $date: SECRET } },
    ];
    // Act
    const reasons = rows.map((row) => reason(row));
    // Assess
    for (const r of reasons) expect(r).not.toContain('sk-test');
    expect(reasons).toEqual([
      'usage_count is not a number',
      'credits_left is not a number',
      'last_used is not a date',
      'created_at is not a date',
    ]);
  });
});

describe('status, dates and unknown fields', () => {
  it('is_active false disables; true, absent or anything else stays active', () => {
    expect(mapped({ is_active: false }).disabled).toBe(true);
    expect(mapped({ is_active: true }).disabled).toBe(false);
    expect(mapped({}).disabled).toBe(false);
    expect(mapped({ is_active: 'false' }).disabled).toBe(false);
  });

  it('lastUsedAt is last_used, else last_checked, else none', () => {
    expect(
      mapped({ last_used: { $date: '2024-06-01T12:00:00Z' }, last_checked: { $date: '2024-07-01T00:00:00Z' } })
        .lastUsedAt,
    ).toBe('2024-06-01T12:00:00.000Z');
    expect(mapped({ last_checked: { $date: { $numberLong: '1719792000000' } } }).lastUsedAt).toBe(
      '2024-07-01T00:00:00.000Z',
    );
    expect(mapped({ last_used: null, last_checked: '2024-07-01T00:00:00Z' }).lastUsedAt).toBe(
      '2024-07-01T00:00:00.000Z',
    );
    expect(mapped({}).lastUsedAt).toBeNull();
  });

  it('createdAt is created_at, else the migration time', () => {
    expect(mapped({ created_at: { $date: '2024-03-01T10:00:00Z' } }).createdAt).toBe('2024-03-01T10:00:00.000Z');
    expect(mapped({}).createdAt).toBe(NOW);
  });

  it("a date after the migration is the old clock's error: it reads as the migration time", () => {
    // A use cannot have happened after the migration; keeping 2200 would show it in every listing.
    const future = { $date: '2200-01-01T00:00:00Z' };
    expect(mapped({ last_used: future, created_at: future })).toMatchObject({ lastUsedAt: NOW, createdAt: NOW });
    expect(mapped({ last_used: NOW }).lastUsedAt).toBe(NOW);
  });

  it('reads the date strings a legacy table holds: Python isoformat, no zone (UTC), epoch seconds', () => {
    expect(mapped({ last_used: '2024-06-01 12:00:00.123456' }).lastUsedAt).toBe('2024-06-01T12:00:00.123Z');
    expect(mapped({ last_used: '2024-06-01T12:00:00' }).lastUsedAt).toBe('2024-06-01T12:00:00.000Z');
    expect(mapped({ last_used: { $numberDecimal: '1717243200' } }).lastUsedAt).toBe('2024-06-01T12:00:00.000Z');
    expect(parseIsoDate('June 1st')).toBeUndefined();
    expect(reason({ api_key: SECRET, last_used: 'last tuesday' })).toBe('last_used is not a date');
  });

  it('lists unknown field names (not _id) for the report to count', () => {
    // Act
    const result = mapRow({ _id: { $oid: 'a' }, api_key: SECRET, owner: 'x', notes: 1 }, options);
    // Assess
    expect(result.unknownFields).toEqual(['owner', 'notes']);
  });

  it('a row that is not an object is invalid', () => {
    expect(reason([1, 2])).toBe('not a JSON object');
    expect(reason('sk-test-abc')).toBe('not a JSON object');
  });
});
