/**
 * Sharded usage order (docs/scaling.md). A pool's keys are spread over `shards` partitions
 * of the usage-count index, so one pool's lease writes are no longer bound to one index
 * partition's 1,000 WCU/s. Which shard a key belongs in is a stable hash of its key id; the
 * storage name of a shard's partition (lib/table.ts usagePartition) is the bare pool name for
 * shard 0, so a pool with one shard is exactly the unsharded pool of before.
 *
 * Within a shard a lease takes the least used, then least recently used key, as before; across
 * shards each broker prefers the shard whose head it last saw least used (ShardMemory), which
 * keeps the pool's counts within about one use of each other without any extra request.
 */
import type { PoolPolicy } from './types.js';

/** The most shards a pool may have (issue 13: 1..64). A dry pool costs one index Query per shard. */
export const MAX_SHARDS = 64;

/**
 * The shard a key belongs in when its pool has `shards` shards: FNV-1a (32 bits) of the key id,
 * modulo `shards`. Stable across processes and releases: changing this function would strand
 * every key of every sharded pool until a reshard, so it never changes.
 */
export function shardOf(keyId: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError('shards must be a whole number >= 1');
  if (shards === 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < keyId.length; i++) {
    hash ^= keyId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/**
 * How many shards a lease must look in: the pool's shards, or more while a reshard is
 * pending (`previousShards`: the widest layout a key may still sit in). Shard partitions are
 * numbered from 0 in every layout, so shards 0..span-1 cover the old layout and the new one.
 */
export function shardSpan(policy: Pick<PoolPolicy, 'shards' | 'previousShards'>): number {
  return Math.max(policy.shards, policy.previousShards ?? 0);
}

/** How long a broker trusts what it last saw of a shard's head (its lowest count, or that it was dry). */
export const SHARD_MEMORY_MS = 2_000;
/** Pools a broker remembers shards of; beyond this, the least recently seen pool is forgotten. */
const MEMORY_POOLS = 1_000;

interface HeadSeen {
  /** the count of the shard's first usable candidate; maxUses + 1 when the shard had none */
  head: number;
  atMs: number;
}

/**
 * What one broker (one process) saw of each shard's head, and the order it tries shards in.
 * Order only: a lease answers no_usable_key only after it has itself seen every shard dry in
 * that request, so a stale memory can cost a Query but never refuse a lease.
 */
export class ShardMemory {
  private readonly pools = new Map<string, Map<number, HeadSeen>>();

  /** The shard's head as a Query just saw it: the count of its first candidate. */
  seen(pool: string, shard: number, headCount: number, nowMs: number): void {
    let shards = this.pools.get(pool);
    if (shards) this.pools.delete(pool);
    else shards = new Map();
    this.pools.set(pool, shards);
    shards.set(shard, { head: headCount, atMs: nowMs });
    if (this.pools.size > MEMORY_POOLS) {
      const oldest = this.pools.keys().next().value;
      if (oldest !== undefined) this.pools.delete(oldest);
    }
  }

  /** The shard had no usable key with a count <= maxUses. */
  dry(pool: string, shard: number, maxUses: number, nowMs: number): void {
    this.seen(pool, shard, maxUses + 1, nowMs);
  }

  /**
   * The next shard to query among 0..span-1 outside `exclude`, or undefined when none is left:
   * the one whose head was seen least used, a random one among equals. A shard not seen lately
   * counts as level with the best one seen (so an idle broker spreads its tries), and one seen
   * dry for this cap comes last.
   */
  next(
    pool: string,
    span: number,
    exclude: ReadonlySet<number>,
    maxUses: number,
    nowMs: number,
    random: () => number,
  ): number | undefined {
    const known = this.pools.get(pool);
    const fresh = (shard: number): number | undefined => {
      const seen = known?.get(shard);
      return seen && nowMs - seen.atMs <= SHARD_MEMORY_MS ? seen.head : undefined;
    };
    let lowestWet = Infinity;
    for (let shard = 0; shard < span; shard++) {
      const head = fresh(shard);
      if (head !== undefined && head <= maxUses) lowestWet = Math.min(lowestWet, head);
    }
    const unknown = Number.isFinite(lowestWet) ? lowestWet : 0;
    let best: number[] = [];
    let bestScore = Infinity;
    for (let shard = 0; shard < span; shard++) {
      if (exclude.has(shard)) continue;
      const head = fresh(shard);
      const score = head === undefined ? unknown : head > maxUses ? Number.MAX_SAFE_INTEGER : head;
      if (score < bestScore) {
        bestScore = score;
        best = [shard];
      } else if (score === bestScore) {
        best.push(shard);
      }
    }
    if (best.length === 0) return undefined;
    return best[Math.floor(random() * best.length)];
  }
}
