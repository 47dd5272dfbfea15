/**
 * Sealed secrets in the client's use cases and in `keypool reseal`, on the in-memory store with
 * the FakeSealer (which binds a value to its pool and key id as the real sealer does): what a
 * lease does with a key it cannot open, with a key service that fails, with a key still in
 * plain text, and what a reseal run counts. The same paths on DynamoDB Local with the real
 * sealer are in test/integration/sealed-table.test.ts and test/integration/reseal-cli.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { NoUsableKey, SealingMisconfigured, SealingUnavailable, SecretUndecryptable } from '../../lib/domain/errors.js';
import type { LeaseAttempt, LeaseAttemptResult } from '../../lib/ports/lease-store.js';
import type { SecretReplacement } from '../../lib/ports/reseal-store.js';
import type { UndecryptableMark } from '../../lib/ports/undecryptable.js';
import type { StoredKey } from '../../lib/domain/types.js';
import { CONTENTION_MEMORY_MS, Leasing } from '../../lib/use-cases/leasing.js';
import { RESEAL_PROBE_KEYS, reseal } from '../../lib/use-cases/reseal.js';
import { MemoryKeyStore } from '../support/memory-key-store.js';
import { POOL, setup, world } from '../support/memory-world.js';

/** Swaps two keys' stored ciphertexts in place, as someone who can write the table could. */
function swapSecrets(store: MemoryKeyStore, a: string, b: string): void {
  const first = held(store, a);
  const second = held(store, b);
  [first.secret, second.secret] = [second.secret, first.secret];
}

/** The stored key itself, to arrange a state directly. */
function held(store: MemoryKeyStore, keyId: string): StoredKey {
  const key = store.peek(keyId);
  if (!key) throw new Error(`no key ${keyId}`);
  return key;
}

/** A key item as written before sealing: the secret in plain text. */
function plainKey(keyId: string, secret: string): StoredKey {
  return {
    keyId,
    pool: POOL,
    secret,
    sealed: false,
    maskedKey: 'sk-...xxxx',
    usageCount: 0,
    status: 'active',
    createdAt: '2025-01-01T00:00:00.000Z',
    lastUsedAt: null,
    slots: {},
  };
}

/** A store that fails the test instead of letting a lease loop for ever on its lease writes. */
class BoundedStore extends MemoryKeyStore {
  override tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    if ((this.calls.tryLease ?? 0) >= 200)
      return Promise.reject(new Error('more than 200 lease writes for one test: the lease is looping'));
    return super.tryLease(attempt);
  }
}

/** setup() on a BoundedStore: two keys imported in order. */
async function setupBounded() {
  const w = world(new BoundedStore());
  const ids = await w.importKeys('bounded', 2);
  return { ...w, ids };
}

describe('a lease and a secret that cannot be opened', () => {
  it('skips the key, takes it out of the pool with its use refunded, reports it, and grants the next key', async () => {
    // Prepare: the first key in LRU order holds a ciphertext bound to another key id.
    const { store, pools, sealer, clock, ids } = await setup(3);
    const [first = '', second = '', third = ''] = ids;
    const reported: SecretUndecryptable[] = [];
    // random 0: after a key it cannot open, the lease tries the next candidate in LRU order.
    const leasing = new Leasing({
      store,
      pools,
      sealer,
      clock: clock.now,
      random: () => 0,
      onUndecryptable: (error) => reported.push(error),
    });
    swapSecrets(store, first, third);
    // Act
    const grant = await leasing.lease(POOL);
    const reportedByFirst = reported.map((error) => ({ ...error.context, reason: error.reason }));
    clock.advance(1);
    const again = await leasing.lease(POOL);
    // Assess
    expect(grant.keyId).toBe(second);
    expect(grant.apiKey).toMatch(/^sk-test-unit-0001-/);
    expect(store.peek(first)).toMatchObject({ status: 'undecryptable', usageCount: 0 });
    expect(Object.values(store.peek(first)?.slots ?? {}).map((slot) => slot.outcome)).toEqual(['failure']);
    expect(reportedByFirst).toEqual([{ keyId: first, pool: POOL, reason: 'context-mismatch' }]);
    // The second lease meets the other swapped key and skips it too; neither is ever granted.
    expect(again.keyId).toBe(second);
    expect(store.peek(third)).toMatchObject({ status: 'undecryptable', usageCount: 0 });
    expect(reported.map((error) => error.context.keyId)).toEqual([first, third]);
  });

  it('two keys whose ciphertexts were swapped are never leased: the pool answers NoUsableKey, counts unchanged', async () => {
    // Prepare
    const { store, leasing, ids } = await setup(2);
    const [a = '', b = ''] = ids;
    swapSecrets(store, a, b);
    // Act
    const first = await leasing.lease(POOL).catch((error: unknown) => error);
    const second = await leasing.lease(POOL).catch((error: unknown) => error);
    // Assess
    expect(first).toBeInstanceOf(NoUsableKey);
    expect(second).toBeInstanceOf(NoUsableKey);
    for (const id of ids) expect(store.peek(id)).toMatchObject({ status: 'undecryptable', usageCount: 0 });
    // The second lease found nothing to try: both keys left the usage index.
    expect(store.calls.tryLease).toBe(2);
  });
});

