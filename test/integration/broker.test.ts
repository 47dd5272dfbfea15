import { GetCommand, ScanCommand } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { mapLimit } from '../../lib/shared/map-limit.js';
import {
  IdempotencyConflict,
  InvalidRequest,
  KeyNotFound,
  LeaseExpired,
  LeaseNotFound,
  NoUsableKey,
} from '../../lib/domain/errors.js';
import type { LeaseGrant, Outcome, PoolSettings } from '../../lib/domain/types.js';
import type { Broker } from '../../lib/use-cases/broker.js';
import { MAX_SORTED_COUNT, TABLE, USAGE_TIER } from '../../lib/table.js';
import { parseLeaseId } from '../../lib/domain/lease-id.js';
import { createTestTable, fakeKey, seedPool, type TestTable, uniqueName } from '../support/dynamo.js';

let table: TestTable;

beforeAll(async () => {
  table = await createTestTable('broker');
});

/** Imports `count` fake keys into a new pool (with `settings`, else the defaults). */
const seed = (pool: string, count: number, settings: Partial<PoolSettings> = {}): Promise<string[]> =>
  seedPool(table, pool, count, settings);

describe('import', () => {
  it('dedupes by fingerprint: importing a key again adds nothing and changes nothing', async () => {
    // Prepare
    const pool = uniqueName('dup');
    const secret = fakeKey();
    const broker = table.broker();
    const first = await broker.importKeys(pool, [{ apiKey: secret, label: 'one' }]);
    await broker.lease(pool).then((g) => broker.complete(pool, g.leaseId));
    // Act
    const again = await broker.importKeys('elsewhere', [{ apiKey: secret, label: 'two' }, { apiKey: secret }]);
    // Assess
    expect(first.imported).toBe(1);
    expect(again).toMatchObject({ imported: 0, duplicates: 2 });
    expect(again.keys).toHaveLength(2);
    expect(again.keys[0]).toMatchObject({ keyId: first.keys[0]?.keyId, pool, label: 'one', usageCount: 1 });
    expect(JSON.stringify(again)).not.toContain(secret);
  });
});

describe('lease', () => {
  it('sequential leases follow strict LRU order, never-used keys first, oldest import first', async () => {
    // Prepare
    const pool = uniqueName('lru');
    const ids = await seed(pool, 4);
    const broker = table.broker();
    // Act
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      const grant = await broker.lease(pool);
      order.push(grant.keyId);
      await broker.complete(pool, grant.leaseId, { outcome: 'success' });
    }
    // Assess
    expect(order).toEqual([...ids, ...ids, ...ids]);
  });

  it('a key serves maxUses + 1 uses (counts 0..maxUses), then the pool answers no_usable_key', async () => {
    // Prepare
    const pool = uniqueName('cap');
    await seed(pool, 1);
    const broker = table.broker();
    // Act
    const counts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const grant = await broker.lease(pool, { maxUses: 3 });
      counts.push(grant.usageCount);
      await broker.complete(pool, grant.leaseId);
    }
    // Assess
    expect(counts).toEqual([0, 1, 2, 3]);
    await expect(broker.lease(pool, { maxUses: 3 })).rejects.toBeInstanceOf(NoUsableKey);
    // The cap is the pool's: asking for more is refused; the operator raising it frees one more use.
    await expect(broker.lease(pool, { maxUses: 4 })).rejects.toBeInstanceOf(InvalidRequest);
    await broker.setPool(pool, { maxUses: 4 });
    await expect(broker.lease(pool)).resolves.toMatchObject({ usageCount: 4 });
  });

  it('cooling keys are skipped until their cooldown ends, then leased again without a sweeper', async () => {
    // Prepare
    const pool = uniqueName('cool');
    await seed(pool, 1, { cooldownSeconds: 60 });
    let now = Date.now();
    const broker = table.broker({ clock: () => now });
    const grant = await broker.lease(pool);
    // Act
    const completed = await broker.complete(pool, grant.leaseId, { outcome: 'rate_limited' });
    const during = broker.lease(pool);
    await expect(during).rejects.toBeInstanceOf(NoUsableKey);
    now += 61_000;
    const after = await broker.lease(pool);
    // Assess
    expect(completed).toMatchObject({ status: 'cooling', usageCount: 0 });
    expect(after.keyId).toBe(grant.keyId);
    expect(after.usageCount).toBe(0);
  });
});

