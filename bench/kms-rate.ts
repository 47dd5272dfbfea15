/**
 * What a pool's rate costs in AWS KMS requests, beside the DynamoDB capacity the partition model
 * (./partition-model.ts) sizes. Every secret is sealed with a data key of its own, wrapped by
 * KMS (lib/adapters/esdk-opener.ts), so opening one that a container has not opened yet is one
 * KMS Decrypt; a container keeps what it opened in its opened-secret cache
 * (lib/adapters/opened-secret-cache.ts: at most 1,000 entries, each for at most 15 minutes).
 * A lease opens its key's secret to answer it, a proxied use to call the provider with it, an
 * idempotent replay again; importing a key is one GenerateDataKey.
 *
 * The quota all of these draw on, with every other user of symmetric KMS keys in the account and
 * Region (AWS services acting for it included): "Cryptographic operations (symmetric) request
 * rate", shared by Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
 * GenerateMac, GenerateRandom, ReEncrypt and VerifyMac, per account and Region, adjustable in
 * Service Quotas. Default values from the table "Request quotas for each AWS KMS API operation":
 * https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html
 * Past it KMS throttles (ThrottlingException); the SDK retries (3 attempts, throttling backoff)
 * and then the open fails as SealingUnavailable: 503 sealing_unavailable, the use given back.
 */
import { DEFAULT_CACHE_MAX_AGE_MS, DEFAULT_CACHE_MAX_ENTRIES } from '../lib/adapters/opened-secret-cache.js';
import { DEFAULT_MAX_USES } from '../lib/domain/types.js';

/** Where the quota figures below are documented. */
export const KMS_REQUEST_QUOTAS_URL = 'https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html';

/** The default symmetric cryptographic request quota (requests/s, per account and Region), and the Regions where it is higher. */
export const KMS_SYMMETRIC_QUOTA = {
  perSecond: 10_000,
  higher: [
    {
      perSecond: 20_000,
      regions: ['us-east-2', 'ap-southeast-1', 'ap-southeast-2', 'ap-northeast-1', 'eu-central-1', 'eu-west-2'],
    },
    { perSecond: 100_000, regions: ['us-east-1', 'us-west-2', 'eu-west-1'] },
  ],
} as const;

/** The default symmetric cryptographic request quota in `region` (requests/s). */
export function symmetricQuotaIn(region: string): number {
  const higher = KMS_SYMMETRIC_QUOTA.higher.find((tier) => (tier.regions as readonly string[]).includes(region));
  return higher?.perSecond ?? KMS_SYMMETRIC_QUOTA.perSecond;
}

/** Uses one key serves at the default cap (maxUses 3: counts 0..3). */
export const DEFAULT_USES_PER_KEY = DEFAULT_MAX_USES + 1;

/**
 * KMS Decrypts per use when each use of a key lands on one of `containers` warm containers at
 * random and every container's cache still holds what it opened: a key's `usesPerKey` uses cost
 * one Decrypt per distinct container among them, C x (1 - (1 - 1/C)^k) on average. 1/k for one
 * container, towards 1 as containers grow (bench/sealer.ts counts the same with the real sealer).
 */
export function decryptsPerUse(containers: number, usesPerKey = DEFAULT_USES_PER_KEY): number {
  if (!(containers >= 1) || !(usesPerKey >= 1)) throw new RangeError('containers and usesPerKey must be >= 1');
  return (containers * (1 - (1 - 1 / containers) ** usesPerKey)) / usesPerKey;
}

export interface CacheReuse {
  /** usable keys the pool's leases cycle through (least used, then least recently used, first) */
  usableKeys: number;
  usesPerSec: number;
  containers: number;
  maxEntries?: number;
  maxAgeMs?: number;
}