describe('a lease when the key service fails', () => {
  it('fails with SealingUnavailable, refunds the use and closes the slot, and leaves the key in the pool', async () => {
    // Prepare
    const { store, leasing, sealer, ids } = await setup(1);
    const [id = ''] = ids;
    sealer.unavailable = true;
    // Act
    const failed = await leasing.lease(POOL).catch((error: unknown) => error);
    const afterFailure = structuredClone(store.peek(id));
    sealer.unavailable = false;
    const later = await leasing.lease(POOL);
    // Assess
    expect(failed).toBeInstanceOf(SealingUnavailable);
    expect(afterFailure).toMatchObject({ status: 'active', usageCount: 0 });
    // The failed lease's slot is closed (a failure), so it can neither be completed nor refund twice.
    expect(Object.values(afterFailure?.slots ?? {}).map((slot) => slot.outcome)).toEqual(['failure']);
    expect(later.keyId).toBe(id);
    expect(later.usageCount).toBe(0);
    expect(store.peek(id)).toMatchObject({ status: 'active', usageCount: 1 });
  });

  it('the key whose use was given back goes behind the keys of its count it was ahead of: the next lease takes the next key', async () => {
    // Prepare
    const { leasing, sealer, clock, ids } = await setup(2);
    sealer.unavailable = true;
    clock.advance(10);
    const failed = await leasing.lease(POOL).catch((error: unknown) => error);
    sealer.unavailable = false;
    // Act
    const next = await leasing.lease(POOL);
    // Assess: the first key, given back at its lease's stamp, sorts after the second.
    expect(failed).toBeInstanceOf(SealingUnavailable);
    expect(next.keyId).toBe(ids[1]);
  });
});

describe('a lease of a key sealed under a wrapping key the process does not hold (a wrong setting)', () => {
  it('fails with SealingMisconfigured naming the keys: the use given back, the key left active, nothing marked, the next lease the same', async () => {
    // Prepare: the keys were sealed under generation 1; this process holds generation 2 only.
    const { store, leasing, sealer, ids } = await setup(3);
    sealer.held = [2];
    // Act
    const failed = await leasing.lease(POOL).catch((error: unknown) => error);
    const again = await leasing.lease(POOL).catch((error: unknown) => error);
    // Assess
    for (const error of [failed, again]) {
      expect(error).toBeInstanceOf(SealingMisconfigured);
      expect(error).toMatchObject({ sealedUnder: ['fake1'], held: ['fake2'], retryAfterSeconds: 60 });
    }
    for (const id of ids) expect(store.peek(id)).toMatchObject({ status: 'active', usageCount: 0 });
    expect(store.calls.markUndecryptable).toBeUndefined();
  });

  it('under an Idempotency-Key: the record is freed with the lease, and a retry once the key is configured gets a counted lease', async () => {
    // Prepare
    const { store, leasing, sealer } = await setupBounded();
    sealer.held = [2];
    const failed = await leasing.lease(POOL, {}, 'retry-misconfigured').catch((error: unknown) => error);
    sealer.held = undefined;
    // Act
    const retry = await leasing.lease(POOL, {}, 'retry-misconfigured');
    // Assess
    expect(failed).toBeInstanceOf(SealingMisconfigured);
    expect(store.peek(retry.keyId)).toMatchObject({ status: 'active', usageCount: 1 });
    expect(store.calls.markUndecryptable).toBeUndefined();
  });

  it('an idempotent replay whose key is not held fails with SealingMisconfigured and counts nothing more', async () => {
    // Prepare
    const { store, leasing, sealer } = await setup(1);
    const grant = await leasing.lease(POOL, {}, 'retry-held');
    sealer.held = [2];
    // Act
    const failed = await leasing.lease(POOL, {}, 'retry-held').catch((error: unknown) => error);
    // Assess
    expect(failed).toBeInstanceOf(SealingMisconfigured);
    expect(store.peek(grant.keyId)).toMatchObject({ status: 'active', usageCount: 1 });
  });
});

