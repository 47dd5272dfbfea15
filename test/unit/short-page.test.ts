/**
 * A candidate page is short either because the shard ends there or because its query skipped
 * cooling keys: only the first shows the shard dry. Read as dry, the second answered 409
 * no_usable_key at one shard while thousands of keys were usable (the chaos run through a
 * restart, 100,000 leases: 24 such refusals, each after a page of 24 candidates and one cooling
 * key, every candidate taken by other callers meanwhile).
 */
import { describe, expect, it } from 'vitest';
import type { CandidatePage } from '../../lib/ports/lease-store.js';
import { Leasing } from '../../lib/use-cases/leasing.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';
import { POOL, world } from '../support/memory-world.js';

/** A store where other callers take every candidate of the first page read, between that read and the lease's writes. */
class RacedStore extends MemoryKeyStore {
  clock: () => number = Date.now;
  private raced = false;

  override async candidates(...query: Parameters<MemoryKeyStore['candidates']>): Promise<CandidatePage> {
    const [pool, shard] = query;
    const page = await super.candidates(...query);
    if (this.raced) return page;
    this.raced = true;
    for (const [i, { keyId, usageCount }] of page.candidates.entries()) {
      const at = this.clock();
      const taken = await super.tryLease({
        keyId,
        pool,
        shard,
        seenCount: usageCount,
        maxUses: 3,
        slot: 0,
        nonce: `00000000000000${String(i).padStart(2, '0')}`,
        expiresAtMs: at + 60_000,
        nowMs: at,
      });
      expect(taken.granted).toBe(true);
    }
    return page;
  }
}

describe('a page shortened by cooling keys', () => {
  it('whose candidates were all taken meanwhile is not a dry shard: the lease reads again and gets the key past it', async () => {
    // Prepare: four keys in LRU order; the first cools (and stays first in the index); pages of 3
    const store = new RacedStore();
    const { pools, sealer, clock, importKeys } = world(store);
    store.clock = clock.now;
    const leasing = new Leasing({ store, pools, sealer, clock: clock.now, candidateLimit: 3 });
    const ids = await importKeys('short', 4);
    const head = store.peek(ids[0] ?? '');
    if (!head) throw new Error('no key');
    head.status = 'cooling';
    head.cooldownUntil = clock.now() + 60_000;
    // Act: under a cap of 0, the first page (cooling, 2nd, 3rd) holds two candidates, both taken meanwhile
    const grant = leasing.lease(POOL, { maxUses: 0 });
    // Assess
    await expect(grant).resolves.toMatchObject({ keyId: ids[3], usageCount: 0 });
  });
});
