/**
 * The pool store's contract: create, change, the shard layout while a reshard is pending, list.
 * Run against every implementation (test/support/store-contract.ts).
 */
import { describe, expect, it } from 'vitest';
import { POOL_DEFAULTS } from '../../lib/domain/types.js';
import { uniqueName } from '../support/dynamo.js';
import { iso, storeContract, STORES, T0 } from '../support/store-contract.js';

describe.each(STORES)('%s stores', (_name, build) => {
  const { fresh } = storeContract(build);

  describe('pools', () => {
    const at = (s: number): string => iso(T0 + s * 1000);

    it('ensure creates a pool with the defaults once; then leaves it as it is', async () => {
      // Prepare
      const { pools, pool: name } = fresh();
      // Act
      const created = await pools.ensure(name, at(0));
      const again = await pools.ensure(name, at(1));
      // Assess
      const policy = { ...POOL_DEFAULTS, pool: name, createdAt: at(0), updatedAt: at(0) };
      expect([created, again, await pools.get(name)]).toEqual([policy, policy, policy]);
    });

    it('put creates with the defaults for what it leaves out, and changes only what it gives', async () => {
      // Prepare
      const { pools, pool: name } = fresh();
      // Act
      const created = await pools.put(name, { maxUses: 5 }, at(0));
      const changed = await pools.put(name, { cooldownSeconds: 7 }, at(1));
      // Assess
      expect(created).toEqual({ ...POOL_DEFAULTS, maxUses: 5, pool: name, createdAt: at(0), updatedAt: at(0) });
      expect(changed).toEqual({ ...created, cooldownSeconds: 7, updatedAt: at(1) });
      expect(await pools.get(name)).toEqual(changed);
    });

    it('a change of shards keeps the widest layout to read until a reshard ends; the same count changes nothing', async () => {
      // Prepare
      const { pools, pool: name } = fresh();
      await pools.put(name, { shards: 4 }, at(0));
      // Act
      const narrower = await pools.put(name, { shards: 2 }, at(1));
      const wider = await pools.put(name, { shards: 8 }, at(2));
      const same = await pools.put(name, { shards: 8 }, at(3));
      // Assess
      expect(narrower).toMatchObject({ shards: 2, previousShards: 4, shardsChangedAt: at(1) });
      expect(wider).toMatchObject({ shards: 8, previousShards: 4, shardsChangedAt: at(2) });
      expect(same).toEqual({ ...wider, updatedAt: at(3) });
    });

    it('finishReshard ends only the reshard of exactly the layout given', async () => {
      // Prepare
      const { pools, pool: name } = fresh();
      await pools.put(name, { shards: 1 }, at(0));
      const pending = await pools.put(name, { shards: 4 }, at(1));
      // Act
      const otherShards = await pools.finishReshard(name, { shards: 2, previousShards: 1 });
      const otherPrevious = await pools.finishReshard(name, { shards: 4, previousShards: 2 });
      const finished = await pools.finishReshard(name, { shards: 4, previousShards: 1 });
      // Assess
      expect([otherShards, otherPrevious, finished]).toEqual([false, false, true]);
      const { previousShards: _p, shardsChangedAt: _c, ...done } = pending;
      expect(await pools.get(name)).toEqual(done);
    });

    it('get finds no unknown pool; list gives every pool by name', async () => {
      // Prepare
      const { pools } = fresh();
      const names = [uniqueName('pool'), uniqueName('pool'), uniqueName('pool')];
      for (const name of names) await pools.ensure(name, at(0));
      // Act
      const listed = (await pools.list()).map((p) => p.pool).filter((name) => names.includes(name));
      // Assess
      expect(await pools.get(uniqueName('none'))).toBeUndefined();
      expect(listed).toEqual([...names].sort((a, b) => a.localeCompare(b)));
    });
  });
});