describe('an idempotent replay', () => {
  it('opens the secret again and answers the same lease, counting nothing more', async () => {
    // Prepare
    const { store, leasing, sealer, ids } = await setup(2);
    const grant = await leasing.lease(POOL, {}, 'retry-1');
    const opensBefore = sealer.opens;
    // Act
    const replay = await leasing.lease(POOL, {}, 'retry-1');
    // Assess
    expect(replay).toEqual(grant);
    expect(sealer.opens).toBe(opensBefore + 1);
    expect(store.peek(grant.keyId)?.usageCount).toBe(1);
    expect(store.peek(ids.find((id) => id !== grant.keyId) ?? '')?.usageCount).toBe(0);
  });

  it('fails with SealingUnavailable when the key service fails on the replay, and counts nothing', async () => {
    // Prepare
    const { store, leasing, sealer } = await setup(1);
    const grant = await leasing.lease(POOL, {}, 'retry-2');
    sealer.unavailable = true;
    // Act
    const failed = await leasing.lease(POOL, {}, 'retry-2').catch((error: unknown) => error);
    // Assess
    expect(failed).toBeInstanceOf(SealingUnavailable);
    expect(store.peek(grant.keyId)).toMatchObject({ status: 'active', usageCount: 1 });
  });

  it('whose key became undecryptable meanwhile leases the next key under the same Idempotency-Key, instead of retrying for ever', async () => {
    // Prepare: the lease recorded under the Idempotency-Key holds a key whose ciphertext is then altered.
    const { store, leasing, importKeys } = world(new BoundedStore());
    const keyIds = await importKeys('idem', 2);
    const grant = await leasing.lease(POOL, {}, 'retry-3');
    const other = keyIds.find((id) => id !== grant.keyId) ?? '';
    held(store, grant.keyId).secret = 'fake1:another-pool:k_000000000000000000000000:c2stdGVzdA==';
    // Act
    const replay = await leasing.lease(POOL, {}, 'retry-3');
    const again = await leasing.lease(POOL, {}, 'retry-3');
    // Assess: the key is out of the pool; the retry gets the other key, once, and replays it after.
    expect(replay.keyId).toBe(other);
    expect(again).toEqual(replay);
    expect(store.peek(grant.keyId)?.status).toBe('undecryptable');
    expect(store.peek(other)).toMatchObject({ status: 'active', usageCount: 1 });
    expect(store.calls.tryLease).toBeLessThan(10);
  });

  it('that first meets a key it cannot open grants the next key, recorded under the Idempotency-Key', async () => {
    // Prepare: the head of the pool cannot be opened.
    const { store, leasing, ids } = await setupBounded();
    const [broken = '', good = ''] = ids;
    held(store, broken).secret = 'fake1:another-pool:k_000000000000000000000000:c2stdGVzdA==';
    // Act
    const grant = await leasing.lease(POOL, {}, 'retry-4');
    const replay = await leasing.lease(POOL, {}, 'retry-4');
    // Assess
    expect(grant.keyId).toBe(good);
    expect(replay).toEqual(grant);
    expect(store.peek(broken)).toMatchObject({ status: 'undecryptable', usageCount: 0 });
    expect(store.peek(good)).toMatchObject({ status: 'active', usageCount: 1 });
  });

  it('after the key service failed, a retry with the same Idempotency-Key gets a lease whose use is counted, not the refunded one', async () => {
    // Prepare
    const { store, leasing, sealer, ids } = await setupBounded();
    sealer.unavailable = true;
    const failed = await leasing.lease(POOL, {}, 'retry-5').catch((error: unknown) => error);
    sealer.unavailable = false;
    // Act
    const retry = await leasing.lease(POOL, {}, 'retry-5');
    // Assess: the failed lease gave its use back and its slot is closed; the retry's lease is open and counted.
    expect(failed).toBeInstanceOf(SealingUnavailable);
    const key = store.peek(retry.keyId);
    expect(key?.usageCount).toBe(1);
    const [, , nonce] = retry.leaseId.split('.').slice(1);
    expect(Object.values(key?.slots ?? {}).find((slot) => slot.nonce === nonce)?.outcome).toBeUndefined();
    expect(ids).toContain(retry.keyId);
  });
});

