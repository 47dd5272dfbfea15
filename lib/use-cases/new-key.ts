/** A new key, sealed: what import and migration write for a secret an operator brings. */
import { keyIdFor, maskKey } from '../domain/keys.js';
import { shardOf } from '../domain/shards.js';
import { DEFAULT_SHARDS, type StoredKey } from '../domain/types.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { rememberSecret } from '../shared/redact.js';

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
  fields: Partial<
    Pick<
      StoredKey,
      | 'label'
      | 'usageCount'
      | 'status'
      | 'statusBy'
      | 'statusReason'
      | 'statusAt'
      | 'cooldownUntil'
      | 'lastUsedAt'
      | 'account'
    >
  > & { shards?: number } = {},
): Promise<StoredKey> {
  rememberSecret(apiKey);
  const keyId = keyIdFor(apiKey);
  // Its home under the pool's shard count as read by the caller (docs/scaling.md).
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
    ...(fields.statusBy === undefined ? {} : { statusBy: fields.statusBy }),
    ...(fields.statusReason === undefined ? {} : { statusReason: fields.statusReason }),
    ...(fields.statusAt === undefined ? {} : { statusAt: fields.statusAt }),
    ...(fields.cooldownUntil === undefined ? {} : { cooldownUntil: fields.cooldownUntil }),
    ...(fields.account === undefined ? {} : { account: fields.account }),
    createdAt,
    lastUsedAt: fields.lastUsedAt ?? null,
    slots: {},
    ...(shard === 0 ? {} : { shard }),
  };
}
