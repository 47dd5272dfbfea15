/** The domain's rules about keys (lib/domain/rules.ts). */
import { describe, expect, it } from 'vitest';
import { effectiveStatus } from '../../lib/domain/rules.js';

describe('effectiveStatus', () => {
  it('a cooling key past its cooldown is active', () => {
    expect(effectiveStatus({ status: 'cooling', cooldownUntil: 1000 }, 999)).toBe('cooling');
    expect(effectiveStatus({ status: 'cooling', cooldownUntil: 1000 }, 1000)).toBe('active');
    expect(effectiveStatus({ status: 'disabled' }, 0)).toBe('disabled');
  });
});