describe('a key still stored in plain text', () => {
  it('leaves the usage index when a lease meets it, so a full page of them does not hide a sealed key; reseal puts it back', async () => {
    // Prepare: three plain keys older than the one sealed key, and candidate pages of two.
    const { store, pools, sealer, clock, poolStore, importKeys } = world(new MemoryKeyStore());
    const plain = ['k_00000000000000000000c001', 'k_00000000000000000000c002', 'k_00000000000000000000c003'];
    for (const [i, keyId] of plain.entries())
      await store.insert({
        ...plainKey(keyId, `sk-test-plain-${i}-0000-0000-0000`),
        createdAt: `2025-01-01T00:00:0${i}.000Z`,
      });
    const [sealedId] = await importKeys('sealed', 1);
    // random 0: a contending broker takes the first candidate of its page, so the order is known.
    const leasing = new Leasing({
      store,
      pools,
      sealer,
      clock: clock.now,
      random: () => 0,
      candidateLimit: 2,
      maxRounds: 20,
    });
    // Act
    const grant = await leasing.lease(POOL);
    const writesBefore = store.calls.tryLease ?? 0;
    const report = await reseal({ store, pools: poolStore, sealer });
    // Past the contention memory the refused writes left, so the next lease takes the head again.
    clock.advance(CONTENTION_MEMORY_MS + 1);
    const next = await leasing.lease(POOL);
    // Assess
    expect(grant.keyId).toBe(sealedId);
    // One refused write per plain key, then the sealed key: no round tried them twice.
    expect(writesBefore).toBe(4);
    expect(store.calls.setAsideUnsealed).toBe(3);
    expect(report).toMatchObject({ sealed: 3, unchanged: 1 });
    expect(next.keyId).toBe(plain[0]);
  });

  it('a set-aside key whose status changed before the reseal is sealed by a later run, not put back under its old status', async () => {
    // Prepare
    const { store, poolStore, sealer, admin, clock, pools } = world(new MemoryKeyStore());
    await poolStore.ensure(POOL, new Date(clock.now()).toISOString());
    await store.insert(plainKey('k_00000000000000000000d001', 'sk-test-plain-d-0000-0000-0000'));
    await new Leasing({ store, pools, sealer, clock: clock.now }).lease(POOL).catch(() => undefined);
    const stale = (await store.poolKeysWithSecrets(POOL, 10)).keys;
    await admin.update(POOL, 'k_00000000000000000000d001', { status: 'disabled' });
    const staleStore = Object.assign(Object.create(store) as MemoryKeyStore, {
      poolKeysWithSecrets: () => Promise.resolve({ keys: stale, lastKeyId: undefined }),
    });
    // Act
    const first = await reseal({ store: staleStore, pools: poolStore, sealer });
    const second = await reseal({ store, pools: poolStore, sealer });
    // Assess
    expect(first).toMatchObject({ sealed: 0, changedMeanwhile: 1 });
    expect(second).toMatchObject({ sealed: 1, changedMeanwhile: 0 });
    expect(store.peek('k_00000000000000000000d001')).toMatchObject({ sealed: true, status: 'disabled' });
  });

  it('is never leased and is reported once per process', async () => {
    // Prepare
    const { store, pools, sealer, clock, importKeys } = world(new MemoryKeyStore());
    await importKeys('none', 0);
    await store.insert(plainKey('k_00000000000000000000aaaa', 'sk-test-plain-0000-0000-0000-0000'));
    const reported: { keyId: string; pool: string }[] = [];
    const leasing = new Leasing({ store, pools, sealer, clock: clock.now, onUnsealed: (key) => reported.push(key) });
    // Act
    const first = await leasing.lease(POOL).catch((error: unknown) => error);
    const second = await leasing.lease(POOL).catch((error: unknown) => error);
    // Assess
    expect(first).toBeInstanceOf(NoUsableKey);
    expect(second).toBeInstanceOf(NoUsableKey);
    expect(reported).toEqual([{ keyId: 'k_00000000000000000000aaaa', pool: POOL }]);
    expect(store.peek('k_00000000000000000000aaaa')).toMatchObject({ usageCount: 0, status: 'active', sealed: false });
    expect(sealer.opens).toBe(0);
  });
});