describe('complete', () => {
  it.each<[Outcome, number, string]>([
    ['success', 1, 'active'],
    ['failure', 0, 'active'],
    ['invalid_key', 0, 'suspect'],
    ['out_of_credits', 0, 'exhausted'],
    ['rate_limited', 0, 'cooling'],
  ])('%s leaves the count at %i and the key %s', async (outcome, count, status) => {
    // Prepare
    const pool = uniqueName('outcome');
    await seed(pool, 1);
    const broker = table.broker();
    const grant = await broker.lease(pool);
    // Act
    const result = await broker.complete(pool, grant.leaseId, { outcome: outcome });
    // Assess
    expect(result).toEqual({ keyId: grant.keyId, usageCount: count, status });
    const [view] = await broker.listAll(pool);
    expect(view).toMatchObject({ usageCount: count, status });
  });

  it("a caller's report never overrides an operator's disable, and the use is still refunded", async () => {
    // Prepare
    const pool = uniqueName('override');
    await seed(pool, 1);
    const broker = table.broker();
    const grant = await broker.lease(pool);
    await broker.updateKey(pool, grant.keyId, { status: 'disabled' });
    // Act
    const result = await broker.complete(pool, grant.leaseId, { outcome: 'rate_limited' });
    // Assess
    expect(result).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'disabled' });
  });

  it('an unknown or forged lease id is lease_not_found', async () => {
    // Prepare
    const pool = uniqueName('forged');
    await seed(pool, 1);
    const broker = table.broker();
    const grant = await broker.lease(pool);
    const forged = grant.leaseId.replace(/[0-9a-f]{16}$/, '0000000000000000');
    // Act + Assess
    await expect(broker.complete(pool, forged)).rejects.toBeInstanceOf(LeaseNotFound);
    await expect(broker.complete(pool, 'nonsense')).rejects.toBeInstanceOf(LeaseNotFound);
    await expect(broker.complete(pool, grant.leaseId)).resolves.toMatchObject({ usageCount: 1 });
  });

  it('an expired lease keeps its use counted and refuses a late completion with lease_expired', async () => {
    // Prepare
    const pool = uniqueName('expired');
    await seed(pool, 1);
    let now = Date.now();
    const broker = table.broker({ clock: () => now });
    const grant = await broker.lease(pool, { ttlSeconds: 1 });
    // Act
    now += 2_000;
    const late = broker.complete(pool, grant.leaseId, { outcome: 'failure' });
    // Assess
    await expect(late).rejects.toBeInstanceOf(LeaseExpired);
    const [view] = await broker.listAll(pool);
    expect(view?.usageCount).toBe(1);
  });
});

/**
 * One key under a cap of 1,000 set to count 1,000 (an operator's reset moves its sort key with
 * it), leased (1,001: the top tier the sort key spells out), then pushed to 1,002 by a
 * lease-less increment (the tier stays at the top).
 */
async function leasedPastTopTier(
  prefix: string,
): Promise<{ pool: string; keyId: string; broker: Broker; grant: LeaseGrant }> {
  const pool = uniqueName(prefix);
  const [keyId] = await seed(pool, 1, { maxUses: 1000 });
  if (!keyId) throw new Error('seed failed');
  const broker = table.broker();
  await broker.updateKey(pool, keyId, { usageCount: 1000 });
  const grant = await broker.lease(pool);
  await broker.increment(pool, keyId);
  return { pool, keyId, broker, grant };
}

