/**
 * A deterministic model of DynamoDB partition capacity for ONE keypool pool: how many leases
 * per second the pool sustains when its usage-count index partition value is sharded over S
 * values (`upk` = pool for shard 0, `pool#s` for s > 0), and the smallest S that sustains a
 * target rate. DynamoDB Local enforces no partition limits, so this is what stands in for the
 * scale we cannot run here.
 *
 *   npx tsx bench/partition-model.ts [--target 10000] [--json] [--seed 1]
 *     [--threshold 0.01] [--shards 1,8,32,64] [--mix '{"refusedWritesPerLease":0.2}'] [--max-uses 3]
 *
 * Beside the shard count it states the KMS requests the target rate implies (./kms-rate.ts:
 * one Decrypt per key up to one per use, at the pool's cap `--max-uses`) against KMS's default
 * symmetric request quota; DynamoDB is all it simulates.
 *
 * How it runs: time advances in 10 ms ticks. Leases arrive as a Poisson stream at the offered
 * rate (seeded PRNG); each lease is a small state machine issuing the requests of the request
 * mix one tick apart: Query(s) on its shard's index partition -> refused conditional writes
 * (lost races) -> the lease write -> after `holdMs`, the completion (a proxied use's only when
 * it is given back: `completionShare`). Every request must fit the
 * partitions it touches or it is throttled (it consumes nothing) and retried with the SDK's
 * backoff; after the last attempt the lease (or completion) fails. A rate is sustainable when
 * at most `throttleThreshold` (1 %) of requests are throttled and at most that share of leases
 * fail. Bisection on the offered rate gives the sustainable rate at S.
 *
 * Assumptions, each with its source (quotes are from the AWS pages at these addresses):
 *
 *  A1 Partition limits. "each individual partition is limited to 1,000 write units per second
 *     and 3,000 read units per second"
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html
 *     and "as long as the traffic against a given partition key does not exceed 3000 read
 *     capacity units or 1000 write capacity units"
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
 *     The limits hold for GSIs as for tables, and reads and writes throttle independently:
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-key-range-limit-exceeded-mitigation.html
 *     Modelled as: at most 1,000 WCU (3,000 RCU) consumed in any sliding one-second window.
 *
 *  A2 No burst at partition level. Burst capacity "can't alleviate partition-level throttling"
 *     https://repost.aws/knowledge-center/dynamodb-spiky-workloads-short-intervals
 *     so the window carries no credit beyond its one second.
 *
 *  A3 One index partition key value is at most one partition. The throttling reason
 *     KeyRangeThroughputExceeded means "the request rate directed at a specific partition key
 *     value has exceeded the internal partition-level throughput limits"
 *     https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html
 *     Adaptive capacity isolates hot items on their own partitions but "DynamoDB can deliver
 *     throughput up to the partition maximum of 3,000 RCUs and 1,000 WCUs to that single
 *     item's primary key"; an item collection can be broken up "by sort key, as long as the
 *     item collection isn't traffic that is tracked by a monotonic increase or decrease of the
 *     sort key"
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/burst-adaptive-capacity.html#isolate-frequent-access-items
 *     keypool's index traffic is exactly that: a lease deletes an entry at the head of the
 *     lowest usage tier and puts the key at the newest stamp of the next tier, so both hot spots advance
 *     monotonically through the sort key. The model gives each shard value one partition.
 *
 *  A4 Index write cost. "If an update to the table changes the value of an indexed key
 *     attribute (from A to B), two writes are required, one to delete the previous item from
 *     the index and another write to put the new item into the index"; a write that does not
 *     affect the index consumes no index capacity.
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes
 *     So a lease = 1 base + 2 index WCU, a success completion = 1 base WCU (it changes only the
 *     lease slot, not projected), a refunding completion = 1 base + 2 index WCU.
 *
 *  A5 Refused conditional writes. "If a ConditionExpression evaluates to false during a
 *     conditional write, DynamoDB still consumes write capacity from the table" (1 WCU for an
 *     item up to 1 KB); nothing is written, so the index is not charged.
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalWrites.ReturnConsumedCapacity
 *
 *  A6 GSI back-pressure. GSIs are updated asynchronously; when one lacks the capacity for the
 *     updates, DynamoDB throttles the writes to the base table to keep them consistent, and
 *     the exception names the GSI while the operation throttled is the base-table write
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html
 *     "In order for a table write to succeed, the provisioned throughput settings for the
 *     table and all of its global secondary indexes must have enough write capacity"
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes
 *     "When a GSI has insufficient read capacity, throttling doesn't affect the base table"
 *     https://repost.aws/knowledge-center/dynamodb-gsi-throttling-table
 *     So a write that changes the index passes only if its base partition AND its index
 *     partition have room; otherwise the base write itself is throttled (consuming nothing).
 *
 *  A7 Query cost. GSI queries are eventually consistent, 0.5 RCU per 4 KB read (GSI.html,
 *     "Read Capacity Units"); a 25-entry page of small index entries (keys, usageCount,
 *     cooldownUntil) stays under 4 KB, as measured (0.5 RCU per use).
 *
 *  A8 Retries (not AWS documentation: the SDK code installed here, @smithy/core 3.41.1,
 *     util-retry StandardRetryStrategy with its 2026 defaults): keypool's client makes at most
 *     3 attempts (lib/commons.ts); a throttled attempt waits U(0,1) x min(1000 ms x 2^retry,
 *     20 s) before the next.
 *
 *  A9 Steady state after adaptive capacity: by default each shard value and each key item
 *     sits on a partition of its own ("adaptive capacity rebalances your partitions such that
 *     frequently accessed items don't reside on the same partition", burst-adaptive-capacity
 *     page above). `indexPartitions` / `basePartitions` hash values onto N partitions instead,
 *     to see a cold table: a new on-demand table starts at a warm throughput of 4,000 write
 *     units per second (warm-throughput-scenarios page above).
 *
 *  A10 Table-level limits are not simulated, only reported: on-demand tables default to
 *     40,000 read and 40,000 write request units per table
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
 *
 * Where DynamoDB can do better than the model, and why the model is conservative:
 *  - Split for heat may still cut a shard's item collection between its two hot ends (head
 *    deletes, tail puts), for up to ~2x per shard until the ends meet again; the model never
 *    splits below a partition key value (A3).
 *  - A real partition may admit short bursts above the per-second rate; the model's sliding
 *    window admits none (A1, A2), so Poisson jitter alone throttles it below 100 % use.
 *  - AWS's own test saw one partition serve 4,500 RCU/s of eventually consistent queries
 *    (reads spread over replicas): https://aws.amazon.com/blogs/database/part-2-scaling-dynamodb-how-partitions-hot-keys-and-split-for-heat-impact-performance/
 *    The model uses 3,000 (reads do not bind here anyway).
 *  - The request mix is taken per lease whatever S: sharding should lower lost races (callers
 *    spread over S index heads), the model keeps the measured contention.
 *  - "Sustainable" counts every throttled request, including those a retry then served.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as z from 'zod/mini';
import { MAX_SHARDS, shardOf } from '../lib/domain/shards.js';
import { DEFAULT_MAX_USES } from '../lib/domain/types.js';
import { usagePartition } from '../lib/table.js';
import { prng } from '../test/support/prng.js';
import { type KmsLoad, kmsLoad, renderKmsLoad } from './kms-rate.js';

/** What one granted lease costs on average, request by request (a lease's whole life: lease + completion). */
export interface RequestMix {
  /** index Queries per granted lease on its shard, >= 1 (more when pages hold only cooling keys) */
  queriesPerLease: number;
  /** RCU per Query: 0.5 (eventually consistent, page under 4 KB) */
  rcuPerQuery: number;
  /** base-table WCU of the lease write on the key's item */
  baseWcuPerLease: number;
  /** index WCU of the lease write: the sort key moves, delete + put = 2 */
  indexWcuPerLease: number;
  /** refused conditional writes (lost races) per granted lease */
  refusedWritesPerLease: number;
  /** base WCU a refused conditional write is billed; it writes nothing to the index */
  wcuPerRefusedWrite: number;
  /** base WCU of the completion (success changes only the lease slot) */
  completionBaseWcu: number;
  /** share of completions that refund the use: each moves the sort key back (indexWcuPerLease more index WCU) */
  refundShare: number;
  /**
   * share of leases that pay a completion write at all: 1 for a client's lease (completed
   * whatever its outcome); for a proxied use only the uses given back (a success is counted in
   * the lease write and writes nothing more), so it equals refundShare there
   */
  completionShare: number;
}

