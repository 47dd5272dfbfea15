/** Pure helpers for keys: ids from fingerprints, masking, views. */
import { createHash } from 'node:crypto';
import { effectiveStatus } from './rules.js';
import type { KeyRecord, KeyView, StoredKey } from './types.js';

/**
 * The key's stable id: a prefix of the SHA-256 fingerprint of the secret. Importing the same
 * secret again lands on the same item, which is how import dedupes with one conditional put.
 */
export function keyIdFor(apiKey: string): string {
  return `k_${createHash('sha256').update(apiKey, 'utf8').digest('hex').slice(0, 24)}`;
}

/** A key id's shape, for patterns that embed it (lease ids); KEY_ID_PATTERN matches a whole id. */
export const KEY_ID_SOURCE = 'k_[0-9a-f]{24}';
export const KEY_ID_PATTERN = new RegExp(`^${KEY_ID_SOURCE}$`);

/** At most the first 3 and the last 4 characters; fewer for short secrets so most stays hidden. */
export function maskKey(apiKey: string): string {
  // Code points, not UTF-16 units, so a mask never splits a character (keys are ASCII in practice).
  const chars = Array.from(apiKey);
  if (chars.length >= 16) return `${chars.slice(0, 3).join('')}...${chars.slice(-4).join('')}`;
  if (chars.length >= 8) return `...${chars.slice(-2).join('')}`;
  return '...';
}

/**
 * What the outside sees of a key: never the secret. `balance`: its account's (the account
 * record's) once its account is known and read; the key's own until then.
 */
export function toKeyView(
  record: KeyRecord,
  nowMs: number = Date.now(),
  balance: Pick<KeyRecord, 'credits' | 'creditsCheckedAt'> = record,
): KeyView {
  const status = effectiveStatus(record, nowMs);
  // An active key (a rest that ended included) has no setter, reason, time or end.
  const set = status !== 'active';
  const until = record.cooldownUntil;
  return {
    keyId: record.keyId,
    pool: record.pool,
    ...(record.label === undefined ? {} : { label: record.label }),
    maskedKey: record.maskedKey,
    usageCount: record.usageCount,
    status,
    createdAt: record.createdAt,
    lastUsedAt: record.lastUsedAt,
    account: record.account ?? null,
    credits: balance.credits ?? null,
    creditsCheckedAt: balance.creditsCheckedAt ?? null,
    statusBy: (set && record.statusBy) || null,
    statusReason: (set && record.statusReason) || null,
    statusAt: (set && record.statusAt) || null,
    cooldownUntil: set && until !== undefined && until > nowMs ? new Date(until).toISOString() : null,
  };
}

/** The key without its secret, its lease slots and its shard. */
export function withoutSecret(key: StoredKey): KeyRecord {
  const { secret: _secret, sealed: _sealed, slots: _slots, shard: _shard, ...record } = key;
  return record;
}