describe('increment', () => {
  it('N concurrent increments add exactly N', async () => {
    // Prepare
    const pool = uniqueName('incr');
    const [keyId] = await seed(pool, 1, { maxClientReportsPerMinute: 64 });
    if (!keyId) throw new Error('seed failed');
    const broker = table.broker();
    // Act
    await mapLimit(Array.from({ length: 64 }), 32, () => broker.increment(pool, keyId));
    // Assess
    const [view] = await broker.listAll(pool);
    expect(view?.usageCount).toBe(64);
  });

  it('a refund at a count past the top sort tier leaves the key sorted by its count: under a cap of 1,000 it is no candidate', async () => {
    // Prepare
    const { pool, keyId, broker, grant } = await leasedPastTopTier('top-tier');
    // Act: the lease failed, so its use is given back (1,002 -> 1,001).
    const completed = await broker.complete(pool, grant.leaseId, { outcome: 'failure' });
    // Assess: 1,001 still sorts in the top tier, above the cap: no lease reads it as a candidate.
    const item = await table.store.client.send(
      new GetCommand({ TableName: table.tableName, Key: { [TABLE.partitionKey]: keyId }, ConsistentRead: true }),
    );
    expect(completed.usageCount).toBe(MAX_SORTED_COUNT);
    expect(Math.floor(Number(item.Item?.[TABLE.usageIndex.sortKey]) / USAGE_TIER)).toBe(MAX_SORTED_COUNT);
    expect((await table.store.candidates(pool, 0, 1000, 25, Date.now())).candidates).toEqual([]);
  });

  it('a lease undone on an undecryptable key past the top sort tier gives its use back and leaves the key sorted by its count', async () => {
    // Prepare
    const { pool, keyId, grant } = await leasedPastTopTier('top-tier-mark');
    const ref = parseLeaseId(grant.leaseId);
    const stored = await table.store.get(keyId);
    if (!ref || !stored) throw new Error('lease or key missing');
    // Act: its secret found not to open, the key is taken out with the lease's use given back.
    const marked = await table.store.markUndecryptable({
      keyId,
      pool,
      sealed: stored.secret,
      lease: { slot: ref.slot, nonce: ref.nonce },
    });
    // Assess
    const item = await table.store.client.send(
      new GetCommand({ TableName: table.tableName, Key: { [TABLE.partitionKey]: keyId }, ConsistentRead: true }),
    );
    expect(marked).toBe(true);
    expect(item.Item).toMatchObject({ usageCount: MAX_SORTED_COUNT, status: 'undecryptable' });
    expect(Math.floor(Number(item.Item?.[TABLE.usageIndex.sortKey]) / USAGE_TIER)).toBe(MAX_SORTED_COUNT);
  });

  it('an unknown key is key_not_found', async () => {
    const pool = uniqueName('incr-none');
    await seed(pool, 0);
    await expect(table.broker().increment(pool, 'k_000000000000000000000000')).rejects.toBeInstanceOf(KeyNotFound);
  });
});

/**
 * The concurrency and audit tests, at one shard (one LRU order, as before sharding) and at 8:
 * every guarantee holds whatever the shard count.
 */