/**
 * keypool's mix as measured on DynamoDB Local with 32 callers: ~3.4 requests, 0.5 RCU and
 * 4.4 WCU per use, 0.38-0.43 refused writes per use, all completions successes.
 */
export const DEFAULT_MIX: RequestMix = {
  queriesPerLease: 1,
  rcuPerQuery: 0.5,
  baseWcuPerLease: 1,
  indexWcuPerLease: 2,
  refusedWritesPerLease: 0.4,
  wcuPerRefusedWrite: 1,
  completionBaseWcu: 1,
  refundShare: 0,
  completionShare: 1,
};

const nonNegative = z.number().check(z.minimum(0));
/** A partial mix as given on the command line or by the benchmark: known fields only, no coercion. */
export const RequestMixInput = z.partial(
  z.strictObject({
    queriesPerLease: z.number().check(z.minimum(1)),
    rcuPerQuery: nonNegative,
    baseWcuPerLease: nonNegative,
    indexWcuPerLease: nonNegative,
    refusedWritesPerLease: nonNegative,
    wcuPerRefusedWrite: nonNegative,
    completionBaseWcu: nonNegative,
    refundShare: z.number().check(z.minimum(0), z.maximum(1)),
    completionShare: z.number().check(z.minimum(0), z.maximum(1)),
  }),
);

/** The default mix with the given fields replaced; throws on a field that is unknown or out of range. */
export function mixFrom(partial: unknown): RequestMix {
  return { ...DEFAULT_MIX, ...RequestMixInput.parse(partial) };
}

/** Per-use figures a benchmark run reports (`npm run bench`'s RCU/use, WCU/use, refused writes/use). */
export interface MeasuredUse {
  rcuPerUse: number;
  wcuPerUse: number;
  refusedWritesPerUse: number;
  /** index WCU per use, when the harness counts it; otherwise inferred from the WCU left over */
  indexWcuPerUse?: number;
}