/** A store whose writes can be refused as if another writer changed the item after it was read. */
class ChangingStore extends MemoryKeyStore {
  refuseReplace = false;
  refuseMark = false;

  override replaceSecret(replacement: SecretReplacement): Promise<boolean> {
    return this.refuseReplace ? Promise.resolve(false) : super.replaceSecret(replacement);
  }

  override markUndecryptable(mark: UndecryptableMark): Promise<boolean> {
    return this.refuseMark ? Promise.resolve(false) : super.markUndecryptable(mark);
  }
}

describe('reseal', () => {
  it('counts each outcome: resealed, sealed, revived, unchanged, undecryptable, and moves every key it can to the current key', async () => {
    // Prepare: generation 1 keys, then a rotation to generation 2.
    const { store, poolStore, sealer, importKeys } = world(new MemoryKeyStore());
    const [old1 = '', old2 = '', revivable = '', broken = '', brokenMarked = ''] = await importKeys('gen1', 5);
    held(store, revivable).status = 'undecryptable';
    held(store, broken).secret = 'not a sealed value';
    const marked = held(store, brokenMarked);
    marked.secret = 'also not a sealed value';
    marked.status = 'undecryptable';
    await store.insert(plainKey('k_00000000000000000000bbbb', 'sk-test-plain-1111-1111-1111-1111'));
    sealer.generation = 2;
    const [current = ''] = await importKeys('gen2', 1);
    // Act
    const report = await reseal({ store, pools: poolStore, sealer, pageSize: 3, concurrency: 2 });
    // Assess
    expect(report).toEqual({
      keys: 7,
      resealed: 2,
      sealed: 1,
      revived: 1,
      unchanged: 1,
      undecryptable: [broken, brokenMarked].sort(),
      keyNotHeld: [],
      changedMeanwhile: 0,
    });
    for (const id of [old1, old2, revivable, current, 'k_00000000000000000000bbbb']) {
      const key = store.peek(id);
      expect(key?.sealed).toBe(true);
      expect(await sealer.resealNeeded(key?.secret ?? '')).toBe(false);
      expect(key?.status).toBe('active');
    }
    expect(
      await sealer.open(store.peek('k_00000000000000000000bbbb')?.secret ?? '', {
        pool: POOL,
        keyId: 'k_00000000000000000000bbbb',
      }),
    ).toBe('sk-test-plain-1111-1111-1111-1111');
    expect(store.peek(broken)?.status).toBe('undecryptable');
  });

  it('a key the operator disabled stays disabled through a secret that stopped opening and opens again', async () => {
    // Prepare: a disabled key whose ciphertext is damaged, marked by a first reseal.
    const { store, poolStore, sealer, admin, importKeys } = world(new MemoryKeyStore());
    const [keyId = ''] = await importKeys('off', 1);
    await admin.update(POOL, keyId, { status: 'disabled' });
    const good = held(store, keyId).secret;
    held(store, keyId).secret = 'not a sealed value';
    const first = await reseal({ store, pools: poolStore, sealer });
    const marked = { ...held(store, keyId) };
    held(store, keyId).secret = good;
    sealer.generation = 2;
    // Act
    const second = await reseal({ store, pools: poolStore, sealer });
    // Assess
    expect(first.undecryptable).toEqual([keyId]);
    expect(marked).toMatchObject({ status: 'undecryptable', statusBy: 'sealing', statusReason: 'malformed' });
    expect(marked.prior).toMatchObject({ status: 'disabled', by: 'operator' });
    expect(second.revived).toBe(1);
    expect(store.peek(keyId)).toMatchObject({ status: 'disabled', statusBy: 'operator' });
    expect(store.peek(keyId)?.prior).toBeUndefined();
  });

  it('a second run finds nothing to do and writes nothing', async () => {
    // Prepare
    const { store, poolStore, sealer, importKeys } = world(new MemoryKeyStore());
    await importKeys('twice', 4);
    sealer.generation = 2;
    await reseal({ store, pools: poolStore, sealer });
    const writes = {
      replace: store.calls.replaceSecret ?? 0,
      mark: store.calls.markUndecryptable ?? 0,
      seals: sealer.seals,
    };
    // Act
    const second = await reseal({ store, pools: poolStore, sealer });
    // Assess
    expect(second).toEqual({
      keys: 4,
      resealed: 0,
      sealed: 0,
      revived: 0,
      unchanged: 4,
      undecryptable: [],
      keyNotHeld: [],
      changedMeanwhile: 0,
    });
    expect({
      replace: store.calls.replaceSecret ?? 0,
      mark: store.calls.markUndecryptable ?? 0,
      seals: sealer.seals,
    }).toEqual(writes);
  });

  it('counts changedMeanwhile when the store refuses the write because the item changed after it was read', async () => {
    // Prepare: two keys to reseal, one that cannot be opened; every write is refused.
    const { store, poolStore, sealer, importKeys } = world(new ChangingStore());
    const [, , broken = ''] = await importKeys('race', 3);
    held(store, broken).secret = 'garbage';
    sealer.generation = 2;
    store.refuseReplace = true;
    store.refuseMark = true;
    // Act
    const report = await reseal({ store, pools: poolStore, sealer });
    // Assess
    expect(report).toMatchObject({ keys: 3, resealed: 0, undecryptable: [], changedMeanwhile: 3 });
    expect(store.peek(broken)?.status).toBe('active');
  });

  it('stops with SealingUnavailable when the key service fails, marking nothing undecryptable', async () => {
    // Prepare
    const { store, poolStore, sealer, importKeys } = world(new MemoryKeyStore());
    const ids = await importKeys('down', 2);
    sealer.generation = 2;
    sealer.unavailable = true;
    // Act
    const failed = await reseal({ store, pools: poolStore, sealer }).catch((error: unknown) => error);
    // Assess
    expect(failed).toBeInstanceOf(SealingUnavailable);
    for (const id of ids) expect(store.peek(id)?.status).toBe('active');
    expect(store.calls.markUndecryptable).toBeUndefined();
  });

  it('whose current key opens none of the first keys it reads (another key file) stops before writing anything, even a plain key, naming the keys', async () => {
    // Prepare: two pools sealed under generation 1, a plain key; the run holds generation 2 only.
    const { store, poolStore, sealer, keyImport, importKeys } = world(new MemoryKeyStore());
    const ids = await importKeys('wrong', 3);
    await keyImport.importKeys('other', [{ apiKey: 'sk-test-other-0000-0000-0000-0000' }]);
    await store.insert(plainKey('k_00000000000000000000cccc', 'sk-test-plain-2222-2222-2222-2222'));
    sealer.generation = 2;
    sealer.held = [2];
    const before = JSON.stringify([...ids, 'k_00000000000000000000cccc'].map((id) => store.peek(id)));
    // Act
    const failed = await reseal({ store, pools: poolStore, sealer }).catch((error: unknown) => error);
    // Assess
    expect(failed).toBeInstanceOf(SealingMisconfigured);
    expect(failed).toMatchObject({ subject: { keysRead: 4 }, sealedUnder: ['fake1'], held: ['fake2'] });
    expect((failed as Error).message).toMatch(
      /^none of the first 4 sealed key\(s\) read opens: they were sealed under fake1/,
    );
    expect(JSON.stringify([...ids, 'k_00000000000000000000cccc'].map((id) => store.peek(id)))).toBe(before);
    expect(store.calls.replaceSecret).toBeUndefined();
    expect(store.calls.markUndecryptable).toBeUndefined();
  });

  it('tries at most RESEAL_PROBE_KEYS sealed keys before it stops', async () => {
    // Prepare
    const { store, poolStore, sealer, importKeys } = world(new MemoryKeyStore());
    await importKeys('many', RESEAL_PROBE_KEYS + 5);
    sealer.generation = 2;
    sealer.held = [2];
    // Act
    const failed = await reseal({ store, pools: poolStore, sealer }).catch((error: unknown) => error);
    // Assess
    expect(failed).toMatchObject({ subject: { keysRead: RESEAL_PROBE_KEYS } });
    expect(sealer.opens).toBe(RESEAL_PROBE_KEYS);
  });

  it('leaves a key sealed under a key it does not hold as it is, lists it under keyNotHeld and reports it, among keys it reseals', async () => {
    // Prepare: generation 1 keys (held as previous), one key under generation 3 (held by no one here).
    const { store, poolStore, sealer, importKeys } = world(new MemoryKeyStore());
    const [first = '', second = '', stray = ''] = await importKeys('mixed', 3);
    const strayKey = held(store, stray);
    strayKey.secret = strayKey.secret.replace(/^fake1:/, 'fake3:');
    const strayBefore = structuredClone(strayKey);
    sealer.generation = 2;
    sealer.held = [1, 2];
    const told: SealingMisconfigured[] = [];
    // Act
    const report = await reseal({ store, pools: poolStore, sealer, onKeyNotHeld: (error) => told.push(error) });
    // Assess
    expect(report).toMatchObject({ keys: 3, resealed: 2, undecryptable: [], keyNotHeld: [stray] });
    expect(store.peek(stray)).toEqual(strayBefore);
    expect(told.map((error) => error.sealedUnder)).toEqual([['fake3']]);
    for (const id of [first, second]) expect(await sealer.resealNeeded(store.peek(id)?.secret ?? '')).toBe(false);
  });

  it('keeps a disabled key disabled whether it reseals it, seals it from plain text, or leaves it for a key it does not hold', async () => {
    // Prepare: three disabled keys: under a previous key, in plain text, under a key no one here holds.
    const { store, poolStore, sealer, importKeys } = world(new MemoryKeyStore());
    const [, underPrevious = '', underNoOne = ''] = await importKeys('disabled', 3);
    await store.insert({
      ...plainKey('k_00000000000000000000dddd', 'sk-test-plain-3333-3333-3333-3333'),
      status: 'disabled',
    });
    const noOne = held(store, underNoOne);
    noOne.secret = noOne.secret.replace(/^fake1:/, 'fake3:');
    for (const id of [underPrevious, underNoOne]) held(store, id).status = 'disabled';
    sealer.generation = 2;
    sealer.held = [1, 2];
    // Act
    const report = await reseal({ store, pools: poolStore, sealer });
    // Assess
    expect(report).toMatchObject({ resealed: 2, sealed: 1, keyNotHeld: [underNoOne], undecryptable: [] });
    for (const id of [underPrevious, underNoOne, 'k_00000000000000000000dddd'])
      expect(store.peek(id)?.status).toBe('disabled');
  });

  it('only the pool asked for', async () => {
    // Prepare
    const { store, poolStore, sealer, keyImport, importKeys } = world(new MemoryKeyStore());
    await importKeys('mine', 2);
    await keyImport.importKeys('other', [{ apiKey: 'sk-test-other-0000-0000-0000-0000' }]);
    sealer.generation = 2;
    // Act
    const report = await reseal({ store, pools: poolStore, sealer, pool: 'other' });
    // Assess
    expect(report).toMatchObject({ keys: 1, resealed: 1 });
  });
});
