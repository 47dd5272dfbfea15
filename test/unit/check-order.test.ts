/** The order maintenance asks for balances in: never-checked keys, then the least recently checked. */
import { describe, expect, it } from 'vitest';
import {
  type CheckCandidate,
  checkOrder,
  checkPriority,
  compareCheckPriority,
} from '../../lib/use-cases/maintenance/check-order.js';

function key(keyId: string, creditsCheckedAt?: string): CheckCandidate {
  return { keyId, status: 'active', ...(creditsCheckedAt === undefined ? {} : { creditsCheckedAt }) };
}

describe('checkOrder', () => {
  it('puts never-checked keys first, then the oldest check, and breaks ties by keyId', () => {
    // Prepare: scan order is neither of these orders.
    const keys = [
      key('k_d', '2025-03-01T10:00:00.000Z'),
      key('k_b'),
      key('k_e', '2025-03-01T09:00:00.000Z'),
      key('k_c', '2025-03-01T10:00:00.000Z'),
      key('k_a'),
      key('k_f', '2025-02-28T23:59:59.999Z'),
    ];
    // Act
    const ordered = checkOrder(keys).map((k) => k.keyId);
    // Assess
    expect(ordered).toEqual(['k_a', 'k_b', 'k_f', 'k_e', 'k_c', 'k_d']);
  });

  it('counts a timestamp that does not parse as never checked, so a bad value cannot hide a key at the end', () => {
    // Prepare
    const keys = [key('k_old', '2020-01-01T00:00:00.000Z'), key('k_bad', 'not a date')];
    // Act / Assess
    expect(checkOrder(keys).map((k) => k.keyId)).toEqual(['k_bad', 'k_old']);
    expect(checkPriority(key('k_bad', 'not a date'))).toEqual(checkPriority(key('k_bad')));
  });

  it('asks about reported keys first and re-checks the keys the provider disabled last', () => {
    // Prepare
    const keys: CheckCandidate[] = [
      { keyId: 'k_off', status: 'disabled', statusBy: 'provider', creditsCheckedAt: '2020-01-01T00:00:00.000Z' },
      key('k_old', '2024-01-01T00:00:00.000Z'),
      { keyId: 'k_reported', status: 'exhausted', statusBy: 'client', creditsCheckedAt: '2025-01-01T00:00:00.000Z' },
      key('k_new'),
    ];
    // Act / Assess
    expect(checkOrder(keys).map((k) => k.keyId)).toEqual(['k_reported', 'k_new', 'k_old', 'k_off']);
  });

  it('returns a new array and leaves the input in scan order', () => {
    // Prepare
    const keys = [key('k_2', '2025-01-02T00:00:00.000Z'), key('k_1', '2025-01-01T00:00:00.000Z')];
    // Act
    const ordered = checkOrder(keys);
    // Assess
    expect(ordered.map((k) => k.keyId)).toEqual(['k_1', 'k_2']);
    expect(keys.map((k) => k.keyId)).toEqual(['k_2', 'k_1']);
  });
});

describe('compareCheckPriority', () => {
  it('compares the group first, then the time, then the keyId', () => {
    expect(compareCheckPriority([1, 0, 'k_z'], [2, 0, 'k_a'])).toBeLessThan(0);
    expect(compareCheckPriority([2, 5, 'k_a'], [2, 4, 'k_z'])).toBeGreaterThan(0);
    expect(compareCheckPriority([2, 5, 'k_a'], [2, 5, 'k_b'])).toBeLessThan(0);
    expect(compareCheckPriority([2, 5, 'k_a'], [2, 5, 'k_a'])).toBe(0);
  });
});