/**
 * A mix from measured per-use figures: Queries from RCU (0.5 each), refusals as measured, and
 * refunds from the index WCU (or, without it, from the WCU left over once the lease, its
 * completion and the refusals are paid). Never negative; the rest of the mix is the default.
 */
export function mixFromMeasured(measured: MeasuredUse): RequestMix {
  const d = DEFAULT_MIX;
  const refusals = Math.max(0, measured.refusedWritesPerUse);
  const indexExtra =
    measured.indexWcuPerUse !== undefined
      ? measured.indexWcuPerUse - d.indexWcuPerLease
      : measured.wcuPerUse -
        (d.baseWcuPerLease + d.indexWcuPerLease + d.completionBaseWcu + refusals * d.wcuPerRefusedWrite);
  return mixFrom({
    queriesPerLease: Math.max(1, measured.rcuPerUse / d.rcuPerQuery),
    refusedWritesPerLease: refusals,
    // A refunding completion costs the index what the lease did: delete + put.
    refundShare: Math.min(1, Math.max(0, indexExtra / d.indexWcuPerLease)),
  });
}

/**
 * A proxied use's mix from the measured per-use figures of a proxied run (all successes: one
 * query, the lease write, the lost races) and the share of uses the provider's answer gives
 * back (`givenBack`, 0..1): each of those pays one refund write, which moves the sort key back.
 */
export function proxiedMixFromMeasured(measured: MeasuredUse, givenBack: number): RequestMix {
  const share = Math.min(1, Math.max(0, givenBack));
  return { ...mixFromMeasured(measured), refundShare: share, completionShare: share };
}

/** Requests, RCU and WCU per granted lease implied by a mix (no throttling, no dry shards). */
export function mixTotals(mix: RequestMix): {
  requestsPerLease: number;
  rcuPerLease: number;
  baseWcuPerLease: number;
  indexWcuPerLease: number;
  wcuPerLease: number;
} {
  const baseWcu =
    mix.baseWcuPerLease +
    mix.refusedWritesPerLease * mix.wcuPerRefusedWrite +
    mix.completionShare * mix.completionBaseWcu;
  const indexWcu = mix.indexWcuPerLease * (1 + mix.refundShare);
  return {
    requestsPerLease: mix.queriesPerLease + mix.refusedWritesPerLease + 1 + mix.completionShare,
    rcuPerLease: mix.queriesPerLease * mix.rcuPerQuery,
    baseWcuPerLease: baseWcu,
    indexWcuPerLease: indexWcu,
    wcuPerLease: baseWcu + indexWcu,
  };
}

export interface PartitionLimits {
  writeUnitsPerSecond: number;
  readUnitsPerSecond: number;
}

/** A1: per partition, per second. */
export const PARTITION_LIMITS: PartitionLimits = { writeUnitsPerSecond: 1000, readUnitsPerSecond: 3000 };

/** A10: on-demand, per table (adjustable quota); reported, not simulated. */
export const TABLE_QUOTA_UNITS_PER_SECOND = 40_000;

export interface RetryPolicy {
  /** attempts per request, the first included */
  maxAttempts: number;
  /** throttled retry i (0-based) waits U(0,1) x min(base x 2^i, max) */
  throttlingBaseDelayMs: number;
  maxDelayMs: number;
}

/** A8: keypool's client (maxAttempts 3) with the installed SDK's throttling backoff. */
export const SDK_RETRY: RetryPolicy = { maxAttempts: 3, throttlingBaseDelayMs: 1000, maxDelayMs: 20_000 };

export interface ModelOptions {
  /** index partition values the pool's keys are spread over */
  shards: number;
  mix: RequestMix;
  seed: number;
  /** share of requests that may be throttled (and of leases that may fail) at a sustainable rate */
  throttleThreshold: number;
  tickMs: number;
  warmupSeconds: number;
  measureSeconds: number;
  /** keys in the pool (their items are what the base-table writes land on) */
  keys: number;
  /** 'per-key': every key item on its own partition (A9); a number: items hashed onto that many */
  basePartitions: 'per-key' | number;
  /** 'per-shard': every shard value on its own partition (A9); a number: values hashed onto that many */
  indexPartitions: 'per-shard' | number;
  /** shards with no usable key (a lease that lands on one probes it with a Query and moves on) */
  dryShards: number;
  /** time a caller holds a lease before completing it */
  holdMs: number;
  limits: PartitionLimits;
  retry: RetryPolicy;
  /** bisection stops when the bracket is narrower than this share of its upper end */
  resolution: number;
  /** pool name, only to hash shard values onto partitions when indexPartitions is a number */
  pool: string;
  /** the pool's cap (a key serves maxUses + 1 uses): only the KMS figures read it */
  maxUses: number;
}

export const DEFAULT_OPTIONS: ModelOptions = {
  shards: 1,
  mix: DEFAULT_MIX,
  seed: 1,
  throttleThreshold: 0.01,
  tickMs: 10,
  warmupSeconds: 2,
  measureSeconds: 4,
  keys: 1000,
  basePartitions: 'per-key',
  indexPartitions: 'per-shard',
  dryShards: 0,
  holdMs: 500,
  limits: PARTITION_LIMITS,
  retry: SDK_RETRY,
  resolution: 0.005,
  pool: 'default',
  maxUses: DEFAULT_MAX_USES,
};

