/** balanceChange (lib/use-cases/maintenance/maintain.ts): what a provider's balance answer does to a key's status. */
import { describe, expect, it } from 'vitest';
import { balanceChange } from '../../lib/use-cases/maintenance/maintain.js';

describe('balanceChange', () => {
  it.each([
    ['active', 2.99, 'exhaust'],
    ['cooling', 0, 'exhaust'],
    ['active', 3, 'none'],
    ['exhausted', 3, 'reactivate'],
    ['exhausted', 1, 'none'],
    ['disabled', 100, 'none'],
  ] as const)('a %s key with %d credits (minimum 3): %s', (status, credits, change) => {
    expect(balanceChange(status, { credits }, 3)).toBe(change);
  });

  it('a 401 disables any key not already disabled; a stale read never revives', () => {
    expect(balanceChange('active', 'invalid_key', 3)).toBe('disable');
    expect(balanceChange('exhausted', 'invalid_key', 3)).toBe('disable');
    expect(balanceChange('disabled', 'invalid_key', 3)).toBe('none');
    expect(balanceChange('exhausted', { credits: 50 }, 3, false)).toBe('none');
  });
});