/**
 * Whether a container's opened-secret cache can still hold a key when the key's next use comes.
 * Leases take the least used, then least recently used key, so a key comes back after about
 * every other usable key was used once: usableKeys / usesPerSec seconds later. By then its entry
 * must be younger than maxAgeMs, and its container must have opened fewer than maxEntries other
 * secrets since (at most the usableKeys / containers uses it served: FIFO eviction). When either
 * fails, the cache never serves a repeat and every use is one Decrypt.
 */
export function cacheOutlivesReuse(o: CacheReuse): boolean {
  const maxEntries = o.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
  const maxAgeMs = o.maxAgeMs ?? DEFAULT_CACHE_MAX_AGE_MS;
  const reuseAfterMs = (o.usableKeys / o.usesPerSec) * 1000;
  return reuseAfterMs < maxAgeMs && o.usableKeys / o.containers < maxEntries;
}

/** Expected KMS Decrypts per second at `o.usesPerSec`: decryptsPerUse while the cache outlives a key's reuse, one per use otherwise. */
export function expectedDecryptsPerSec(o: CacheReuse & { usesPerKey?: number }): number {
  return cacheOutlivesReuse(o) ? o.usesPerSec * decryptsPerUse(o.containers, o.usesPerKey) : o.usesPerSec;
}

/** The KMS side of a pool's rate: the range of Decrypts, the imports it implies, and the default quota. */
export interface KmsLoad {
  usesPerSec: number;
  usesPerKey: number;
  /** min: one Decrypt per key (one container opens it, its cache serves the rest); max: one per use */
  decryptsPerSec: { min: number; max: number };
  /** keys used up per second, each imported with one GenerateDataKey to keep the pool from running dry */
  generateDataKeysPerSec: number;
  /** the default symmetric quota (requests/s) and the higher Regional defaults */
  quotaPerSecond: number;
  higherQuotas: { perSecond: number; regions: readonly string[] }[];
  source: string;
}

/** The KMS requests a pool serving `usesPerSec` uses/s makes, against the default symmetric quota. */
export function kmsLoad(usesPerSec: number, usesPerKey = DEFAULT_USES_PER_KEY): KmsLoad {
  if (!(usesPerSec >= 0) || !(usesPerKey >= 1)) throw new RangeError('usesPerSec must be >= 0 and usesPerKey >= 1');
  return {
    usesPerSec,
    usesPerKey,
    decryptsPerSec: { min: Math.ceil(usesPerSec / usesPerKey), max: Math.ceil(usesPerSec) },
    generateDataKeysPerSec: Math.ceil(usesPerSec / usesPerKey),
    quotaPerSecond: KMS_SYMMETRIC_QUOTA.perSecond,
    higherQuotas: KMS_SYMMETRIC_QUOTA.higher.map((tier) => ({ perSecond: tier.perSecond, regions: tier.regions })),
    source: KMS_REQUEST_QUOTAS_URL,
  };
}

/** The load as the model's output lines: the range and the imports, then the default quota and how much of it the upper end takes. */
export function renderKmsLoad(load: KmsLoad): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const top = load.decryptsPerSec.max + load.generateDataKeysPerSec;
  const higher = load.higherQuotas.map((tier) => `${n(tier.perSecond)} in ${tier.regions.join(', ')}`).join('; ');
  return [
    `KMS at ${n(load.usesPerSec)} leases/s (each opens its key's secret; ${load.usesPerKey} uses per key): ` +
      `${n(load.decryptsPerSec.min)}-${n(load.decryptsPerSec.max)} Decrypt/s (one per key when one container's cache serves all its uses, ` +
      `one per use when they land on different containers) + up to ${n(load.generateDataKeysPerSec)} GenerateDataKey/s to import the keys used up`,
    `KMS quota: the upper end, ${n(top)} requests/s, is ${((top / load.quotaPerSecond) * 100).toFixed(0)} % of the default symmetric ` +
      `request quota of ${n(load.quotaPerSecond)}/s per account and Region (${higher}: ${load.source})`,
  ].join('\n');
}
