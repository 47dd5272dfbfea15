/**
 * Proxy mode's refusals counted as the lease route counts its own (lib/observability/
 * keypool-metrics.ts proxyRefusalMetrics): a dry pool is NoUsableKey under the pool whichever
 * route found it (the pool's alarm watches that metric), a busy table StoreThrottled; other
 * refusals and answered calls count nothing here, and the refusal still reaches the edge.
 */
import { describe, expect, it } from 'vitest';
import { NoUsableKey, PoolNotFound, StoreThrottled } from '../../lib/domain/errors.js';
import { proxyRefusalMetrics } from '../../lib/observability/keypool-metrics.js';
import type { MetricsSink } from '../../lib/observability/metrics.js';

/** A sink that keeps what is published. */
function recording(): MetricsSink & { records: [string, Readonly<Record<string, number>>][] } {
  const records: [string, Readonly<Record<string, number>>][] = [];
  return { records, publish: (pool, values) => void records.push([pool, values]) };
}

const call = { pool: 'stability', path: 'v2beta/stable-image/generate/core' };

describe("proxy mode's refusal metrics", () => {
  it('counts a dry pool as NoUsableKey and a busy table as StoreThrottled under the pool, and passes the refusal on', async () => {
    // Prepare
    const metrics = recording();
    const dry = proxyRefusalMetrics(() => Promise.reject(new NoUsableKey('stability', 3)), metrics);
    const busy = proxyRefusalMetrics(
      () => Promise.reject(new StoreThrottled({ reason: 'throttled', dynamoCode: 'ThrottlingException' })),
      metrics,
    );
    // Act / Assess
    await expect(dry(call, undefined)).rejects.toBeInstanceOf(NoUsableKey);
    await expect(busy(call, undefined)).rejects.toBeInstanceOf(StoreThrottled);
    expect(metrics.records).toEqual([
      ['stability', { NoUsableKey: 1 }],
      ['stability', { StoreThrottled: 1 }],
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
