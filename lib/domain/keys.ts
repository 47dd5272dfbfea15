/** Pure helpers for keys: ids from fingerprints, masking, views. */
import { createHash } from 'node:crypto';
import { effectiveStatus } from './rules.js';
import { rememberSecret } from '../shared/redact.js';
import { DEFAULT_SHARDS, type KeyRecord, type KeyView, type StoredKey } from './types.js';
import type { SecretSealer } from './secret-sealer.js';
import { shardOf } from './shards.js';

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

/** What the outside sees of a key: never the secret. */
export function toKeyView(record: KeyRecord, nowMs: number = Date.now()): KeyView {
  return {
    keyId: record.keyId,
    pool: record.pool,
    ...(record.label === undefined ? {} : { label: record.label }),
    maskedKey: record.maskedKey,
    usageCount: record.usageCount,
    status: effectiveStatus(record, nowMs),
    createdAt: record.createdAt,
    lastUsedAt: record.lastUsedAt,
    credits: record.credits ?? null,
    creditsCheckedAt: record.creditsCheckedAt ?? null,
  };
}

/**
 * A new key as stored: the id from its fingerprint, its mask taken now, its secret sealed for
 * this pool and key id, count 0, active, no lease, homed in its shard for `fields.shards` (the
 * pool's shard count as the caller just read it). The secret is remembered for redaction from
 * here on (every import and migration passes here).
 */
export async function sealNewKey(
  sealer: Pick<SecretSealer, 'seal'>,
  apiKey: string,
  pool: string,
  createdAt: string,
  fields: Partial<Pick<StoredKey, 'label' | 'usageCount' | 'status' | 'lastUsedAt'>> & { shards?: number } = {},
): Promise<StoredKey> {
  rememberSecret(apiKey);
  const keyId = keyIdFor(apiKey);
  // Its home under the pool's shard count as read by the caller (README "Scaling").
  const shard = shardOf(keyId, fields.shards ?? DEFAULT_SHARDS);
  return {
    keyId,
    pool,
    secret: await sealer.seal(apiKey, { pool, keyId }),
    sealed: true,
    maskedKey: maskKey(apiKey),
    ...(fields.label === undefined ? {} : { label: fields.label }),
    usageCount: fields.usageCount ?? 0,
    status: fields.status ?? 'active',
    createdAt,
    lastUsedAt: fields.lastUsedAt ?? null,
    slots: {},
    ...(shard === 0 ? {} : { shard }),
  };
}

/** The key without its secret, its lease slots and its shard. */
export function withoutSecret(key: StoredKey): KeyRecord {
  const { secret: _secret, sealed: _sealed, slots: _slots, shard: _shard, ...record } = key;
  return record;
}
