/**
 * A key's DynamoDB item, both ways. The storage-only names live here: the lease slots `L`
 * with one-letter fields, and the index attributes `upk` and `usk` (lib/table.ts). Every
 * writer of whole items (import, migration, the test seeding) goes through toKeyItem.
 */
import type { IdempotentLease } from '../ports/lease-store.js';
import type { KeyRecord, LeaseSlot, StoredKey } from '../domain/types.js';
import { maskKey } from '../domain/keys.js';
import { inUsageIndex } from '../domain/rules.js';
import { rememberSecret } from '../shared/redact.js';
import {
  accountPartition,
  IDEMPOTENCY_PREFIX,
  KEY_PREFIX,
  partitionShard,
  TABLE,
  TTL_ATTRIBUTE,
  usagePartition,
  usageSortKey,
} from '../table.js';

export type Item = Record<string, unknown>;

/**
 * A lease slot as the item stores it: one-letter names, because every lease writes one and
 * the item's size is what each read and write is billed by.
 */
export interface StoredSlot {
  /** nonce */
  n: string;
  /** expiry, ms since the epoch */
  e: number;
  /** outcome, once completed; `proxied` for a proxied use not given back (PROXIED) */
  o?: LeaseSlot['outcome'];
}

/** The attributes of a KeyRecord: what every read that must not see the secret asks for. */
export const RECORD_ATTRIBUTES = [
  'keyId',
  'pool',
  'label',
  'maskedKey',
  'usageCount',
  'status',
  'statusBy',
  'statusReason',
  'statusAt',
  'createdAt',
  'lastUsedAt',
  'cooldownUntil',
  'prior',
  'credits',
  'creditsCheckedAt',
  'account',
] as const satisfies readonly (keyof KeyRecord)[];

/**
 * The attributes that say a key's status (lib/domain/types.ts KeyRecord): the status, who set
 * it, why, when and until when, and the status an undecryptable mark keeps (`prior`, a map of
 * StatusStamp's fields). Every writer of a status names them through here
 * (./dynamo-key-table.ts stampClauses), so the attributes each role may write are listed once.
 */
export const STATUS_ATTRIBUTES = {
  status: 'status',
  by: 'statusBy',
  reason: 'statusReason',
  at: 'statusAt',
  until: 'cooldownUntil',
  prior: 'prior',
} as const;

/**
 * What the old system's rows have said about a key (lib/ports/migration-store.ts SourceSaid):
 * written by the migration only, with the key or on a row that says more, so a later run of the
 * same export knows its rows are no news.
 */
export const MIGRATION_ATTRIBUTES = { count: 'migratedCount', disabled: 'migratedDisabled' } as const;

/** A ProjectionExpression for `attributes`, with a placeholder per name (several are reserved words). */
export function projection(attributes: readonly string[]): {
  ProjectionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
} {
  const names = Object.fromEntries(attributes.map((name, i) => [`#p${i}`, name]));
  return { ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names };
}

function toStoredSlots(slots: StoredKey['slots']): Record<string, StoredSlot> {
  return Object.fromEntries(
    Object.entries(slots).map(([slot, s]) => [
      slot,
      { n: s.nonce, e: s.expiresAtMs, ...(s.outcome === undefined ? {} : { o: s.outcome }) },
    ]),
  );
}

function fromStoredSlots(stored: Record<string, StoredSlot> | undefined): StoredKey['slots'] {
  return Object.fromEntries(
    Object.entries(stored ?? {}).map(([slot, s]) => [
      slot,
      { nonce: s.n, expiresAtMs: s.e, ...(s.o === undefined ? {} : { outcome: s.o }) },
    ]),
  );
}

/**
 * Puts a key back into its pool's usage index at its home partition, whatever the pool's shard
 * count: the item carries its home (`ush`, absent for shard 0), so the writer needs no read of
 * the pool and cannot use a stale shard count. A reshard moving the key at the same moment
 * conditions on upk, so one of the two writes goes first and the other sees its result.
 * An UpdateExpression SET clause; needs `#upk`, `#ush`, `#pool`.
 */
export const BACK_INTO_INDEX = '#upk = if_not_exists(#ush, #pool)';

/** The sealed secret (ciphertext, base64); an item written before sealing has `apiKey` instead. */
export const SEALED_ATTRIBUTE = 'sealedKey';
/** The plain secret of an item written before sealing (until `keypool reseal`). */
export const PLAIN_ATTRIBUTE = 'apiKey';

/**
 * The item for a key, index attributes included: `upk` (its shard's usage partition) only
 * while the key's status keeps it in the usage index (inUsageIndex), `ush` (its home) only
 * for a shard other than 0, `usk` from its count and last use (or import).
 */
