/**
 * Proxy mode's refusals counted as the lease route counts its own (lib/observability/
 * keypool-metrics.ts proxyRefusalMetrics): a dry pool is NoUsableKey under the pool whichever
 * route found it (the pool's alarm watches that metric), a busy table StoreThrottled, the key
 * service failing SealingUnavailable and a wrapping key not held SealingMisconfigured; other
 * refusals and answered calls count nothing here, and the refusal still reaches the edge.
 */
import { describe, expect, it } from 'vitest';
import {
  NoUsableKey,
  PoolNotFound,
  SealingMisconfigured,
  SealingUnavailable,
  StoreThrottled,
} from '../../lib/domain/errors.js';
import { proxyRefusalMetrics } from '../../lib/observability/keypool-metrics.js';
import type { MetricsSink } from '../../lib/observability/metrics.js';

/** A sink that keeps what is published. */
function recording(): MetricsSink & { records: [string, Readonly<Record<string, number>>][] } {
  const records: [string, Readonly<Record<string, number>>][] = [];
  return { records, publish: (pool, values) => void records.push([pool, values]) };
}

const call = { pool: 'stability', path: 'v2beta/stable-image/generate/core' };

describe("proxy mode's refusal metrics", () => {
  it('counts each refusal of a key under the pool by its cause, the count alone, and passes the refusal on', async () => {
    // Prepare: a dry pool, a busy table, the key service throttled, a wrapping key not held.
    const metrics = recording();
    const refusals = [
      new NoUsableKey('stability', 3),
      new StoreThrottled({ reason: 'throttled', dynamoCode: 'ThrottlingException' }),
      new SealingUnavailable('open', ['ThrottlingException']),
      new SealingMisconfigured({ keyId: 'k1', pool: 'stability' }, ['local-0123456789abcdef'], []),
    ];
    // Act / Assess
    for (const refusal of refusals) {
      const refused = proxyRefusalMetrics(() => Promise.reject(refusal), metrics);
      await expect(refused(call, undefined)).rejects.toBe(refusal);
    }
    expect(metrics.records).toEqual([
      ['stability', { NoUsableKey: 1 }],
      ['stability', { StoreThrottled: 1 }],
      ['stability', { SealingUnavailable: 1 }],
      ['stability', { SealingMisconfigured: 1 }],
    ]);
  });

  it('counts nothing for an answered call or another refusal (a pool that does not exist mints no metric)', async () => {
    // Prepare
    const metrics = recording();
    const answered = proxyRefusalMetrics(() => Promise.resolve(), metrics);
    const unknownPool = proxyRefusalMetrics(() => Promise.reject(new PoolNotFound('nope')), metrics);
    // Act
    await answered(call, undefined);
    await expect(unknownPool({ ...call, pool: 'nope' }, undefined)).rejects.toBeInstanceOf(PoolNotFound);
    // Assess
    expect(metrics.records).toEqual([]);
  });
});