describe.each([1, 8])('at %i shard(s)', (shards) => {
  it('10 keys with maxUses 0 and 50 concurrent leases grant exactly 10 distinct keys', async () => {
    // Prepare
    const pool = uniqueName('zero');
    await seed(pool, 10, { shards });
    const broker = table.broker();
    // Act
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => broker.lease(pool, { maxUses: 0 })));
    // Assess
    const granted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.keyId] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(granted).toHaveLength(10);
    expect(new Set(granted).size).toBe(10);
    expect(refused).toHaveLength(40);
    for (const reason of refused) expect(reason).toBeInstanceOf(NoUsableKey);
  });

  it('concurrent leases from separate brokers (separate Lambdas) never pass the cap and never refuse while a use is left', async () => {
    // Prepare
    const pool = uniqueName('race');
    await seed(pool, 5, { shards });
    // Act: 40 callers, each its own broker, race for 5 keys x 4 uses = 20 uses
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, () => table.broker().lease(pool, { maxUses: 3 })),
    );
    // Assess
    const granted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(granted).toHaveLength(20);
    const perKey = new Map<string, number[]>();
    for (const g of granted) perKey.set(g.keyId, [...(perKey.get(g.keyId) ?? []), g.usageCount]);
    for (const counts of perKey.values()) expect(counts.sort()).toEqual([0, 1, 2, 3]);
  });

  it('a repeated completion gives the same answer and counts once', async () => {
    // Prepare
    const pool = uniqueName('repeat');
    await seed(pool, 1, { shards });
    const broker = table.broker();
    const grant = await broker.lease(pool);
    // Act
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => broker.complete(pool, grant.leaseId, { outcome: 'success' })),
    );
    const late = await broker.complete(pool, grant.leaseId, { outcome: 'failure' });
    // Assess
    for (const answer of answers) expect(answer).toEqual({ keyId: grant.keyId, usageCount: 1, status: 'active' });
    expect(late).toEqual({ keyId: grant.keyId, usageCount: 1, status: 'active' });
  });

  it('1,000 leases with random outcomes by 32 callers: no key above maxUses + 1, every count equals its successes', async () => {
    // Prepare
    const pool = uniqueName('stress');
    const ids = await seed(pool, 60, { cooldownSeconds: 1, shards });
    const outcomes: Outcome[] = ['success', 'success', 'success', 'failure', 'rate_limited', 'out_of_credits'];
    const successes = new Map<string, number>(ids.map((id) => [id, 0]));
    const broker = table.broker();
    // Act
    await mapLimit(Array.from({ length: 1000 }), 32, async () => {
      try {
        const grant = await broker.lease(pool, { maxUses: 3 });
        const outcome = outcomes[Math.floor(Math.random() * outcomes.length)] ?? 'success';
        await broker.complete(pool, grant.leaseId, { outcome: outcome });
        if (outcome === 'success') successes.set(grant.keyId, (successes.get(grant.keyId) ?? 0) + 1);
      } catch (error) {
        if (!(error instanceof NoUsableKey)) throw error;
      }
    });
    // Assess
    const keys = await broker.listAll(pool);
    expect(keys).toHaveLength(60);
    for (const key of keys) {
      expect(key.usageCount).toBeLessThanOrEqual(4);
      expect(key.usageCount).toBe(successes.get(key.keyId));
    }
  });

  it('8 concurrent retries with one Idempotency-Key get one lease and count one use; the table holds no secret for it', async () => {
    // Prepare
    const pool = uniqueName('idem');
    const ids = await seed(pool, 3, { shards });
    const brokers = Array.from({ length: 8 }, () => table.broker());
    // Act
    const grants = await Promise.all(brokers.map((broker) => broker.lease(pool, {}, 'order-4711')));
    // Assess
    expect(new Set(grants.map((g) => g.leaseId)).size).toBe(1);
    const keys = await table.broker().listAll(pool);
    expect(keys.reduce((n, k) => n + k.usageCount, 0)).toBe(1);
    expect(keys.map((k) => k.keyId).sort()).toEqual([...ids].sort());
    const raw = await table.store.client.send(new ScanCommand({ TableName: table.tableName, ConsistentRead: true }));
    const records = (raw.Items ?? []).filter(
      (item) => String(item.keyId).startsWith('idem#') && item.leasePool === pool,
    );
    expect(records).toHaveLength(1);
    expect(JSON.stringify(records)).not.toContain(grants[0]?.apiKey ?? 'none');
  });

  it('a retry after the lease was completed is refused with idempotency_conflict, and counts nothing more', async () => {
    // Prepare
    const pool = uniqueName('idem-done');
    await seed(pool, 1, { shards });
    const broker = table.broker();
    const first = await broker.lease(pool, {}, 'job-1');
    await broker.complete(pool, first.leaseId);
    // Act
    const again = await table
      .broker()
      .lease(pool, {}, 'job-1')
      .catch((error: unknown) => error);
    // Assess
    expect(again).toBeInstanceOf(IdempotencyConflict);
    expect(JSON.stringify(again)).not.toContain(first.apiKey);
    const [key] = await broker.listAll(pool);
    expect(key?.usageCount).toBe(1);
  });

  it('a retry by another caller is refused; one by the caller who made it answers its lease', async () => {
    // Prepare
    const pool = uniqueName('idem-who');
    await seed(pool, 2, { shards });
    const first = await table.broker().lease(pool, {}, 'job-2', 'arn:aws:iam::111122223333:role/a');
    // Act
    const other = await table
      .broker()
      .lease(pool, {}, 'job-2', 'arn:aws:iam::111122223333:role/b')
      .catch((error: unknown) => error);
    const own = await table.broker().lease(pool, {}, 'job-2', 'arn:aws:iam::111122223333:role/a');
    // Assess
    expect(other).toBeInstanceOf(IdempotencyConflict);
    expect(own).toEqual(first);
  });
});
