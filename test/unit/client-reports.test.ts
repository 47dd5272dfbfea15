/**
 * A client's report is a hypothesis with a bounded effect: `invalid_key`, `out_of_credits` and
 * `rate_limited` rest a key for at most the pool's maxClientCooldownSeconds (a key back in
 * service after that without anyone's help), never lower a rest or shorten it, and past the
 * pool's maxClientReportsPerMinute from one caller stop changing anything. On the in-memory
 * stores with a fake clock; the same on DynamoDB Local is in test/integration/pool-survives.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { NoUsableKey, ReportBudgetExceeded } from '../../lib/domain/errors.js';
import type { Outcome } from '../../lib/domain/types.js';
import { POOL, setup } from '../support/memory-world.js';

const alice = 'arn:aws:sts::111122223333:assumed-role/renderer/alice';
const bob = 'arn:aws:sts::111122223333:assumed-role/renderer/bob';

/** A pool of `keys` keys under the policy given, and a helper that leases one and reports `outcome` as `caller`. */
async function pool(keys: number, policy: Record<string, unknown> = {}) {
  const world = await setup(keys);
  await world.poolAdmin.set(POOL, policy);
  const report = async (outcome: Outcome, caller = alice, retryAfterSeconds?: number) => {
    const grant = await world.leasing.lease(POOL);
    const result = await world.leasing.complete(
      POOL,
      grant.leaseId,
      { outcome, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
      { by: 'client', caller },
    );
    return { grant, result };
  };
  return { ...world, report };
}

describe('a client report rests a key for a bounded time', () => {
  it('rate_limited rests the key at most maxClientCooldownSeconds, whatever Retry-After the client sends', async () => {
    // Prepare
    const { report, store, clock, leasing } = await pool(1, { maxClientCooldownSeconds: 120 });
    // Act
    const { grant, result } = await report('rate_limited', alice, 3600);
    // Assess
    expect(result.status).toBe('cooling');
    expect(store.peek(grant.keyId)).toMatchObject({
      status: 'cooling',
      statusBy: 'client',
      statusReason: 'rate_limited',
      cooldownUntil: clock.now() + 120_000,
    });
    clock.advance(120_000);
    expect((await leasing.lease(POOL)).keyId).toBe(grant.keyId);
  });

  it.each([
    ['invalid_key', 'suspect'],
    ['out_of_credits', 'exhausted'],
  ] as const)(
    '%s makes the key %s by the client until maxClientCooldownSeconds, then it is leased again without maintenance',
    async (outcome, status) => {
      // Prepare
      const { report, store, clock, leasing } = await pool(1, { maxClientCooldownSeconds: 60 });
      // Act
      const { grant, result } = await report(outcome);
      const resting = await leasing.lease(POOL).catch((error: unknown) => error);
      clock.advance(60_000);
      const back = await leasing.lease(POOL);
      // Assess
      expect(result).toMatchObject({ status, usageCount: 0 });
      expect(store.peek(grant.keyId)).toMatchObject({ status: 'active', usageCount: 1 });
      expect(resting).toBeInstanceOf(NoUsableKey);
      expect((resting as NoUsableKey).retryAfterSeconds).toBe(60);
      expect(back.keyId).toBe(grant.keyId);
    },
  );

  it('a provider-wide 402 reported on every key of a `none` pool leaves every key back in service within the bound', async () => {
    // Prepare
    const { report, clock, leasing, poolAdmin } = await pool(5, { maxClientCooldownSeconds: 300 });
    await poolAdmin.set(POOL, { provider: 'none' });
    for (let i = 0; i < 5; i++) await report('out_of_credits');
    const dry = await leasing.lease(POOL).catch((error: unknown) => error);
    // Act
    clock.advance(300_000);
    const back = [];
    for (let i = 0; i < 5; i++) back.push((await leasing.lease(POOL)).keyId);
    // Assess
    expect(dry).toBeInstanceOf(NoUsableKey);
    expect(new Set(back).size).toBe(5);
  });

  it('a report never shortens a rest nor lowers it: a suspect key stays suspect through a rate_limited report', async () => {
    // Prepare: two open leases of one key; the first reports invalid_key.
    const { leasing, store, clock } = await pool(1, { maxClientCooldownSeconds: 60 });
    const first = await leasing.lease(POOL);
    const second = await leasing.lease(POOL);
    await leasing.complete(POOL, first.leaseId, { outcome: 'invalid_key' });
    const suspect = { ...store.peek(first.keyId) };
    clock.advance(1_000);
    // Act
    const lower = await leasing.complete(POOL, second.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 3600 });
    // Assess
    expect(lower).toMatchObject({ status: 'suspect', usageCount: 0 });
    expect(store.peek(first.keyId)).toMatchObject({ status: 'suspect', cooldownUntil: suspect.cooldownUntil });
  });

  it("a report never changes an operator's disabled, nor a provider's verdict", async () => {
    // Prepare: pool one: a key the operator disabled under an open lease; pool two: one key, two
    // open leases, the first completed by the provider's own answer (proxy mode).
    const { leasing, admin, store } = await pool(1);
    const off = await leasing.lease(POOL);
    await admin.update(POOL, off.keyId, { status: 'disabled' });
    const other = await pool(1);
    const first = await other.leasing.lease(POOL);
    const second = await other.leasing.lease(POOL);
    await other.leasing.complete(POOL, first.leaseId, { outcome: 'out_of_credits' }, { by: 'provider' });
    // Act
    const onOff = await leasing.complete(POOL, off.leaseId, { outcome: 'invalid_key' });
    const onVerdict = await other.leasing.complete(POOL, second.leaseId, { outcome: 'rate_limited' });
    // Assess
    expect(onOff).toMatchObject({ status: 'disabled', usageCount: 0 });
    expect(store.peek(off.keyId)).toMatchObject({ status: 'disabled', statusBy: 'operator' });
    expect(onVerdict).toMatchObject({ status: 'exhausted', usageCount: 0 });
    expect(other.store.peek(first.keyId)).toMatchObject({ status: 'exhausted', statusBy: 'provider' });
  });
});

