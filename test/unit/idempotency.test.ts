/**
 * Idempotent leases on the in-memory store: the same Idempotency-Key while its lease lives
 * answers that lease and counts one use; another request under the same key is refused; once
 * the lease expired the key leases anew. The same on DynamoDB Local (a transaction) is in
 * test/integration/broker.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { IdempotencyConflict, InvalidRequest } from '../../lib/domain/errors.js';
import { idempotencyId } from '../../lib/domain/idempotency.js';
import { POOL, setup } from '../support/memory-world.js';

describe('Idempotency-Key on a lease', () => {
  it('a retry with the same key answers the same lease, with its secret, and counts one use', async () => {
    // Prepare
    const { leasing, store, ids } = await setup(2);
    // Act
    const first = await leasing.lease(POOL, {}, 'retry-me-1');
    const again = await leasing.lease(POOL, {}, 'retry-me-1');
    // Assess
    expect(again).toEqual(first);
    expect(store.peek(first.keyId)?.usageCount).toBe(1);
    expect(store.peek(ids.find((id) => id !== first.keyId) ?? '')?.usageCount).toBe(0);
  });

  it('concurrent requests with one key get one lease between them', async () => {
    // Prepare
    const { leasing, store, ids } = await setup(3);
    // Act
    const grants = await Promise.all(Array.from({ length: 6 }, () => leasing.lease(POOL, {}, 'together')));
    // Assess
    expect(new Set(grants.map((g) => g.leaseId)).size).toBe(1);
    expect(ids.reduce((n, id) => n + (store.peek(id)?.usageCount ?? 0), 0)).toBe(1);
  });

  it("the key a request tried before it answered with its twin's lease keeps its place: the next lease takes it", async () => {
    // Prepare
    const { leasing, ids } = await setup(3);
    const twins = await Promise.all([1, 2].map(() => leasing.lease(POOL, {}, 'twins')));
    // Act
    const next = await leasing.lease(POOL);
    // Assess: the twins answered with the first key; the second, tried by the twin and untouched, comes next.
    expect(twins.map((g) => g.keyId)).toEqual([ids[0], ids[0]]);
    expect(next.keyId).toBe(ids[1]);
  });

  it('the same key for another request is refused; another key leases anew', async () => {
    // Prepare
    const { leasing } = await setup(2);
    const first = await leasing.lease(POOL, {}, 'k1');
    // Act / Assess
    await expect(leasing.lease(POOL, { maxUses: 0 }, 'k1')).rejects.toBeInstanceOf(InvalidRequest);
    expect((await leasing.lease(POOL, {}, 'k2')).leaseId).not.toBe(first.leaseId);
  });

  it('after its lease expired the key leases anew', async () => {
    // Prepare
    const { leasing, clock } = await setup(1);
    const first = await leasing.lease(POOL, { ttlSeconds: 1 }, 'short');
    clock.advance(1_001);
    // Act
    const again = await leasing.lease(POOL, { ttlSeconds: 1 }, 'short');
    // Assess
    expect(again.leaseId).not.toBe(first.leaseId);
    expect(again.usageCount).toBe(1);
  });

  it('the record names the lease, never the secret, and is bound to the pool', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const grant = await leasing.lease(POOL, {}, 'secret-free');
    // Act
    const record = await store.idempotentLease(idempotencyId(POOL, 'secret-free'));
    // Assess
    expect(record).toMatchObject({ leaseId: grant.leaseId, keyId: grant.keyId, pool: POOL, usageCount: 0 });
    expect(JSON.stringify(record)).not.toContain(grant.apiKey);
    expect(idempotencyId('other', 'secret-free')).not.toBe(idempotencyId(POOL, 'secret-free'));
  });
});

describe('a replay answers only a lease that still stands, and only to its caller', () => {
  const alice = 'arn:aws:sts::111122223333:assumed-role/renderer/alice';
  const bob = 'arn:aws:sts::111122223333:assumed-role/renderer/bob';

  it('after the lease was completed the same key is refused with idempotency_conflict, and counts nothing', async () => {
    // Prepare
    const { leasing, store } = await setup(1);
    const first = await leasing.lease(POOL, {}, 'done-1', alice);
    await leasing.complete(POOL, first.leaseId);
    // Act
    const again = await leasing.lease(POOL, {}, 'done-1', alice).catch((error: unknown) => error);
    // Assess
    expect(again).toBeInstanceOf(IdempotencyConflict);
    expect((again as Error).message).toContain('completed');
    expect(store.peek(first.keyId)?.usageCount).toBe(1);
  });

  it("after the operator disabled the key the same key is refused, and the key's secret is not answered", async () => {
    // Prepare
    const { leasing, admin } = await setup(2);
    const first = await leasing.lease(POOL, {}, 'off-1', alice);
    await admin.update(POOL, first.keyId, { status: 'disabled' });
    // Act
    const again = await leasing.lease(POOL, {}, 'off-1', alice).catch((error: unknown) => error);
    // Assess
    expect(again).toBeInstanceOf(IdempotencyConflict);
    expect((again as Error).message).toContain('disabled');
    expect(JSON.stringify(again)).not.toContain(first.apiKey);
  });

  it('another caller with the same key is refused; the caller who made it gets its lease', async () => {
    // Prepare
    const { leasing } = await setup(2);
    const first = await leasing.lease(POOL, {}, 'shared-1', alice);
    // Act
    const other = await leasing.lease(POOL, {}, 'shared-1', bob).catch((error: unknown) => error);
    const own = await leasing.lease(POOL, {}, 'shared-1', alice);
    // Assess
    expect(other).toBeInstanceOf(IdempotencyConflict);
    expect((other as Error).message).toContain('another caller');
    expect(JSON.stringify(other)).not.toContain(first.apiKey);
    expect(own).toEqual(first);
  });

  it('a lease whose slot a reset ended is refused', async () => {
    // Prepare
    const { leasing, admin } = await setup(1);
    const first = await leasing.lease(POOL, {}, 'reset-1');
    await admin.update(POOL, first.keyId, { usageCount: 0 });
    // Act
    const again = await leasing.lease(POOL, {}, 'reset-1').catch((error: unknown) => error);
    // Assess
    expect(again).toBeInstanceOf(IdempotencyConflict);
  });
});
