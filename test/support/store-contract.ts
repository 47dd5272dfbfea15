/**
 * The store contract's harness (test/contract/): every implementation of the stores — the
 * in-memory ones the unit tests use and the DynamoDB ones on DynamoDB Local — and the helpers
 * the contract's tests share. Tests talk to the stores only through their ports, and each
 * isolates itself by a fresh pool name and fresh key ids (the DynamoDB stores of a file share
 * one table).
 */
import { randomBytes } from 'node:crypto';
import { beforeAll } from 'vitest';
import { DynamoBalanceStore } from '../../lib/adapters/dynamo-balance-store.js';
import type {
  CompletionAttempt,
  CompletionAttemptResult,
  LeaseAttempt,
  LeaseAttemptResult,
} from '../../lib/ports/lease-store.js';
import type { KeyStore } from '../../lib/ports/key-store.js';
import type { LeaseSlot, StoredKey } from '../../lib/domain/types.js';
import type { PoolStore } from '../../lib/ports/pool-store.js';
import type { BalanceStore } from '../../lib/ports/balance-store.js';
import { createTestTable, uniqueName } from './dynamo.js';
import { MemoryKeyStore, MemoryPoolStore } from './memory-key-store.js';

export interface Stores {
  keys: KeyStore;
  pools: PoolStore;
  balances: BalanceStore;
}

/** Every implementation, for `describe.each`: a name and how to build a fresh set. */
export const STORES: [string, () => Promise<Stores>][] = [
  [
    'in-memory',
    () => {
      const keys = new MemoryKeyStore();
      return Promise.resolve({ keys, pools: new MemoryPoolStore(), balances: keys });
    },
  ],
  [
    'DynamoDB',
    async () => {
      const table = await createTestTable('contract');
      const balances = new DynamoBalanceStore({ client: table.store.client, tableName: table.tableName });
      return { keys: table.store, pools: table.pools, balances };
    },
  ],
];

/** The tests' clock: every store method is handed its moment, so no test waits. */
export const T0 = Date.UTC(2030, 0, 1);
export const iso = (ms: number): string => new Date(ms).toISOString();
export const newKeyId = (): string => `k_${randomBytes(12).toString('hex')}`;
export const newNonce = (): string => randomBytes(8).toString('hex');
/** An open lease slot, expiring at `expiresAtMs`. */
export const openSlot = (expiresAtMs = T0 + 60_000): LeaseSlot => ({ nonce: newNonce(), expiresAtMs });
/** A secret still in plain text, as an item written before sealing holds it. */
export const PLAIN: Pick<StoredKey, 'sealed' | 'secret'> = { sealed: false, secret: 'sk-test-plain-0000000000000000' };
/** Key records in key-id order, as a pool's pages give them. */
export const byKeyId = <K extends { keyId: string }>(keys: K[]): K[] =>
  [...keys].sort((a, b) => (a.keyId < b.keyId ? -1 : 1));

/**
 * The stores built once for a `describe.each` body (in its beforeAll), and helpers over them
 * that work in the pool of the test's last `fresh()`.
 */
export function storeContract(build: () => Promise<Stores>) {
  let stores: Stores | undefined;
  let pool = '';
  beforeAll(async () => {
    stores = await build();
  });
  const built = (): Stores => {
    if (!stores) throw new Error('the stores are built in beforeAll');
    return stores;
  };

  /** The stores and a pool of the test's own: nothing another test wrote is in it. */
  function fresh(): Stores & { pool: string } {
    pool = uniqueName('contract');
    return { ...built(), pool };
  }

  /** A key of the pool as stored: sealed, active, count 0, imported 10 s before T0, unless `fields` say otherwise. */
  function storedKey(fields: Partial<StoredKey> = {}): StoredKey {
    return {
      keyId: newKeyId(),
      pool,
      secret: `sealed-${randomBytes(8).toString('hex')}`,
      sealed: true,
      maskedKey: 'sk-...test',
      usageCount: 0,
      status: 'active',
      createdAt: iso(T0 - 10_000),
      lastUsedAt: null,
      slots: {},
      ...fields,
    };
  }

  /** Inserts a key (storedKey under `fields`) and answers it as inserted. */
  async function given(fields: Partial<StoredKey> = {}): Promise<StoredKey> {
    const key = storedKey(fields);
    await built().keys.insert(key);
    return key;
  }

  /** The key as the store holds it now. */
  async function stored(keyId: string): Promise<StoredKey> {
    const key = await built().keys.get(keyId);
    if (!key) throw new Error(`no key ${keyId}`);
    return key;
  }

  /** A lease write on `key` as a broker that has just read it would send. */
  function lease(key: StoredKey, fields: Partial<LeaseAttempt> = {}): Promise<LeaseAttemptResult> {
    return built().keys.tryLease({
      keyId: key.keyId,
      pool: key.pool,
      shard: key.shard ?? 0,
      seenCount: key.usageCount,
      maxUses: 3,
      slot: 0,
      nonce: newNonce(),
      expiresAtMs: T0 + 60_000,
      nowMs: T0,
      ...fields,
    });
  }

  /** A completion (success, just after T0, no status change unless `fields` give one) of the lease in `slot` of `key`. */
  function complete(
    key: StoredKey,
    slot: string,
    fields: Partial<CompletionAttempt> = {},
  ): Promise<CompletionAttemptResult> {
    return built().keys.tryComplete({
      keyId: key.keyId,
      pool: key.pool,
      slot: Number(slot),
      nonce: key.slots[slot]?.nonce ?? 'none',
      outcome: 'success',
      nowMs: T0 + 1,
      ...fields,
    });
  }

  /** The key ids a lease's index read finds in the pool's `shard` under `maxUses` at `nowMs`. */
  async function candidateIds(shard = 0, maxUses = 3, nowMs = T0): Promise<string[]> {
    return (await built().keys.candidates(pool, shard, maxUses, 25, nowMs)).candidates.map((c) => c.keyId);
  }

  return { fresh, storedKey, given, stored, lease, complete, candidateIds };
}