/** One simulated run at one offered rate; every figure covers the measurement window only. */
export interface RunResult {
  shards: number;
  offeredPerSec: number;
  grantedPerSec: number;
  requestsPerSec: number;
  /** throttled requests / requests sent */
  throttleRatio: number;
  /** throttled requests by cause: back-pressure of an index partition onto the base write, a hot base partition, a hot index partition for Queries */
  throttled: { indexWrite: number; baseWrite: number; indexRead: number };
  /** leases that failed after the last retry / leases offered */
  failedRatio: number;
  failedCompletions: number;
  /** pools seen dry on every shard (409 no_usable_key) */
  dryRefusals: number;
  refusedWritesPerLease: number;
  dryProbesPerLease: number;
  rcuPerLease: number;
  baseWcuPerLease: number;
  indexWcuPerLease: number;
  /** the most WCU one index partition consumed in one second of the window */
  hottestIndexWcuPerSec: number;
  hottestIndexRcuPerSec: number;
  hottestBaseWcuPerSec: number;
  sustainable: boolean;
}

function poisson(mean: number, random: () => number): number {
  if (mean <= 0) return 0;
  if (mean < 30) {
    // Knuth: exact, and cheap for the per-tick means of a few leases.
    const limit = Math.exp(-mean);
    let k = 0;
    let p = random();
    while (p > limit) {
      k++;
      p *= random();
    }
    return k;
  }
  // Normal approximation for large per-tick means (tens of thousands of leases/s).
  const u = Math.max(random(), Number.EPSILON);
  const gauss = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  return Math.max(0, Math.round(mean + Math.sqrt(mean) * gauss));
}

/**
 * Capacity consumed in the last second, per tick, in milli-units (integers, so the running sum
 * never drifts). Advanced lazily: a partition costs nothing in the ticks nobody touches it.
 */
class SlidingWindow {
  private readonly ring: Float64Array;
  private sum = 0;
  private last = -1;

  constructor(
    private readonly ticks: number,
    private readonly limit: number,
  ) {
    this.ring = new Float64Array(ticks);
  }

  private advance(tick: number): void {
    if (tick - this.last >= this.ticks) {
      this.ring.fill(0);
      this.sum = 0;
    } else {
      for (let t = this.last + 1; t <= tick; t++) {
        const i = t % this.ticks;
        this.sum -= this.ring[i] ?? 0;
        this.ring[i] = 0;
      }
    }
    this.last = Math.max(this.last, tick);
  }

  fits(tick: number, amount: number): boolean {
    this.advance(tick);
    return this.sum + amount <= this.limit;
  }

  take(tick: number, amount: number): void {
    this.advance(tick);
    const i = tick % this.ticks;
    this.ring[i] = (this.ring[i] ?? 0) + amount;
    this.sum += amount;
  }
}

/** Consumption per partition per second of the measurement window, for the "hottest" figures. */
class Heat {
  private readonly cells: Float64Array;

  constructor(
    partitions: number,
    private readonly seconds: number,
  ) {
    this.cells = new Float64Array(partitions * seconds);
  }

  add(partition: number, second: number, milli: number): void {
    const i = partition * this.seconds + second;
    this.cells[i] = (this.cells[i] ?? 0) + milli;
  }

  hottest(): number {
    let max = 0;
    for (const v of this.cells) if (v > max) max = v;
    return max / 1000;
  }
}

/** query: reading the shard's index page; refused: a write that loses its race; lease: the granting write; complete: the completion */
type Step = 'query' | 'refused' | 'lease' | 'complete';

interface Lease {
  step: Step;
  shard: number;
  /** shards seen dry so far (only tracked when some are dry) */
  tried: boolean[] | undefined;
  triedCount: number;
  queriesLeft: number;
  refusalsLeft: number;
  key: number;
  attempt: number;
}

const milli = (units: number): number => Math.round(units * 1000);

/**
 * Simulates one pool at one offered rate (leases/s) for warmup + measure seconds. Pure and
 * deterministic: the same options and rate give the same result.
 */
