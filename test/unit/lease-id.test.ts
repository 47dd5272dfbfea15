/** Lease ids (lib/domain/lease-id.ts): what a caller holds, leading straight to the key's item. */
import { describe, expect, it } from 'vitest';
import { keyIdFor } from '../../lib/domain/keys.js';
import { formatLeaseId, LEASE_SLOTS, parseLeaseId } from '../../lib/domain/lease-id.js';

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
