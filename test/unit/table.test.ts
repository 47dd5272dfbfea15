/** The table's usage sort key (lib/table.ts): count first, then least recently used. */
import { describe, expect, it } from 'vitest';
import { STAMP_EPOCH_MS, USAGE_TIER, usageSortKey, usageSortKeyBound } from '../../lib/table.js';

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
