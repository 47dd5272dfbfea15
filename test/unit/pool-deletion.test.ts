/**
 * What a pool deletion stopped at its deadline still reads: the count of what remains is one
 * page past where it stopped, whatever the rest of the pool holds (on the in-memory store,
 * which counts the store's calls, with a clock the retirements move).
 */
import { describe, expect, it } from 'vitest';
import type { StoredKey } from '../../lib/domain/types.js';
import type { Retirement as RetirementWrite } from '../../lib/ports/key-admin-store.js';
import { PoolDirectory } from '../../lib/use-cases/pool-directory.js';
import { Retirement } from '../../lib/use-cases/retirement.js';
import { MemoryKeyStore, MemoryPoolStore } from '../support/memory-key-store.js';

const POOL = 'unit';
const AT = Date.UTC(2026, 11, 7, 12);

/** A sealed key of POOL with an id that sorts by `n`, retired or not. */
function key(n: number, retired: boolean): StoredKey {
  return {
    keyId: `k_${String(n).padStart(6, '0')}`,
    pool: POOL,
    secret: `sealed-${n}`,
    sealed: true,
    maskedKey: '...',
    usageCount: 0,
    status: retired ? 'retired' : 'active',
    createdAt: new Date(AT).toISOString(),
    lastUsedAt: null,
    slots: {},
  };
}

describe('a pool deletion stopped at its deadline', () => {
  it('counts what remains over at most the next 1,000 keys, however many retired ones follow', async () => {
    // Prepare: a first page of 100 keys to retire, 2,000 retired ones after it, then 5 more to retire.
    const store = new MemoryKeyStore();
    for (let n = 0; n < 2_105; n++) await store.insert(key(n, n >= 100 && n < 2_100));
    const poolStore = new MemoryPoolStore();
    await poolStore.put(POOL, {}, new Date(AT).toISOString());
    let now = AT;
    const retirement = new Retirement({
      store: {
        poolKeys: store.poolKeys.bind(store),
        // Each retirement takes a second: the deadline 3 s ahead has passed once the 8 started at once end.
        retire: async (write: RetirementWrite) => {
          const result = await store.retire(write);
          now += 1_000;
          return result;
        },
      },
      poolStore,
      pools: new PoolDirectory({ store: poolStore }),
      clock: () => now,
    });
    // Act
    const answer = await retirement.deletePool(POOL, { retireKeys: true, deadlineMs: AT + 3_000 });
    // Assess: the first page's 92 keys not tried, and none of the next 1,000 to retire; 2 reads in all.
    expect(answer).toEqual({ pool: POOL, deleted: false, retiredKeys: 8, remainingKeys: 92 });
    expect(store.calls.poolKeys).toBe(2);
  });
});
