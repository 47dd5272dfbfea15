/** Key ids and masks (lib/domain/keys.ts): stable, and never the secret. */
import { describe, expect, it } from 'vitest';
import { keyIdFor, KEY_ID_PATTERN, maskKey } from '../../lib/domain/keys.js';

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
});