describe("a caller's report budget", () => {
  it('past maxClientReportsPerMinute, negative reports change no status but still close and refund; each caller has its own', async () => {
    // Prepare
    const { report, store } = await pool(30, { maxClientReportsPerMinute: 10 });
    // Act
    const results = [];
    for (let i = 0; i < 25; i++) results.push((await report('invalid_key', alice)).result);
    const bobs = (await report('invalid_key', bob)).result;
    // Assess
    expect(results.slice(0, 10).every((r) => r.status === 'suspect' && r.reportIgnored === undefined)).toBe(true);
    expect(results.slice(10).every((r) => r.status === 'active' && r.reportIgnored === 'over_budget')).toBe(true);
    expect(results.every((r) => r.usageCount === 0)).toBe(true);
    expect(bobs).toMatchObject({ status: 'suspect' });
    expect(bobs.reportIgnored).toBeUndefined();
    expect(store.calls.spendReport).toBe(26);
  });

  it('a new minute brings a new budget; success, failure and unknown are never counted against it', async () => {
    // Prepare
    const { report, clock } = await pool(6, { maxClientReportsPerMinute: 1 });
    await report('success');
    await report('failure');
    await report('unknown');
    const counted = (await report('rate_limited')).result;
    const over = (await report('rate_limited')).result;
    // Act
    clock.advance(60_000);
    const next = (await report('rate_limited')).result;
    // Assess
    expect([counted.status, over.status, next.status]).toEqual(['cooling', 'active', 'cooling']);
    expect(over.reportIgnored).toBe('over_budget');
  });

  it('lease-less usage past the budget is refused with the seconds to the next minute, and counts nothing', async () => {
    // Prepare
    const { leasing, ids, store, clock } = await pool(1, { maxClientReportsPerMinute: 3 });
    const keyId = ids[0] ?? '';
    clock.advance(15_000);
    // Act
    for (let i = 0; i < 3; i++) await leasing.increment(POOL, keyId, alice);
    const refused = await leasing.increment(POOL, keyId, alice).catch((error: unknown) => error);
    const other = await leasing.increment(POOL, keyId, bob);
    // Assess
    expect(refused).toBeInstanceOf(ReportBudgetExceeded);
    expect((refused as ReportBudgetExceeded).retryAfterSeconds).toBe(45);
    expect(other.usageCount).toBe(4);
    expect(store.peek(keyId)?.usageCount).toBe(4);
  });
});
