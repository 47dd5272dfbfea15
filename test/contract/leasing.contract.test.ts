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
import { refundsUse, reportApplies, reportChange } from '../../lib/domain/rules.js';
import { OUTCOMES } from '../../lib/domain/types.js';
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

    it('read past the keys a request skips as past cooling ones, on to the first other key', async () => {
      // Prepare: in usage order: cooling, tried | active
      const { keys, pool } = fresh();
      await given({ status: 'cooling', cooldownUntil: T0 + 9_000, createdAt: iso(T0 - 3_000) });
      const tried = await given({ createdAt: iso(T0 - 2_000) });
      const next = await given({ usageCount: 1 });
      // Act
      const page = await keys.candidates(pool, 0, 3, 2, T0, new Set([tried.keyId]));
      // Assess
      expect(page).toEqual({ candidates: [{ keyId: next.keyId, usageCount: 1 }], coolingUntilMs: T0 + 9_000 });
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
      callerDigest: 'caller',
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
      const result = await complete(key, '1', { outcome });
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

    /** The statuses a report may meet, each as stored: who set it and until when. */
    const MET: Record<string, Partial<StoredKey>> = {
      active: {},
      'cooling, resting': { status: 'cooling', statusBy: 'client', cooldownUntil: T0 + 1_000 },
      'cooling, rest ended': { status: 'cooling', statusBy: 'client', cooldownUntil: T0 - 1 },
      "cooling, the provider's": { status: 'cooling', statusBy: 'provider', cooldownUntil: T0 + 900_000 },
      "exhausted, a client's": { status: 'exhausted', statusBy: 'client', cooldownUntil: T0 + 1_000 },
      "exhausted, the provider's": { status: 'exhausted', statusBy: 'provider' },
      "suspect, a client's": { status: 'suspect', statusBy: 'client', cooldownUntil: T0 + 1_000 },
      "suspect, the provider's": { status: 'suspect', statusBy: 'provider' },
      "disabled, an operator's": { status: 'disabled', statusBy: 'operator' },
      'disabled from before setters were kept': { status: 'disabled' },
      "disabled, the provider's": { status: 'disabled', statusBy: 'provider' },
      undecryptable: { status: 'undecryptable', statusBy: 'sealing' },
    };
    const POLICY = { cooldownSeconds: 60, maxClientCooldownSeconds: 300 };
    const reportCases = (['client', 'provider'] as const).flatMap((by) =>
      (['invalid_key', 'out_of_credits', 'rate_limited'] as const).flatMap((outcome) =>
        Object.keys(MET).map((met) => [by, outcome, met] as const),
      ),
    );
    it.each(reportCases)(
      "a %s's %s on a key %s applies exactly when reportApplies says, with its stamp",
      async (by, outcome, met) => {
        // Prepare
        fresh();
        const key = await given({ ...MET[met], usageCount: 1, slots: { '0': openSlot() } });
        const change = reportChange(outcome, by, POLICY, 3_600, T0 + 1);
        if (!change) throw new Error(`${outcome} changes no status`);
        // Act
        const result = await complete(key, '0', { outcome, change });
        // Assess
        const applies = reportApplies(key, change, T0 + 1);
        expect(result.applied).toBe(applies);
        const after = await stored(key.keyId);
        if (!applies) {
          expect(after).toEqual(key);
          return;
        }
        const { stamp } = change;
        expect(result).toEqual({
          applied: true,
          key: {
            keyId: key.keyId,
            usageCount: 0,
            status: stamp.status,
            ...(stamp.until === undefined ? {} : { cooldownUntil: stamp.until }),
          },
        });
        expect(after).toMatchObject({
          status: stamp.status,
          statusBy: by,
          statusReason: outcome,
          statusAt: iso(T0 + 1),
        });
        expect(after.cooldownUntil).toBe(stamp.until);
        // A rest stays in the index, skipped until it ends; a verdict without an end leaves it.
        expect(await candidateIds(0, 3, (stamp.until ?? T0) + 1)).toEqual(stamp.until === undefined ? [] : [key.keyId]);
      },
    );

    it("a client's report rests the key for at most maxClientCooldownSeconds; a rate_limited one for its Retry-After up to that", () => {
      // Prepare / Act
      const now = T0;
      const suspect = reportChange('invalid_key', 'client', POLICY, undefined, now);
      const longRetry = reportChange('rate_limited', 'client', POLICY, 3_600, now);
      const shortRetry = reportChange('rate_limited', 'client', POLICY, 5, now);
      const noRetry = reportChange('rate_limited', 'client', POLICY, undefined, now);
      const providerRetry = reportChange('rate_limited', 'provider', POLICY, 5, now);
      const verdict = reportChange('out_of_credits', 'provider', POLICY, undefined, now);
      // Assess
      expect(suspect?.stamp).toEqual({
        status: 'suspect',
        by: 'client',
        reason: 'invalid_key',
        at: iso(now),
        until: now + 300_000,
      });
      expect([longRetry, shortRetry, noRetry].map((c) => c?.stamp.until)).toEqual([
        now + 300_000,
        now + 5_000,
        now + 60_000,
      ]);
      expect(providerRetry?.stamp.until).toBe(now + 60_000);
      expect(verdict?.stamp).toEqual({ status: 'exhausted', by: 'provider', reason: 'out_of_credits', at: iso(now) });
      expect(reportChange('failure', 'client', POLICY, undefined, now)).toBeUndefined();
    });

    it("an operator's disabled outranks a report: without a status change the outcome and its refund are recorded, the status kept", async () => {
      // Prepare
      fresh();
      const key = await given({ status: 'disabled', usageCount: 1, slots: { '0': openSlot() } });
      // Act
      const result = await complete(key, '0', { outcome: 'invalid_key' });
      // Assess
      expect(result).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 0, status: 'disabled' } });
    });

    it('a report only lengthens a rest: a shorter one is refused; without a change its answer shows the rest there', async () => {
      // Prepare
      fresh();
      const until = T0 + 100_000;
      const key = await given({
        status: 'cooling',
        statusBy: 'client',
        cooldownUntil: until,
        usageCount: 2,
        slots: { '0': openSlot(), '1': openSlot() },
      });
      const cool = (seconds: number) =>
        reportChange('rate_limited', 'client', { ...POLICY, maxClientCooldownSeconds: 3_600 }, seconds, T0);
      // Act
      const shorter = await complete(key, '0', { outcome: 'rate_limited', change: cool(99) });
      const unchanged = await complete(key, '0', { outcome: 'rate_limited' });
      const longer = await complete(key, '1', { outcome: 'rate_limited', change: cool(101) });
      // Assess
      expect(shorter.applied).toBe(false);
      const cooling = { keyId: key.keyId, status: 'cooling' };
      expect(unchanged).toEqual({ applied: true, key: { ...cooling, usageCount: 1, cooldownUntil: until } });
      expect(longer).toEqual({ applied: true, key: { ...cooling, usageCount: 0, cooldownUntil: T0 + 101_000 } });
    });

    it("a client's reports rest keys in the candidates, skipped until each rest ends; the provider's verdicts take them out", async () => {
      // Prepare
      const { keys, pool } = fresh();
      const leased = { usageCount: 1, slots: { '0': openSlot() } };
      const [suspect, exhausted, cooling, verdict] = [
        await given(leased),
        await given(leased),
        await given(leased),
        await given(leased),
      ];
      const client = (outcome: 'invalid_key' | 'out_of_credits' | 'rate_limited', seconds: number) =>
        reportChange(outcome, 'client', { cooldownSeconds: 60, maxClientCooldownSeconds: seconds }, undefined, T0);
      // Act
      await complete(suspect, '0', { outcome: 'invalid_key', change: client('invalid_key', 7) });
      await complete(exhausted, '0', { outcome: 'out_of_credits', change: client('out_of_credits', 6) });
      await complete(cooling, '0', { outcome: 'rate_limited', change: client('rate_limited', 5) });
      await complete(verdict, '0', {
        outcome: 'invalid_key',
        change: reportChange('invalid_key', 'provider', POLICY, undefined, T0),
      });
      // Assess
      expect(await keys.candidates(pool, 0, 3, 25, T0)).toEqual({ candidates: [], coolingUntilMs: T0 + 5_000 });
      expect(await candidateIds(0, 3, T0 + 5_000)).toEqual([cooling.keyId]);
      expect((await candidateIds(0, 3, T0 + 7_000)).sort()).toEqual(
        [suspect.keyId, exhausted.keyId, cooling.keyId].sort(),
      );
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

  describe('report budgets', () => {
    it('spend up to the maximum in a window, then refuse with the seconds to the next; per pool and caller', async () => {
      // Prepare: 15 s into a window
      const { keys, pool } = fresh();
      const at = T0 + 15_000;
      // Act
      const spent = [];
      for (let i = 0; i < 4; i++) spent.push(await keys.spendReport(pool, 'alice', at, 3));
      const otherCaller = await keys.spendReport(pool, 'bob', at, 3);
      const otherPool = await keys.spendReport(`${pool}-2`, 'alice', at, 3);
      const raised = await keys.spendReport(pool, 'alice', at, 4);
      const nextWindow = await keys.spendReport(pool, 'alice', T0 + 60_000, 3);
      // Assess
      expect(spent).toEqual([
        { spent: true },
        { spent: true },
        { spent: true },
        { spent: false, retryAfterSeconds: 45 },
      ]);
      expect([otherCaller, otherPool, raised, nextWindow]).toEqual([
        { spent: true },
        { spent: true },
        { spent: true },
        { spent: true },
      ]);
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