export function simulate(offeredPerSec: number, options: Partial<ModelOptions> = {}): RunResult {
  const o: ModelOptions = { ...DEFAULT_OPTIONS, ...options };
  const { mix, shards, tickMs, retry } = o;
  if (!Number.isInteger(shards) || shards < 1) throw new Error('shards must be a whole number >= 1');
  if (o.dryShards < 0 || o.dryShards > shards) throw new Error('dryShards must be between 0 and shards');
  const random = prng((o.seed * 0x9e3779b1 + shards * 0x85ebca6b) >>> 0);
  const ticksPerSecond = Math.round(1000 / tickMs);
  const warmupTicks = Math.round(o.warmupSeconds * ticksPerSecond);
  const endTicks = warmupTicks + Math.round(o.measureSeconds * ticksPerSecond);
  const measured = (tick: number): boolean => tick >= warmupTicks && tick < endTicks;
  const secondOf = (tick: number): number => Math.floor((tick - warmupTicks) / ticksPerSecond);

  // Where each shard value and each key item lives. DynamoDB's partition hash is unpublished; the
  // stand-in is shardOf's stable FNV-1a (32 bits) modulo the partition count.
  const indexCount = o.indexPartitions === 'per-shard' ? shards : o.indexPartitions;
  const indexOf = Array.from({ length: shards }, (_, s) =>
    o.indexPartitions === 'per-shard' ? s : shardOf(usagePartition(o.pool, s), indexCount),
  );
  const baseCount = o.basePartitions === 'per-key' ? o.keys : o.basePartitions;
  const baseOf = Array.from({ length: o.keys }, (_, k) =>
    o.basePartitions === 'per-key' ? k : shardOf(`key-${k}`, baseCount),
  );
  const writeLimit = milli(o.limits.writeUnitsPerSecond);
  const readLimit = milli(o.limits.readUnitsPerSecond);
  const indexWrites = Array.from({ length: indexCount }, () => new SlidingWindow(ticksPerSecond, writeLimit));
  const indexReads = Array.from({ length: indexCount }, () => new SlidingWindow(ticksPerSecond, readLimit));
  const baseWrites = Array.from({ length: baseCount }, () => new SlidingWindow(ticksPerSecond, writeLimit));
  const seconds = Math.ceil(o.measureSeconds);
  const indexWriteHeat = new Heat(indexCount, seconds);
  const indexReadHeat = new Heat(indexCount, seconds);
  const baseHeat = new Heat(baseCount, seconds);

  const queryCost = milli(mix.rcuPerQuery);
  const refusedCost = milli(mix.wcuPerRefusedWrite);
  const leaseBaseCost = milli(mix.baseWcuPerLease);
  const leaseIndexCost = milli(mix.indexWcuPerLease);
  const completionBaseCost = milli(mix.completionBaseWcu);
  const p = mix.refusedWritesPerLease / (1 + mix.refusedWritesPerLease);

  // Calendar queue: one bucket per tick, wide enough for the longest backoff and the hold.
  const longestDelayTicks =
    Math.ceil(
      Math.min(retry.throttlingBaseDelayMs * 2 ** Math.max(0, retry.maxAttempts - 2), retry.maxDelayMs) / tickMs,
    ) +
    Math.ceil(o.holdMs / tickMs) +
    2;
  let horizon = 1;
  while (horizon < longestDelayTicks) horizon *= 2;
  const calendar: Lease[][] = Array.from({ length: horizon }, () => []);
  const schedule = (tick: number, lease: Lease): void => {
    (calendar[tick & (horizon - 1)] as Lease[]).push(lease);
  };

  const stats = {
    offered: 0,
    granted: 0,
    sent: 0,
    indexWrite: 0,
    baseWrite: 0,
    indexRead: 0,
    failed: 0,
    failedCompletions: 0,
    dryRefusals: 0,
    refused: 0,
    dryProbes: 0,
    rcu: 0,
    baseWcu: 0,
    indexWcu: 0,
  };

  const pickKey = (): number => Math.floor(random() * o.keys);
  const pickUntried = (lease: Lease): number => {
    const tried = lease.tried as boolean[];
    for (;;) {
      const s = Math.floor(random() * shards);
      if (!tried[s]) return s;
    }
  };
  const consume = (tick: number, kind: 'rcu' | 'base' | 'index', partition: number, amount: number): void => {
    if (amount === 0) return;
    if (kind === 'rcu') indexReads[partition]?.take(tick, amount);
    else if (kind === 'index') indexWrites[partition]?.take(tick, amount);
    else (baseWrites[partition] as SlidingWindow).take(tick, amount);
    if (!measured(tick)) return;
    const second = secondOf(tick);
    if (kind === 'rcu') {
      stats.rcu += amount;
      indexReadHeat.add(partition, second, amount);
    } else if (kind === 'index') {
      stats.indexWcu += amount;
      indexWriteHeat.add(partition, second, amount);
    } else {
      stats.baseWcu += amount;
      baseHeat.add(partition, second, amount);
    }
  };
  const throttle = (tick: number, lease: Lease, cause: 'indexWrite' | 'baseWrite' | 'indexRead'): void => {
    if (measured(tick)) stats[cause]++;
    lease.attempt++;
    if (lease.attempt >= retry.maxAttempts) {
      // The SDK gives up: the error reaches the broker, which fails the lease (or the completion).
      if (measured(tick)) {
        if (lease.step === 'complete') stats.failedCompletions++;
        else stats.failed++;
      }
      return;
    }
    const delayMs = Math.floor(
      random() * Math.min(retry.throttlingBaseDelayMs * 2 ** (lease.attempt - 1), retry.maxDelayMs),
    );
    schedule(tick + Math.max(1, Math.ceil(delayMs / tickMs)), lease);
  };
  const startWrites = (tick: number, lease: Lease): void => {
    lease.key = pickKey();
    lease.step = lease.refusalsLeft > 0 ? 'refused' : 'lease';
    schedule(tick + 1, lease);
  };

  const step = (tick: number, lease: Lease): void => {
    if (measured(tick)) stats.sent++;
    switch (lease.step) {
      case 'query': {
        const partition = indexOf[lease.shard] as number;
        if (!(indexReads[partition] as SlidingWindow).fits(tick, queryCost)) return throttle(tick, lease, 'indexRead');
        consume(tick, 'rcu', partition, queryCost);
        lease.attempt = 0;
        if (lease.shard < o.dryShards) {
          // An empty page: this shard is dry, try another one not seen yet.
          if (measured(tick)) stats.dryProbes++;
          const tried = (lease.tried ??= new Array<boolean>(shards).fill(false));
          tried[lease.shard] = true;
          lease.triedCount++;
          if (lease.triedCount === shards) {
            if (measured(tick)) stats.dryRefusals++;
            return;
          }
          lease.shard = pickUntried(lease);
          return schedule(tick + 1, lease);
        }
        lease.queriesLeft--;
        if (lease.queriesLeft > 0) return schedule(tick + 1, lease);
        return startWrites(tick, lease);
      }
      case 'refused': {
        const partition = baseOf[lease.key] as number;
        if (!(baseWrites[partition] as SlidingWindow).fits(tick, refusedCost))
          return throttle(tick, lease, 'baseWrite');
        consume(tick, 'base', partition, refusedCost);
        if (measured(tick)) stats.refused++;
        lease.attempt = 0;
        lease.refusalsLeft--;
        // Lost the race for this key: the broker tries another candidate of its page.
        return startWrites(tick, lease);
      }
      case 'lease':
      case 'complete': {
        const isLease = lease.step === 'lease';
        const index = indexOf[lease.shard] as number;
        const base = baseOf[lease.key] as number;
        const baseCost = isLease ? leaseBaseCost : completionBaseCost;
        // Of the completions made, the share that refunds (all of them for a proxied use's).
        const refunds = mix.completionShare > 0 ? mix.refundShare / mix.completionShare : 0;
        const indexCost = isLease ? leaseIndexCost : random() < refunds ? leaseIndexCost : 0;
        // A6: the index must take its writes or the base write is throttled (back-pressure).
        if (indexCost > 0 && !(indexWrites[index] as SlidingWindow).fits(tick, indexCost))
          return throttle(tick, lease, 'indexWrite');
        if (!(baseWrites[base] as SlidingWindow).fits(tick, baseCost)) return throttle(tick, lease, 'baseWrite');
        consume(tick, 'base', base, baseCost);
        consume(tick, 'index', index, indexCost);
        lease.attempt = 0;
        if (!isLease) return;
        if (measured(tick)) stats.granted++;
        // A proxied success writes nothing after its lease write (drawn only then: a client's
        // lease mix keeps its random stream).
        if (mix.completionShare < 1 && random() >= mix.completionShare) return;
        lease.step = 'complete';
        return schedule(tick + Math.max(1, Math.round(o.holdMs / tickMs)), lease);
      }
    }
  };

  const arrivalsPerTick = (offeredPerSec * tickMs) / 1000;
  for (let tick = 0; tick < endTicks; tick++) {
    const slot = tick & (horizon - 1);
    // Nothing is ever scheduled for the current tick (every delay is >= 1), so the bucket can be emptied in place.
    const due = calendar[slot] as Lease[];
    for (const lease of due) step(tick, lease);
    due.length = 0;
    const arrivals = poisson(arrivalsPerTick, random);
    for (let i = 0; i < arrivals; i++) {
      let queries = Math.floor(mix.queriesPerLease);
      if (random() < mix.queriesPerLease - queries) queries++;
      let refusals = 0;
      while (random() < p) refusals++;
      const lease: Lease = {
        step: 'query',
        shard: Math.floor(random() * shards),
        tried: undefined,
        triedCount: 0,
        queriesLeft: queries,
        refusalsLeft: refusals,
        key: 0,
        attempt: 0,
      };
      if (measured(tick)) stats.offered++;
      step(tick, lease);
    }
  }

  const throttledTotal = stats.indexWrite + stats.baseWrite + stats.indexRead;
  const throttleRatio = stats.sent === 0 ? 0 : throttledTotal / stats.sent;
  const failedRatio = stats.offered === 0 ? 0 : stats.failed / stats.offered;
  const perLease = (x: number): number => (stats.granted === 0 ? 0 : x / stats.granted);
  return {
    shards,
    offeredPerSec: stats.offered / o.measureSeconds,
    grantedPerSec: stats.granted / o.measureSeconds,
    requestsPerSec: stats.sent / o.measureSeconds,
    throttleRatio,
    throttled: { indexWrite: stats.indexWrite, baseWrite: stats.baseWrite, indexRead: stats.indexRead },
    failedRatio,
    failedCompletions: stats.failedCompletions,
    dryRefusals: stats.dryRefusals,
    refusedWritesPerLease: perLease(stats.refused),
    dryProbesPerLease: perLease(stats.dryProbes),
    rcuPerLease: perLease(stats.rcu / 1000),
    baseWcuPerLease: perLease(stats.baseWcu / 1000),
    indexWcuPerLease: perLease(stats.indexWcu / 1000),
    hottestIndexWcuPerSec: indexWriteHeat.hottest(),
    hottestIndexRcuPerSec: indexReadHeat.hottest(),
    hottestBaseWcuPerSec: baseHeat.hottest(),
    sustainable: throttleRatio <= o.throttleThreshold && failedRatio <= o.throttleThreshold,
  };
}

