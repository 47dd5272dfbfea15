/**
 * The leasing path's store contract: the candidate read, the lease write with its cap, count,
 * slot and status conditions, idempotency records, the completion write (expiry, refunds,
 * status rules) and the lease-less increment.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { IdempotentLease } from '../../lib/ports/lease-store.js';
import type { StoredKey } from '../../lib/domain/types.js';
import { withoutSecret } from '../../lib/domain/keys.js';
import { outcomeStatusChange, refundsUse } from '../../lib/domain/rules.js';
import { KEY_STATUSES, OUTCOMES } from '../../lib/domain/types.js';
import { MAX_SORTED_COUNT } from '../../lib/table.js';
import { uniqueName } from '../support/dynamo.js';
import { iso, newKeyId, newNonce, openSlot, PLAIN, storeContract, STORES, T0 } from '../support/store-contract.js';

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, storedKey, given, stored, lease, complete, candidateIds } = storeContract(build);

  describe('candidates', () => {
    it('come fewest uses first, then least recently used (the last use, else the import)', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const usedLongAgo = await given({ usageCount: 1, lastUsedAt: iso(T0 - 2_000) });
      const usedLately = await given({ usageCount: 1, lastUsedAt: iso(T0 - 1_000) });
      const importedLast = await given({ createdAt: iso(T0 - 500) });
      const importedFirst = await given({ createdAt: iso(T0 - 900) });
      const usedOnce = await given({ createdAt: iso(T0 - 5_000), lastUsedAt: iso(T0 - 100) });
      // Act
      const page = await keys.candidates(pool, 0, 3, 25, T0);
      // Assess
      expect(page).toEqual({
        candidates: [
          { keyId: importedFirst.keyId, usageCount: 0 },
          { keyId: importedLast.keyId, usageCount: 0 },
          { keyId: usedOnce.keyId, usageCount: 0 },
          { keyId: usedLongAgo.keyId, usageCount: 1 },
          { keyId: usedLately.keyId, usageCount: 1 },
        ],
      });
    });

    it('hold only keys within the cap: a count of at most maxUses', async () => {
      // Prepare
      fresh();
      const byCount = [];
      for (let count = 0; count <= 4; count++) byCount.push(await given({ usageCount: count }));
      // Act
      const underTwo = await candidateIds(0, 2);
      // Assess
      expect(underTwo).toEqual(byCount.slice(0, 3).map((k) => k.keyId));
    });

    it("hold only the asked shard's active and cooling keys of the pool", async () => {
      // Prepare
      const { keys } = fresh();
      const active = await given();
      const cooling = await given({ status: 'cooling', cooldownUntil: T0 - 1 });
      for (const status of ['exhausted', 'disabled', 'suspect', 'undecryptable'] as const) await given({ status });
      await keys.insert(storedKey({ pool: uniqueName('other') }));
      const inShardTwo = await given({ shard: 2 });
      // Act
      const shardZero = await candidateIds(0);
      const shardTwo = await candidateIds(2);
      // Assess
      expect(shardZero.sort()).toEqual([active.keyId, cooling.keyId].sort());
      expect(shardTwo).toEqual([inShardTwo.keyId]);
    });

    it('skip a cooling key until its cooldown ends, and name the earliest end', async () => {
      // Prepare
      const { keys, pool } = fresh();
      await given({ status: 'cooling', cooldownUntil: T0 + 5_000, createdAt: iso(T0 - 4_000) });
      await given({ status: 'cooling', cooldownUntil: T0 + 3_000, createdAt: iso(T0 - 3_000) });
      const rested = await given({ status: 'cooling', cooldownUntil: T0, createdAt: iso(T0 - 2_000) });
      const active = await given({ createdAt: iso(T0 - 1_000) });
      // Act
      const page = await keys.candidates(pool, 0, 3, 25, T0);
      // Assess
      expect(page.candidates.map((c) => c.keyId)).toEqual([rested.keyId, active.keyId]);
      expect(page.coolingUntilMs).toBe(T0 + 3_000);
    });

    it('read on past a page of only cooling keys, and stop after the first page that holds one (the limit counts keys read)', async () => {
      // Prepare: in usage order: cooling, cooling | active, cooling | active
      const { keys, pool } = fresh();
      await given({ status: 'cooling', cooldownUntil: T0 + 9_000, createdAt: iso(T0 - 5_000) });
      await given({ status: 'cooling', cooldownUntil: T0 + 8_000, createdAt: iso(T0 - 4_000) });
      const first = await given({ usageCount: 1, createdAt: iso(T0 - 3_000) });
      await given({ usageCount: 1, status: 'cooling', cooldownUntil: T0 + 7_000, createdAt: iso(T0 - 2_000) });
      await given({ usageCount: 2 });
      // Act
      const page = await keys.candidates(pool, 0, 3, 2, T0);
      // Assess
      expect(page).toEqual({
        candidates: [{ keyId: first.keyId, usageCount: 1 }],
        coolingUntilMs: T0 + 7_000,
        more: true,
      });
    });

    it('say the range may go on past a page its limit cut short, skipped cooling keys included, and not past one that read it to its end', async () => {
      // Prepare: in usage order: cooling, active, active
      const { keys, pool } = fresh();
      await given({ status: 'cooling', cooldownUntil: T0 + 9_000, createdAt: iso(T0 - 3_000) });
      const first = await given({ createdAt: iso(T0 - 2_000) });
      const second = await given({ createdAt: iso(T0 - 1_000) });
      // Act: a page of two keys read holds one candidate (fewer than the limit), yet the range goes on
      const cut = await keys.candidates(pool, 0, 3, 2, T0);
      const whole = await keys.candidates(pool, 0, 3, 25, T0);
      // Assess
      expect(cut).toEqual({
        candidates: [{ keyId: first.keyId, usageCount: 0 }],
        coolingUntilMs: T0 + 9_000,
        more: true,
      });
      expect(whole).toEqual({
        candidates: [first, second].map(({ keyId }) => ({ keyId, usageCount: 0 })),
        coolingUntilMs: T0 + 9_000,
      });
    });
  });

  describe('the lease write', () => {
    it("counts the use, stamps the last use and holds the slot for this lease; the key goes behind the pool's others", async () => {
      // Prepare
      const { keys } = fresh();
      const key = await given({ createdAt: iso(T0 - 9_000) });
      const other = await given({ createdAt: iso(T0 - 1_000) });
      // Act
      const result = await lease(key, { slot: 5, nonce: '00112233aabbccdd', maxUses: 1 });
      // Assess
      const written = { ...key, usageCount: 1, lastUsedAt: iso(T0) };
      written.slots = { '5': { nonce: '00112233aabbccdd', expiresAtMs: T0 + 60_000 } };
      expect(result).toEqual({ granted: true, key: written });
      expect(await keys.get(key.keyId)).toEqual(written);
      expect(await candidateIds(0, 1)).toEqual([other.keyId, key.keyId]);
    });

    it('the cap: a key at count maxUses takes its last use, and no lease passes it', async () => {
      // Prepare
      fresh();
      const atCap = await given({ usageCount: 3 });
      const pastCap = await given({ usageCount: 4 });
      // Act
      const last = await lease(atCap, { maxUses: 3 });
      const beyond = await lease(pastCap, { maxUses: 3 });
      const lowerCap = await lease(await stored(atCap.keyId), { maxUses: 3, slot: 1 });
      // Assess
      expect(last).toMatchObject({ granted: true, key: { usageCount: 4 } });
      expect(beyond).toEqual({ granted: false, current: pastCap });
      expect(lowerCap).toMatchObject({ granted: false, current: { usageCount: 4 } });
    });

    it('is refused on a count other than the one seen, and answers the key as it is', async () => {
      // Prepare
      fresh();
      const key = await given({ usageCount: 1 });
      // Act
      const stale = await lease(key, { seenCount: 0 });
      const current = await lease(key, { seenCount: 1 });
      // Assess
      expect(stale).toEqual({ granted: false, current: key });
      expect(current.granted).toBe(true);
    });

    it('one holder per slot: an open slot refuses; an empty, completed or expired one takes the lease', async () => {
      // Prepare
      fresh();
      const key = await given({
        slots: {
          '0': openSlot(T0 + 1_000),
          '1': { ...openSlot(), outcome: 'success' },
          '2': openSlot(T0 - 1),
          '3': openSlot(T0),
        },
      });
      // Act
      const held = await lease(key, { slot: 0 });
      const atItsExpiry = await lease(key, { slot: 3 });
      const completed = await lease(key, { slot: 1 });
      const expired = await lease(key, { slot: 2, seenCount: 1 });
      const empty = await lease(key, { slot: 4, seenCount: 2 });
      // Assess
      expect([held.granted, atItsExpiry.granted]).toEqual([false, false]);
      expect([completed.granted, expired.granted, empty.granted]).toEqual([true, true, true]);
      expect((await stored(key.keyId)).usageCount).toBe(3);
    });

    it.each(['exhausted', 'disabled', 'suspect', 'undecryptable'] as const)(
      'is refused for a %s key',
      async (status) => {
        // Prepare
        fresh();
        const key = await given({ status });
        // Act
        const result = await lease(key);
        // Assess
        expect(result).toEqual({ granted: false, current: key });
      },
    );

    it('is refused for a cooling key until its cooldown ends; then the key is active again, its cooldown gone', async () => {
      // Prepare
      fresh();
      const key = await given({ status: 'cooling', cooldownUntil: T0 + 1_000 });
      // Act
      const resting = await lease(key, { nowMs: T0 + 999 });
      const rested = await lease(key, { nowMs: T0 + 1_000 });
      // Assess
      expect(resting.granted).toBe(false);
      expect(rested.granted).toBe(true);
      const after = await stored(key.keyId);
      expect(after.status).toBe('active');
      expect(after.cooldownUntil).toBeUndefined();
    });

    it("is refused under another pool's name, and in a shard other than the one the key is indexed in", async () => {
      // Prepare
      fresh();
      const key = await given({ shard: 2 });
      // Act
      const otherPool = await lease(key, { pool: 'another-pool' });
      const otherShard = await lease(key, { shard: 0 });
      const itsShard = await lease(key, { shard: 2 });
      // Assess
      expect([otherPool.granted, otherShard.granted, itsShard.granted]).toEqual([false, false, true]);
    });

    it('is refused for a key whose secret is still in plain text, and for an unknown key', async () => {
      // Prepare
      fresh();
      const plain = await given(PLAIN);
      // Act
      const result = await lease(plain);
      const unknown = await lease(storedKey());
      // Assess
      expect(result).toEqual({ granted: false, current: plain });
      expect(unknown).toEqual({ granted: false, current: undefined });
    });
  });

  describe('idempotency records', () => {
    /** A record for a lease of `key` under the Idempotency-Key digest `id`, live until `expiresAtMs`. */
    const record = (key: StoredKey, id: string, expiresAtMs = T0 + 60_000): IdempotentLease => ({
      id,
      requestHash: 'hash',
      leaseId: `${key.keyId}.0.x.${newNonce()}`,
      keyId: key.keyId,
      pool: key.pool,
      usageCount: key.usageCount,
      expiresAtMs,
    });

    it('a lease and its record are written together; the record reads back', async () => {
      // Prepare
      const { keys } = fresh();
      const key = await given();
      const id = randomBytes(16).toString('hex');
      const written = record(key, id);
      // Act
      const result = await lease(key, { idempotency: written });
      // Assess
      expect(result).toEqual({ granted: true, key: await stored(key.keyId) });
      expect(await keys.idempotentLease(id)).toEqual(written);
      expect(await keys.idempotentLease(randomBytes(16).toString('hex'))).toBeUndefined();
    });

    /**
     * A fresh pool's `first` key leased under a new Idempotency-Key digest `id` (its record
     * `written`, live until `expiresAtMs`), and a `second` key made of `fields`.
     */
    async function oneLeased(fields: Partial<StoredKey> = {}, expiresAtMs?: number) {
      const { keys } = fresh();
      const first = await given();
      const id = randomBytes(16).toString('hex');
      const written = record(first, id, expiresAtMs);
      await lease(first, { idempotency: written });
      return { keys, id, written, second: await given(fields) };
    }

    it('one lease per key while it lives: a second lease under the same id writes nothing', async () => {
      // Prepare
      const { keys, id, written, second } = await oneLeased();
      // Act
      const again = await lease(second, { idempotency: record(second, id) });
      // Assess
      expect(again).toEqual({ granted: false, idempotencyTaken: true });
      expect(await keys.get(second.keyId)).toEqual(second);
      expect(await keys.idempotentLease(id)).toEqual(written);
    });

    it("an expired record gives way to the next lease's", async () => {
      // Prepare
      const { keys, id, second } = await oneLeased({}, T0 + 10);
      const next = record(second, id);
      // Act
      const result = await lease(second, { nowMs: T0 + 11, idempotency: next });
      // Assess
      expect(result.granted).toBe(true);
      expect(await keys.idempotentLease(id)).toEqual(next);
    });

    it('a refused lease writes no record', async () => {
      // Prepare
      const { keys } = fresh();
      const key = await given({ status: 'disabled' });
      const id = randomBytes(16).toString('hex');
      // Act
      const result = await lease(key, { idempotency: record(key, id) });
      // Assess
      expect(result).toEqual({ granted: false, current: key });
      expect(await keys.idempotentLease(id)).toBeUndefined();
    });

    it('when both the key and a live record refuse, the answer is the record taken', async () => {
      // Prepare
      const { id, second } = await oneLeased({ status: 'disabled' });
      // Act
      const result = await lease(second, { idempotency: record(second, id) });
      // Assess
      expect(result).toEqual({ granted: false, idempotencyTaken: true });
    });

    it('release ends only the record of the lease it names; then the id leases anew', async () => {
      // Prepare
      const { keys, id, written, second } = await oneLeased();
      // Act
      const wrongLease = await keys.releaseIdempotentLease(id, `${written.leaseId}0`);
      const held = await lease(second, { idempotency: record(second, id) });
      const released = await keys.releaseIdempotentLease(id, written.leaseId);
      const anew = await lease(second, { idempotency: record(second, id) });
      // Assess
      expect([wrongLease, held, released]).toEqual([false, { granted: false, idempotencyTaken: true }, true]);
      expect(anew.granted).toBe(true);
      expect(await keys.releaseIdempotentLease(randomBytes(16).toString('hex'), written.leaseId)).toBe(false);
    });
  });

  describe('the completion write', () => {
    it.each(OUTCOMES)('%s closes the slot and gives the use back exactly when refundsUse says', async (outcome) => {
      // Prepare
      fresh();
      const key = await given({ usageCount: 2, slots: { '1': openSlot() } });
      // Act
      const result = await complete(key, '1', { outcome, statusChange: 'none' });
      // Assess
      const count = refundsUse(outcome) ? 1 : 2;
      expect(result).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: count, status: 'active' } });
      const after = await stored(key.keyId);
      expect(after.usageCount).toBe(count);
      expect(after.slots['1']?.outcome).toBe(outcome);
    });

    it('counts once: a second completion is refused, changes nothing, and shows the closed slot', async () => {
      // Prepare
      const { keys } = fresh();
      const key = await given({ usageCount: 1, slots: { '0': openSlot() } });
      await complete(key, '0', { outcome: 'failure' });
      const after = await stored(key.keyId);
      // Act
      const again = await complete(key, '0', { outcome: 'failure' });
      // Assess
      expect(again).toEqual({ applied: false, current: { ...withoutSecret(after), slots: after.slots } });
      expect(await keys.get(key.keyId)).toEqual(after);
    });

    it("is refused for another lease's nonce, under another pool's name, and for an unknown key", async () => {
      // Prepare
      const { keys } = fresh();
      const key = await given({ usageCount: 1, slots: { '0': openSlot() } });
      const current = { ...withoutSecret(key), slots: key.slots };
      // Act
      const otherNonce = await complete(key, '0', { nonce: newNonce() });
      const otherPool = await complete(key, '0', { pool: 'another-pool' });
      const unknown = await complete({ ...key, keyId: newKeyId() }, '0');
      // Assess
      expect(otherNonce).toEqual({ applied: false, current });
      expect(otherPool).toEqual({ applied: false, current });
      expect(unknown).toEqual({ applied: false, current: undefined });
      expect(await keys.get(key.keyId)).toEqual(key);
    });

    it("expiry is the stored slot's: a completion at the expiry applies, one after it is refused and the use stays counted", async () => {
      // Prepare
      fresh();
      const onTime = await given({ usageCount: 1, slots: { '0': openSlot(T0 + 100) } });
      const late = await given({ usageCount: 1, slots: { '0': openSlot(T0 + 100) } });
      // Act
      const atExpiry = await complete(onTime, '0', { outcome: 'failure', nowMs: T0 + 100 });
      const afterExpiry = await complete(late, '0', { outcome: 'failure', nowMs: T0 + 101 });
      // Assess
      expect(atExpiry.applied).toBe(true);
      expect(afterExpiry.applied).toBe(false);
      expect((await stored(late.keyId)).usageCount).toBe(1);
    });

    const statusCases = (['invalid_key', 'out_of_credits', 'rate_limited'] as const).flatMap((outcome) =>
      KEY_STATUSES.map((status) => [outcome, status] as const),
    );
    it.each(statusCases)(
      '%s from a %s key moves it as outcomeStatusChange says, or is refused',
      async (outcome, status) => {
        // Prepare
        fresh();
        const resting = status === 'cooling' ? { cooldownUntil: T0 + 1_000 } : {};
        const key = await given({ status, ...resting, usageCount: 1, slots: { '0': openSlot() } });
        const change = outcomeStatusChange(outcome);
        if (!change) throw new Error(`${outcome} changes no status`);
        // Act
        const result = await complete(key, '0', { outcome, cooldownUntilMs: T0 + 60_000 });
        // Assess: the answer names a cooldown only for a cooling key
        const allowed = change.from.includes(status);
        const cooldown = change.to === 'cooling' ? { cooldownUntil: T0 + 60_000 } : {};
        const moved = { keyId: key.keyId, usageCount: 0, status: change.to, ...cooldown };
        expect(result.applied).toBe(allowed);
        if (result.applied) expect(result.key).toEqual(moved);
        expect((await stored(key.keyId)).status).toBe(allowed ? change.to : status);
      },
    );

    it("an operator's disabled outranks a report: without a status change the outcome and its refund are recorded, the status kept", async () => {
      // Prepare
      fresh();
      const key = await given({ status: 'disabled', usageCount: 1, slots: { '0': openSlot() } });
      // Act
      const result = await complete(key, '0', { outcome: 'invalid_key', statusChange: 'none' });
      // Assess
      expect(result).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 0, status: 'disabled' } });
    });

    it('a report only lengthens a cooldown: a shorter one is refused, or kept with keep-cooldown', async () => {
      // Prepare
      fresh();
      const until = T0 + 100_000;
      const key = await given({
        status: 'cooling',
        cooldownUntil: until,
        usageCount: 2,
        slots: { '0': openSlot(), '1': openSlot() },
      });
      // Act
      const shorter = await complete(key, '0', { outcome: 'rate_limited', cooldownUntilMs: until - 1 });
      const kept = await complete(key, '0', { outcome: 'rate_limited', statusChange: 'keep-cooldown' });
      const longer = await complete(key, '1', { outcome: 'rate_limited', cooldownUntilMs: until + 1 });
      // Assess
      expect(shorter.applied).toBe(false);
      const cooling = { keyId: key.keyId, status: 'cooling' };
      expect(kept).toEqual({ applied: true, key: { ...cooling, usageCount: 1, cooldownUntil: until } });
      expect(longer).toEqual({ applied: true, key: { ...cooling, usageCount: 0, cooldownUntil: until + 1 } });
    });

    it('a report that takes a key out of use takes it out of the candidates; a cooling one is skipped until it rests', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const leased = { usageCount: 1, slots: { '0': openSlot() } };
      const [suspect, exhausted, cooling] = [await given(leased), await given(leased), await given(leased)];
      // Act
      await complete(suspect, '0', { outcome: 'invalid_key' });
      await complete(exhausted, '0', { outcome: 'out_of_credits' });
      await complete(cooling, '0', { outcome: 'rate_limited', cooldownUntilMs: T0 + 5_000 });
      // Assess
      expect(await keys.candidates(pool, 0, 3, 25, T0)).toEqual({ candidates: [], coolingUntilMs: T0 + 5_000 });
      expect(await candidateIds(0, 3, T0 + 5_000)).toEqual([cooling.keyId]);
    });

    it('a refund moves the key back one use in the order; from past the top sort tier it stays in the top tier', async () => {
      // Prepare
      fresh();
      const refunded = await given({ createdAt: iso(T0 - 9_000) });
      const granted = await lease(refunded, { slot: 0 });
      if (!granted.granted) throw new Error('the lease was refused');
      const atTop = await given({ usageCount: MAX_SORTED_COUNT, slots: { '0': openSlot() } });
      const pastTop = await given({ usageCount: MAX_SORTED_COUNT + 1, slots: { '0': openSlot() } });
      // Act
      await complete(granted.key, '0', { outcome: 'failure' });
      await complete(atTop, '0', { outcome: 'failure' });
      await complete(pastTop, '0', { outcome: 'failure' });
      // Assess
      expect(await candidateIds(0, 0)).toEqual([refunded.keyId]);
      expect(await candidateIds(0, MAX_SORTED_COUNT - 1)).toEqual([refunded.keyId, atTop.keyId]);
      expect((await stored(pastTop.keyId)).usageCount).toBe(MAX_SORTED_COUNT);
    });
  });

  describe('increment', () => {
    it('adds one use and stamps the last use, keeping the key where it was among keys of its count', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const older = await given({ createdAt: iso(T0 - 2_000) });
      const newer = await given({ createdAt: iso(T0 - 1_000) });
      // Act
      const first = await keys.increment(pool, newer.keyId, T0);
      await keys.increment(pool, older.keyId, T0 + 1);
      // Assess
      expect(first).toEqual({ keyId: newer.keyId, usageCount: 1 });
      expect((await stored(older.keyId)).lastUsedAt).toBe(iso(T0 + 1));
      expect(await candidateIds()).toEqual([older.keyId, newer.keyId]);
    });

    it("finds no key under another pool's name nor an unknown one, and counts nothing", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const key = await given();
      // Act
      const otherPool = await keys.increment('another-pool', key.keyId, T0);
      const unknown = await keys.increment(pool, newKeyId(), T0);
      // Assess
      expect([otherPool, unknown]).toEqual([undefined, undefined]);
      expect(await keys.get(key.keyId)).toEqual(key);
    });

    it('counts on past the top sort tier, the key sorted above every cap', async () => {
      // Prepare
      const { keys, pool } = fresh();
      const below = await given({ usageCount: MAX_SORTED_COUNT - 2 });
      const past = await given({ usageCount: MAX_SORTED_COUNT + 5 });
      // Act
      await keys.increment(pool, below.keyId, T0);
      const counted = await keys.increment(pool, past.keyId, T0);
      // Assess
      expect(counted?.usageCount).toBe(MAX_SORTED_COUNT + 6);
      expect(await candidateIds(0, MAX_SORTED_COUNT - 2)).toEqual([]);
      expect(await candidateIds(0, MAX_SORTED_COUNT - 1)).toEqual([below.keyId]);
    });
  });
});
