/**
 * shardOf's spread over many key ids: a property of the hash, which the pinned values in
 * test/unit/shards.test.ts keep from ever changing. 60,000 SHA-256 key ids: the slow project.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdFor } from '../../lib/domain/keys.js';
import { MAX_SHARDS, shardOf } from '../../lib/domain/shards.js';

describe('shardOf', () => {
  it.each([8, 21, MAX_SHARDS])(
    'spreads 20,000 key ids over %i shards as evenly as chance does (each shard within 4.5 standard deviations)',
    (shards) => {
      // Prepare
      const counts = new Array<number>(shards).fill(0);
      // Act
      for (let i = 0; i < 20_000; i++) {
        const shard = shardOf(keyIdFor(`sk-test-${randomBytes(12).toString('hex')}`), shards);
        counts[shard] = (counts[shard] ?? 0) + 1;
      }
      // Assess: a fair die would land within 4.5 sd of even on every face (p > 0.999 per run).
      const even = 20_000 / shards;
      const sd = Math.sqrt(even * (1 - 1 / shards));
      for (const n of counts) expect(Math.abs(n - even)).toBeLessThan(4.5 * sd);
    },
  );
});