/**
 * The rate one pool could take if load were perfectly even and nothing jittered: the tightest
 * of its wet shards' index write and read limits and of its base partitions' write limits.
 * An upper bound for the simulation, and the benchmark's projection in closed form.
 */
export function analyticCeiling(options: Partial<ModelOptions> = {}): number {
  const o: ModelOptions = { ...DEFAULT_OPTIONS, ...options };
  const wet = o.shards - o.dryShards;
  if (wet <= 0) return 0;
  const totals = mixTotals(o.mix);
  const indexPartitions = o.indexPartitions === 'per-shard' ? wet : Math.min(wet, o.indexPartitions);
  const basePartitions = o.basePartitions === 'per-key' ? o.keys : Math.min(o.keys, o.basePartitions);
  // A lease probes on average dry / (wet + 1) dry shards before a wet one (random order).
  const rcuPerLease = totals.rcuPerLease + (o.dryShards / (wet + 1)) * o.mix.rcuPerQuery;
  const bound = (partitions: number, limit: number, perLease: number): number =>
    perLease > 0 ? (partitions * limit) / perLease : Infinity;
  return Math.min(
    bound(indexPartitions, o.limits.writeUnitsPerSecond, totals.indexWcuPerLease),
    bound(indexPartitions, o.limits.readUnitsPerSecond, rcuPerLease),
    bound(basePartitions, o.limits.writeUnitsPerSecond, totals.baseWcuPerLease),
  );
}