export function toKeyItem(key: StoredKey): Item {
  const { slots, secret, sealed, shard = 0, ...record } = key;
  const stampMs = Date.parse(key.lastUsedAt ?? key.createdAt);
  const partition = usagePartition(key.pool, shard);
  return {
    ...record,
    [sealed ? SEALED_ATTRIBUTE : PLAIN_ATTRIBUTE]: secret,
    L: toStoredSlots(slots),
    [TABLE.usageIndex.sortKey]: usageSortKey(key.usageCount, Number.isNaN(stampMs) ? Date.now() : stampMs),
    ...(inUsageIndex(key.status, key.cooldownUntil !== undefined)
      ? { [TABLE.usageIndex.partitionKey]: partition }
      : {}),
    ...(shard === 0 ? {} : { [TABLE.usageIndex.home]: partition }),
    ...(key.account === undefined
      ? {}
      : { [TABLE.accountIndex.partitionKey]: accountPartition(key.pool, key.account) }),
  };
}

/** The shard an item's home names (absent, or not one of its pool's: shard 0). */
export function homeShard(item: Item): number {
  return typeof item.pool === 'string' ? (partitionShard(item.pool, item[TABLE.usageIndex.home]) ?? 0) : 0;
}

/**
 * The record an item holds, without its secret. Items written before keys kept their mask
 * carry only the plain secret: the mask is taken from it when it was read, else it is "...".
 */
export function toKeyRecord(item: Item | undefined): KeyRecord | undefined {
  if (
    !item ||
    typeof item[TABLE.partitionKey] !== 'string' ||
    typeof item.pool !== 'string' ||
    !String(item[TABLE.partitionKey]).startsWith(KEY_PREFIX)
  )
    return undefined;
  const record: Record<string, unknown> = {};
  for (const name of RECORD_ATTRIBUTES) if (item[name] !== undefined) record[name] = item[name];
  const plain = item[PLAIN_ATTRIBUTE];
  record.maskedKey ??= typeof plain === 'string' ? maskKey(plain) : '...';
  record.lastUsedAt ??= null;
  return record as unknown as KeyRecord;
}

/** The record and the lease slots, without the secret: what a refused completion is judged by. */
export function toSlottedRecord(item: Item | undefined): (KeyRecord & Pick<StoredKey, 'slots'>) | undefined {
  const record = toKeyRecord(item);
  return record && item
    ? { ...record, slots: fromStoredSlots(item.L as Record<string, StoredSlot> | undefined) }
    : undefined;
}

/**
 * The key an item holds, its secret as stored (sealed, or plain for an item from before
 * sealing: that one is remembered for redaction) and its lease slots; undefined for no item.
 */
export function fromKeyItem(item: Item | undefined): StoredKey | undefined {
  const record = toSlottedRecord(item);
  if (!record || !item) return undefined;
  const sealedValue = item[SEALED_ATTRIBUTE];
  const plainValue = item[PLAIN_ATTRIBUTE];
  const sealed = typeof sealedValue === 'string';
  const secret = sealed ? sealedValue : typeof plainValue === 'string' ? plainValue : '';
  if (!sealed) rememberSecret(secret);
  const shard = homeShard(item);
  return { ...record, secret, sealed, ...(shard === 0 ? {} : { shard }) };
}

/** How long after its lease expires an idempotency record may still be read (DynamoDB deletes it later). */
const IDEMPOTENCY_GRACE_SECONDS = 3600;

/**
 * The item for an idempotency record: the lease's ids and expiry and the caller's digest, never
 * the secret. Its own attribute names (`leasedKeyId`, `leasePool`, `leaseCount`) keep it out of
 * both indexes and out of every read of keys.
 */
export function toIdempotencyItem(record: IdempotentLease): Item {
  return {
    keyId: `${IDEMPOTENCY_PREFIX}${record.id}`,
    leasedKeyId: record.keyId,
    leasePool: record.pool,
    leaseCount: record.usageCount,
    leaseId: record.leaseId,
    requestHash: record.requestHash,
    callerDigest: record.callerDigest,
    expiresAtMs: record.expiresAtMs,
    [TTL_ATTRIBUTE]: Math.ceil(record.expiresAtMs / 1000) + IDEMPOTENCY_GRACE_SECONDS,
  };
}

/** The record an idempotency item holds; undefined for no item. */
export function fromIdempotencyItem(item: Item | undefined): IdempotentLease | undefined {
  if (!item || typeof item.leasedKeyId !== 'string') return undefined;
  return {
    id: String(item.keyId).slice(IDEMPOTENCY_PREFIX.length),
    keyId: item.leasedKeyId,
    requestHash: String(item.requestHash),
    // A record from before callers were bound has none, and is answered to nobody.
    callerDigest: typeof item.callerDigest === 'string' ? item.callerDigest : '',
    leaseId: String(item.leaseId),
    pool: String(item.leasePool),
    usageCount: Number(item.leaseCount),
    expiresAtMs: Number(item.expiresAtMs),
  };
}
