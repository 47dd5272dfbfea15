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

  it('keeps the stamp of any moment inside its tier: a date past 2055 never reads as a higher count', () => {
    // A migrated row last used in 2200 (its old system's clock) sorts among the unused keys, last.
    expect(usageSortKey(0, Date.UTC(2200, 0, 1))).toBeLessThan(usageSortKeyBound(0));
    expect(usageSortKey(3, Date.UTC(2200, 0, 1))).toBe(3 * USAGE_TIER + USAGE_TIER - 1);
    expect(usageSortKey(0, Date.UTC(2054, 0, 1))).toBeLessThan(usageSortKey(0, Date.UTC(2200, 0, 1)));
  });
});
