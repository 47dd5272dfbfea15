/**
 * Proxied uses under real concurrency on DynamoDB Local: the cap holds when the use is taken in
 * the lease write (no completion), whatever how many brokers race, and a random mix of settled
 * outcomes leaves every key's count equal to the uses that stayed counted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { NoUsableKey } from '../../lib/domain/errors.js';
import { classifyProviderAnswer, type ProviderAnswerFacts } from '../../lib/domain/provider-answers.js';
import type { PoolSettings } from '../../lib/domain/types.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { createTestTable, seedPool, type TestTable, uniqueName } from '../support/dynamo.js';

let table: TestTable;
const SUCCESS: ProviderAnswerFacts = { status: 200, documented: false };

beforeAll(async () => {
  table = await createTestTable('proxied');
});

/** Imports `count` fake keys into a new pool (with `settings`, else the defaults). */
const seed = (pool: string, count: number, settings: Partial<PoolSettings> = {}): Promise<string[]> =>
  seedPool(table, pool, count, settings);

describe.each([1, 4])('proxied uses over %i shard(s)', (shards) => {
  it('many concurrent takeUse calls from separate brokers on few keys with cap 3: at most 4 uses per key, exactly the uses there are, every other caller NoUsableKey', async () => {
    // Prepare: 5 keys x 4 uses = 20 uses for 80 callers, each its own broker (its own Lambda)
    const pool = uniqueName('cap');
    const ids = await seed(pool, 5, { maxUses: 3, shards });
    // Act
    const results = await Promise.allSettled(Array.from({ length: 80 }, () => table.broker().leasing.takeUse(pool)));
    // Assess
    const taken = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(taken).toHaveLength(20);
    for (const reason of refused) expect(reason).toBeInstanceOf(NoUsableKey);
    const perKey = new Map<string, number[]>();
    for (const use of taken) perKey.set(use.keyId, [...(perKey.get(use.keyId) ?? []), use.usageCount]);
    for (const counts of perKey.values()) expect(counts.sort()).toEqual([0, 1, 2, 3]);
    const keys = await table.broker().listAll(pool);
    expect(keys.map((k) => k.usageCount)).toEqual(ids.map(() => 4));
  });

  it('500 proxied calls with random provider answers by 32 callers: no key above 4 uses, every count equals the uses that stayed counted', async () => {
    // Prepare
    const pool = uniqueName('mix');
    const ids = await seed(pool, 40, { maxUses: 3, shards, cooldownSeconds: 1 });
    const answers: ProviderAnswerFacts[] = [
      SUCCESS,
      { status: 200, documented: false },
      { status: 500, documented: false },
      { status: 400, documented: true },
      { status: 401, documented: false },
      { failed: { sent: true } },
      { failed: { sent: false } },
    ];
    const counted = new Map<string, number>(ids.map((id) => [id, 0]));
    const broker = table.broker();
    // Act
    await mapLimit(Array.from({ length: 500 }), 32, async () => {
      try {
        const use = await broker.leasing.takeUse(pool);
        const verdict = classifyProviderAnswer(answers[Math.floor(Math.random() * answers.length)] ?? SUCCESS);
        await broker.leasing.settleUse(use, verdict);
        if (!verdict.givesBack) counted.set(use.keyId, (counted.get(use.keyId) ?? 0) + 1);
      } catch (error) {
        if (!(error instanceof NoUsableKey)) throw error;
      }
    });
    // Assess
    const keys = await broker.listAll(pool);
    for (const key of keys) {
      expect(key.usageCount).toBeLessThanOrEqual(4);
      expect(key.usageCount).toBe(counted.get(key.keyId));
      expect(key.status).toBe('active');
    }
  });
});