/**
 * The ceiling per pool the benchmark projects from its measured heat: the uses/s it ran,
 * scaled so the hottest index partition would reach its per-second write limit.
 */
export function projectedUsesPerSecCeiling(
  measured: { usesPerSec: number; hottestIndexWcuPerSec: number },
  limits: PartitionLimits = PARTITION_LIMITS,
): number {
  if (measured.hottestIndexWcuPerSec <= 0) return Infinity;
  return (measured.usesPerSec * limits.writeUnitsPerSecond) / measured.hottestIndexWcuPerSec;
}

export interface Sustainable {
  shards: number;
  /** the highest offered rate found sustainable, rounded down */
  leasesPerSec: number;
  analyticCeiling: number;
  /** the run at that rate */
  run: RunResult;
}

/**
 * The sustainable leases/s for one pool at `options.shards`: bisection on the offered rate
 * until the bracket is narrower than `resolution` of its top. Deterministic: every rate is
 * simulated with the same seed, so the random streams match across the bisection.
 */
export function sustainableRate(options: Partial<ModelOptions> = {}): Sustainable {
  const o: ModelOptions = { ...DEFAULT_OPTIONS, ...options };
  const ceiling = analyticCeiling(o);
  let hi = Number.isFinite(ceiling) ? Math.max(10, ceiling * 1.25) : 1000;
  let lo = 0;
  let best: RunResult | undefined;
  for (let run = simulate(hi, o); run.sustainable && hi < 1e7; run = simulate(hi, o)) {
    lo = hi;
    best = run;
    hi *= 2;
  }
  while (hi - lo > Math.max(1, o.resolution * hi)) {
    const mid = (lo + hi) / 2;
    const run = simulate(mid, o);
    if (run.sustainable) {
      lo = mid;
      best = run;
    } else {
      hi = mid;
    }
  }
  return { shards: o.shards, leasesPerSec: Math.floor(lo), analyticCeiling: ceiling, run: best ?? simulate(lo, o) };
}

/** the pool setting's bound (lib/domain/shards.ts): the model recommends no more than a pool may have */
export { MAX_SHARDS };

/**
 * The smallest S in 1..maxShards whose sustainable rate reaches `target` leases/s, with that
 * rate; undefined when even maxShards falls short. Starts at the even-load lower bound, so
 * it simulates only the few S that could qualify.
 */
export function recommendShards(
  target: number,
  options: Partial<ModelOptions> = {},
  maxShards = MAX_SHARDS,
): Sustainable | undefined {
  const o: ModelOptions = { ...DEFAULT_OPTIONS, ...options };
  const at = (shards: number): ModelOptions => ({ ...o, shards, dryShards: Math.min(o.dryShards, shards - 1) });
  let start = 1;
  while (start <= maxShards && analyticCeiling(at(start)) < target) start++;
  for (let shards = start; shards <= maxShards; shards++) {
    // One run at the target rules out most S; only a candidate gets the full bisection.
    if (!simulate(target, at(shards)).sustainable) continue;
    const result = sustainableRate(at(shards));
    if (result.leasesPerSec >= target) return result;
  }
  return undefined;
}

/** What a lease against a pool dry on every shard costs before its 409: one Query per shard. */
export function dryPoolCost(shards: number, mix: RequestMix = DEFAULT_MIX): { queries: number; rcu: number } {
  return { queries: shards, rcu: shards * mix.rcuPerQuery };
}

export interface ScalingReport {
  target: number;
  seed: number;
  throttleThreshold: number;
  mix: RequestMix;
  perLease: ReturnType<typeof mixTotals>;
  rows: {
    shards: number;
    leasesPerSec: number;
    analyticCeiling: number;
    perShardLeasesPerSec: number;
    hottestIndexWcuPerSec: number;
    throttleRatio: number;
    dryPool: { queries: number; rcu: number };
  }[];
  recommended: { shards: number; leasesPerSec: number; hottestIndexWcuPerSec: number } | null;
  /** table-wide write units at the recommended S's sustainable rate (A10: not simulated) */
  tableLevel: { baseWcuPerSec: number; indexWcuPerSec: number; quotaPerTable: number } | null;
  /** the KMS requests the target rate implies (one lease or proxied use opens one secret), not simulated */
  kms: KmsLoad;
}

