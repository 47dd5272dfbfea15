/**
 * The store contract for maintenance's writes: a balance recorded, and a status changed only
 * from the one seen.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import { withoutSecret } from '../../lib/domain/keys.js';
import { type KeyStatus } from '../../lib/domain/types.js';
import { iso, newKeyId, openSlot, storeContract, STORES, T0 } from '../support/store-contract.js';

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh, given, complete, candidateIds } = storeContract(build);

  describe('balance writes', () => {
    const checkedAt = iso(T0);

    it('record a balance whatever the status, and never create a key', async () => {
      // Prepare
      const { keys, balances } = fresh();
      const key = await given({ status: 'disabled' });
      const unknown = newKeyId();
      // Act
      const written = await balances.write({
        keyId: key.keyId,
        seenStatus: 'active',
        change: 'none',
        credits: 5,
        checkedAt,
      });
      const none = await balances.write({
        keyId: unknown,
        seenStatus: 'active',
        change: 'none',
        credits: 5,
        checkedAt,
      });
      // Assess
      expect(written).toEqual({
        applied: true,
        key: { ...withoutSecret(key), credits: 5, creditsCheckedAt: checkedAt },
      });
      expect(none).toEqual({ applied: false, current: undefined });
      expect(await keys.get(unknown)).toBeUndefined();
    });

    it.each([
      ['exhaust', 'exhausted'],
      ['disable', 'disabled'],
    ] as const)('%s takes the key out of the candidates, only from the status seen', async (change, status) => {
      // Prepare
      const { balances } = fresh();
      const key = await given({ status: 'cooling', cooldownUntil: T0 - 1 });
      // Act
      const stale = await balances.write({ keyId: key.keyId, seenStatus: 'active', change, checkedAt });
      const seen = await balances.write({ keyId: key.keyId, seenStatus: 'cooling', change, checkedAt });
      // Assess
      expect(stale).toEqual({ applied: false, current: withoutSecret(key) });
      expect(seen).toMatchObject({ applied: true, key: { status } });
      expect(await candidateIds()).toEqual([]);
    });

    it.each(['exhausted', 'cooling'] as const)(
      'reactivate brings a %s key back at its home, active, without a cooldown',
      async (seenStatus: KeyStatus) => {
        // Prepare
        const { balances } = fresh();
        const key = await given({ status: seenStatus, cooldownUntil: T0 + 9_000, shard: 2 });
        // Act
        const result = await balances.write({
          keyId: key.keyId,
          seenStatus,
          change: 'reactivate',
          credits: 50,
          checkedAt,
        });
        // Assess
        const { cooldownUntil: _gone, ...record } = withoutSecret(key);
        expect(result).toEqual({
          applied: true,
          key: { ...record, status: 'active', credits: 50, creditsCheckedAt: checkedAt },
        });
        expect(await candidateIds(2)).toEqual([key.keyId]);
      },
    );

    it("never change an operator's disabled, whatever status was seen; a provider's disabled only from that setter", async () => {
      // Prepare: disabled from before setters were kept (an operator's), by an operator, by the provider
      const { keys, balances, pool } = fresh();
      const legacy = await given({ status: 'disabled' });
      const byOperator = await given();
      await keys.update({ keyId: byOperator.keyId, pool, status: 'disabled', at: checkedAt });
      const byProvider = await given({ status: 'disabled', statusBy: 'provider', statusReason: 'provider_rejected' });
      const reactivate = { seenStatus: 'disabled', change: 'reactivate', credits: 50, checkedAt } as const;
      // Act
      const results = [
        await balances.write({ keyId: legacy.keyId, ...reactivate }),
        await balances.write({ keyId: byOperator.keyId, ...reactivate, seenBy: 'operator' }),
        await balances.write({ keyId: byProvider.keyId, ...reactivate }),
        await balances.write({ keyId: byProvider.keyId, ...reactivate, seenBy: 'provider' }),
      ];
      // Assess
      expect(results.map((r) => r.applied)).toEqual([false, false, false, true]);
      expect((await keys.get(legacy.keyId))?.status).toBe('disabled');
      expect((await keys.get(byOperator.keyId))?.status).toBe('disabled');
      expect(await keys.get(byProvider.keyId)).toMatchObject({ status: 'active', credits: 50 });
      expect((await keys.get(byProvider.keyId))?.statusBy).toBeUndefined();
      expect(await candidateIds()).toEqual([byProvider.keyId]);
    });

    it("never change a retired key's status, even from 'retired' as seen", async () => {
      // Prepare
      const { keys, balances } = fresh();
      const key = await given({
        status: 'retired',
        statusBy: 'operator',
        statusReason: 'operator',
        statusAt: checkedAt,
      });
      const seen = { keyId: key.keyId, seenStatus: 'retired', seenBy: 'operator', checkedAt } as const;
      // Act
      const results = [
        await balances.write({ ...seen, change: 'exhaust', credits: 0 }),
        await balances.write({ ...seen, change: 'disable' }),
        await balances.write({ ...seen, change: 'reactivate', credits: 50 }),
      ];
      // Assess
      expect(results.map((r) => r.applied)).toEqual([false, false, false]);
      expect(await keys.get(key.keyId)).toMatchObject({ status: 'retired', statusBy: 'operator' });
    });

    it('never bring back a key from a status set after the read went out; a verdict against it still applies', async () => {
      // Prepare: a caller's report stamped a second after the read's request
      const { keys, balances } = fresh();
      const report = {
        status: 'suspect',
        statusBy: 'client',
        statusReason: 'invalid_key',
        statusAt: iso(T0 + 1000),
      } as const;
      const reported = await given({ ...report, cooldownUntil: T0 + 600_000 });
      const alsoReported = await given({ ...report, cooldownUntil: T0 + 600_000 });
      const seen = { seenStatus: 'suspect', seenBy: 'client', checkedAt } as const;
      // Act
      const revived = await balances.write({ keyId: reported.keyId, ...seen, change: 'reactivate', credits: 50 });
      const disabled = await balances.write({ keyId: alsoReported.keyId, ...seen, change: 'disable' });
      // Assess
      expect([revived.applied, disabled.applied]).toEqual([false, true]);
      expect(await keys.get(reported.keyId)).toMatchObject({ status: 'suspect', statusBy: 'client' });
      expect(await keys.get(alsoReported.keyId)).toMatchObject({ status: 'disabled', statusBy: 'provider' });
    });

    it("a provider's verdict is stamped with who, why and when", async () => {
      // Prepare
      const { keys, balances } = fresh();
      const poor = await given();
      const refused = await given();
      // Act
      await balances.write({ keyId: poor.keyId, seenStatus: 'active', change: 'exhaust', credits: 1, checkedAt });
      await balances.write({ keyId: refused.keyId, seenStatus: 'active', change: 'disable', checkedAt });
      // Assess
      const provider = { statusBy: 'provider', statusAt: checkedAt };
      expect(await keys.get(poor.keyId)).toMatchObject({
        status: 'exhausted',
        statusReason: 'low_balance',
        ...provider,
      });
      expect(await keys.get(refused.keyId)).toMatchObject({
        status: 'disabled',
        statusReason: 'provider_rejected',
        ...provider,
      });
    });

    it('never touch the count or the open leases', async () => {
      // Prepare
      const { balances } = fresh();
      const key = await given({ usageCount: 1, slots: { '0': openSlot() } });
      // Act
      await balances.write({ keyId: key.keyId, seenStatus: 'active', change: 'exhaust', credits: 0, checkedAt });
      const completed = await complete(key, '0');
      // Assess
      expect(completed).toEqual({ applied: true, key: { keyId: key.keyId, usageCount: 1, status: 'exhausted' } });
    });
  });
});
