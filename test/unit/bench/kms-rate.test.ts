/**
 * The KMS side of the partition model (bench/kms-rate.ts): how many KMS Decrypts a rate of
 * leases costs, when the opened-secret cache saves any, and the default quota it is held to.
 */
import { describe, expect, it } from 'vitest';
import {
  cacheOutlivesReuse,
  decryptsPerUse,
  DEFAULT_USES_PER_KEY,
  expectedDecryptsPerSec,
  KMS_REQUEST_QUOTAS_URL,
  kmsLoad,
  renderKmsLoad,
  symmetricQuotaIn,
} from '../../../bench/kms-rate.js';

describe('KMS Decrypts per use', () => {
  it('is one per key for one container and one per use in the limit of many: 1/4 to 1 at the default cap', () => {
    // Act
    const one = decryptsPerUse(1);
    const many = decryptsPerUse(1_000_000);
    // Assess
    expect(DEFAULT_USES_PER_KEY).toBe(4);
    expect(one).toBe(0.25);
    expect(many).toBeCloseTo(1, 5);
    expect(decryptsPerUse(3, 1)).toBeCloseTo(1, 12);
    // 10,000 leases/s of 10 ms each keep 100 containers busy (docs/scaling.md).
    expect(decryptsPerUse(100)).toBeCloseTo(0.99, 2);
  });

  it('agrees with what bench/sealer.ts counts through the real sealer (250, 464, 728, 854, 968 per 1,000 leases)', () => {
    // Prepare: docs/performance.md, "What sealing costs": each lease on a random warm container.
    const counted: [containers: number, per1000: number][] = [
      [1, 250],
      [2, 464],
      [5, 728],
      [10, 854],
      [50, 968],
    ];
    // Act
    const modelled = counted.map(([containers]) => decryptsPerUse(containers) * 1000);
    // Assess: within 1.5 % of the leases (the count draws containers at random, the model averages).
    counted.forEach(([, per1000], i) => expect(Math.abs((modelled[i] ?? 0) - per1000)).toBeLessThan(15));
  });

  it('refuses fewer than one container or one use per key', () => {
    expect(() => decryptsPerUse(0)).toThrow(RangeError);
    expect(() => decryptsPerUse(2, 0)).toThrow(RangeError);
  });
});

describe('the opened-secret cache (1,000 entries, 15 minutes) between two uses of a key', () => {
  it('serves the repeat only while a key comes back within 15 minutes and before its container opened 1,000 others', () => {
    // Act: a key comes back after every other usable key was used once.
    const small = cacheOutlivesReuse({ usableKeys: 999, usesPerSec: 10, containers: 1 });
    const tooManyKeys = cacheOutlivesReuse({ usableKeys: 1000, usesPerSec: 10, containers: 1 });
    const spreadOverContainers = cacheOutlivesReuse({ usableKeys: 1000, usesPerSec: 10, containers: 2 });
    const tooSlow = cacheOutlivesReuse({ usableKeys: 500, usesPerSec: 0.5, containers: 1 });
    // Assess
    expect(small).toBe(true);
    expect(tooManyKeys).toBe(false);
    expect(spreadOverContainers).toBe(true);
    // 500 keys at 0.5 uses/s: each comes back after 1,000 s, past the 900 s an entry lives.
    expect(tooSlow).toBe(false);
  });

  it('saves nothing at 10,000 leases/s over a pool of more than 1,000 usable keys per container: one Decrypt per use', () => {
    // Act
    const oneContainer = expectedDecryptsPerSec({ usesPerSec: 10_000, usableKeys: 100_000, containers: 1 });
    const few = expectedDecryptsPerSec({ usesPerSec: 10_000, usableKeys: 100_000, containers: 50 });
    const smallPool = expectedDecryptsPerSec({ usesPerSec: 10_000, usableKeys: 900, containers: 1 });
    // Assess
    expect(oneContainer).toBe(10_000);
    expect(few).toBe(10_000);
    expect(smallPool).toBe(2_500);
  });
});

describe('the KMS load of a rate against the default quota', () => {
  it('at 10,000 leases/s: 2,500-10,000 Decrypt/s and 2,500 GenerateDataKey/s to import the keys used up', () => {
    // Act
    const load = kmsLoad(10_000);
    // Assess
    expect(load.decryptsPerSec).toEqual({ min: 2_500, max: 10_000 });
    expect(load.generateDataKeysPerSec).toBe(2_500);
    expect(load.quotaPerSecond).toBe(10_000);
    expect(load.source).toBe(KMS_REQUEST_QUOTAS_URL);
  });

  it('follows the cap: one use per key (maxUses 0) makes every use a Decrypt and an import', () => {
    expect(kmsLoad(300, 1)).toMatchObject({ decryptsPerSec: { min: 300, max: 300 }, generateDataKeysPerSec: 300 });
  });

  it('knows the Regions whose default quota is higher (20,000 or 100,000 per second)', () => {
    expect(symmetricQuotaIn('eu-west-1')).toBe(100_000);
    expect(symmetricQuotaIn('us-east-1')).toBe(100_000);
    expect(symmetricQuotaIn('eu-west-2')).toBe(20_000);
    expect(symmetricQuotaIn('us-east-2')).toBe(20_000);
    expect(symmetricQuotaIn('ap-south-1')).toBe(10_000);
  });

  it('renders the range, the imports and the share of the quota the upper end takes, with its source', () => {
    // Act
    const text = renderKmsLoad(kmsLoad(10_000));
    // Assess
    expect(text).toContain('2,500-10,000 Decrypt/s');
    expect(text).toContain('2,500 GenerateDataKey/s');
    expect(text).toContain('12,500 requests/s, is 125 % of the default symmetric request quota of 10,000/s');
    expect(text).toContain(KMS_REQUEST_QUOTAS_URL);
  });

  it('refuses a negative rate', () => {
    expect(() => kmsLoad(-1)).toThrow(RangeError);
  });
});