/** The table of sustainable rates for the given shard counts and the recommendation for `target`. */
export function scalingReport(
  target: number,
  shardCounts: readonly number[],
  options: Partial<ModelOptions> = {},
): ScalingReport {
  const o: ModelOptions = { ...DEFAULT_OPTIONS, ...options };
  const perLease = mixTotals(o.mix);
  const rows = shardCounts.map((shards) => {
    const r = sustainableRate({ ...o, shards });
    return {
      shards,
      leasesPerSec: r.leasesPerSec,
      analyticCeiling: Math.floor(r.analyticCeiling),
      perShardLeasesPerSec: Math.floor(r.leasesPerSec / shards),
      hottestIndexWcuPerSec: Math.round(r.run.hottestIndexWcuPerSec),
      throttleRatio: Number(r.run.throttleRatio.toFixed(4)),
      dryPool: dryPoolCost(shards, o.mix),
    };
  });
  const rec = recommendShards(target, o);
  return {
    target,
    seed: o.seed,
    throttleThreshold: o.throttleThreshold,
    mix: o.mix,
    perLease,
    rows,
    recommended: rec
      ? {
          shards: rec.shards,
          leasesPerSec: rec.leasesPerSec,
          hottestIndexWcuPerSec: Math.round(rec.run.hottestIndexWcuPerSec),
        }
      : null,
    tableLevel: rec
      ? {
          baseWcuPerSec: Math.round(rec.leasesPerSec * perLease.baseWcuPerLease),
          indexWcuPerSec: Math.round(rec.leasesPerSec * perLease.indexWcuPerLease),
          quotaPerTable: TABLE_QUOTA_UNITS_PER_SECOND,
        }
      : null,
    kms: kmsLoad(target, o.maxUses + 1),
  };
}

/** The report as the markdown docs/scaling.md quotes. */
export function renderReport(report: ScalingReport): string {
  const t = report.perLease;
  const lines = [
    `request mix per lease: ${t.requestsPerLease.toFixed(2)} requests, ${t.rcuPerLease.toFixed(2)} RCU, ` +
      `${t.baseWcuPerLease.toFixed(2)} base WCU + ${t.indexWcuPerLease.toFixed(2)} index WCU ` +
      `(${report.mix.refusedWritesPerLease} refused writes${report.mix.completionShare < 1 ? `; a completion write for ${(report.mix.completionShare * 100).toFixed(1)} % of uses only` : ''}); throttled <= ${(report.throttleThreshold * 100).toFixed(1)} % of requests; seed ${report.seed}`,
    '',
    '| shards S | sustainable leases/s per pool | per shard | even-load ceiling | hottest index partition WCU/s | throttled | dry pool: Queries (RCU) per 409 |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...report.rows.map(
      (r) =>
        `| ${r.shards} | ${r.leasesPerSec} | ${r.perShardLeasesPerSec} | ${r.analyticCeiling} | ${r.hottestIndexWcuPerSec} | ${(r.throttleRatio * 100).toFixed(2)} % | ${r.dryPool.queries} (${r.dryPool.rcu}) |`,
    ),
    '',
    report.recommended
      ? `recommended for ${report.target} leases/s: S = ${report.recommended.shards} (sustains ${report.recommended.leasesPerSec} leases/s; ` +
        `table-wide ${report.tableLevel?.baseWcuPerSec} base WCU/s + ${report.tableLevel?.indexWcuPerSec} index WCU/s, ` +
        `default on-demand quota ${report.tableLevel?.quotaPerTable} per table)`
      : `no S up to ${MAX_SHARDS} sustains ${report.target} leases/s`,
    renderKmsLoad(report.kms),
    '',
  ];
  return lines.join('\n');
}

function main(): void {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: '10000' },
      json: { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      threshold: { type: 'string', default: '0.01' },
      shards: { type: 'string', default: '1,8,32,64' },
      mix: { type: 'string' },
      'max-uses': { type: 'string', default: String(DEFAULT_MAX_USES) },
    },
    strict: true,
  });
  const positive = (raw: string, name: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const shardCounts = values.shards.split(',').map((s) => {
    const n = positive(s, 'shards');
    if (!Number.isInteger(n) || n > MAX_SHARDS) throw new Error(`--shards takes whole numbers from 1 to ${MAX_SHARDS}`);
    return n;
  });
  const mix = mixFrom(values.mix === undefined ? {} : (JSON.parse(values.mix) as unknown));
  const maxUses = Number(values['max-uses']);
  if (!Number.isInteger(maxUses) || maxUses < 0) throw new Error('--max-uses takes a whole number >= 0');
  const report = scalingReport(positive(values.target, 'target'), shardCounts, {
    mix,
    seed: Math.floor(positive(values.seed, 'seed')),
    throttleThreshold: positive(values.threshold, 'threshold'),
    maxUses,
  });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
}

// Runnable as a script; importing it (the benchmark, the tests) runs nothing.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (error: unknown) {
    process.stderr.write(`[partition-model] ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
