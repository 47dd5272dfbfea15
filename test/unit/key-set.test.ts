import { describe, expect, it } from 'vitest';
import { keyIdFor } from '../../lib/domain/keys.js';
import { KeySet, type SeenStatus } from '../../lib/use-cases/migration/key-set.js';

const STATUSES: SeenStatus[] = ['open', 'disabled', 'retired'];

describe('KeySet', () => {
  it('remembers every key through growth and tells keys apart exactly', () => {
    // Prepare: start tiny so the table doubles many times
    const set = new KeySet(4);
    const ids = Array.from({ length: 5000 }, (_, i) => keyIdFor(`sk-test-${i}`));
    // Act
    ids.forEach((id, i) =>
      set.set(id, {
        outcome: i % 3 === 0 ? 'imported' : i % 3 === 1 ? 'raised' : 'unchanged',
        usageCount: i,
        status: STATUSES[i % 3] as SeenStatus,
        saidDisabled: i % 2 === 0,
      }),
    );
    set.set(ids[10] as string, { outcome: 'raised', usageCount: 99, status: 'retired', saidDisabled: true });
    // Assess
    expect(set.size).toBe(5000);
    expect([9, 10, 4998, 4999].map((i) => set.get(ids[i] as string))).toEqual([
      { outcome: 'imported', usageCount: 9, status: 'open', saidDisabled: false },
      { outcome: 'raised', usageCount: 99, status: 'retired', saidDisabled: true },
      { outcome: 'imported', usageCount: 4998, status: 'open', saidDisabled: true },
      { outcome: 'raised', usageCount: 4999, status: 'disabled', saidDisabled: false },
    ]);
    expect(set.get(keyIdFor('sk-test-never-seen'))).toBeUndefined();
  });
});
