/**
 * `npm run bench [-- --quick] [-- --json] [-- --shards N] [-- --only a,b] [-- --given-back F]
 * [-- --keys-per-account N] [-- --floor-client sdk|keypool]`:
 * keypool (one shard, and over N shards, default 8) against the old algorithm (baseline) and
 * the least work DynamoDB allows (floor), on one DynamoDB Local, with the same callers and the
 * same table shape; keypool's proxy use case (without and with an Idempotency-Key, at one shard
 * and at N) against the floor making the same provider call (./proxied.ts); then keypool's and
 * the baseline's cost per lease by pool size. keypool's contenders send through keypool's own
 * DynamoDB client, as its functions do; the floor and the baseline through the SDK's document
 * client, as a service built on the SDK would (`--floor-client keypool`: through keypool's, to
 * tell what keypool's own work costs apart from what its client saves).
 *
 * Contenders run in interleaved rounds (each round a fresh pool of `keys` keys) so that the
 * drift of a shared machine falls on all of them alike; ratios measured in one run hold.
 *
 * Partition heat (./heat.ts): every write's consumed capacity is added up per usage-index
 * partition value and per item, so each run reports its hottest index partition's WCU/s and
 * the ceiling per pool it projects on DynamoDB (1,000 WCU/s per partition), which DynamoDB
 * Local cannot show by itself; the partition model (./partition-model.ts) then simulates the
 * scale from the measured request mix.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient, dynamoClient } from '../lib/adapters/dynamo-client.js';
import {
  ensureTable,
  freePort,
  type RunningDynamo,
  startDynamoLocal,
  waitForDynamo,
} from '../lib/local/dynamodb-local.js';
import { audit, GrantLog, storedCounts } from '../test/support/audit.js';
import { sdkCalls } from '../test/support/sdk-calls.js';
import { seedKeys } from '../test/support/seed.js';
import { keyIdFor } from '../lib/domain/keys.js';
import { LEASE_SLOTS } from '../lib/domain/lease-id.js';
import { PROXY_SLOT_MARGIN_SECONDS } from '../lib/use-cases/leasing.js';
import { MAX_SHARDS, shardOf } from '../lib/domain/shards.js';
import { usagePartition } from '../lib/table.js';
import {
  benchSealer,
  CONTENDERS,
  LEASE_CONTENDERS,
  PROXIED_CONTENDERS,
  type ContenderName,
  contender,
  contenderShards,
  CostMeter,
  DEFAULT_BENCH_SHARDS,
  isProxied,
} from './contenders.js';
import { startProviderStub } from './provider-stub.js';
import { cpuSince } from './cpu.js';
import { PartitionHeat, watchWrites } from './heat.js';
import type { DynamoCalls } from '../lib/adapters/dynamo-wire.js';
import {
  mixFromMeasured,
  PARTITION_LIMITS,
  proxiedMixFromMeasured,
  projectedUsesPerSecCeiling,
  renderReport,
  scalingReport,
  type ScalingReport,
} from './partition-model.js';

interface BenchConfig {
  quick: boolean;
  keys: number;
  maxUses: number;
  callers: number;
  usesPerContender: number;
  /** share of a round's pool capacity ((maxUses + 1) x keys) a round uses */
  roundFill: number;
  pageSize: number;
  scalingSizes: number[];
  scalingLeases: number;
  /** keypool-sharded's shard count */
  shards: number;
  /** keys per account in every seeded pool (0: keys carry no account, as before accounts) */
  keysPerAccount: number;
  /** the share of proxied uses the partition model takes as given back (each pays a refund write) */
  givenBack: number;
  /** the contenders run (`--only`; all by default) */
  contenders: ContenderName[];
  /** what the floor and the baseline send through (`--floor-client`): the SDK's document client, or keypool's own */
  floorClient: 'sdk' | 'keypool';
}

interface RunResult {
  name: ContenderName;
  /** the usage index partitions each of the contender's pools was spread over */
  shards: number;
  uses: number;
  usesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerUse: number;
  rcuPerUse: number;
  wcuPerUse: number;
  refusedWritesPerUse: number;
  violations: number;
  /** WCU/s written to the hottest usage-index partition value (averaged over the measured rounds) */
  hottestIndexWcuPerSec: number;
  /** index WCU per use, over every partition */
  indexWcuPerUse: number;
  /** WCU/s written to the hottest key item of the base table */
  hottestItemWcuPerSec: number;
  /**
   * The uses/s one pool could reach on DynamoDB before a partition throttles: this run's uses/s
   * scaled until its hottest index partition (or, if tighter, its hottest item) reaches 1,000 WCU/s
   */
  projectedUsesPerSecCeiling: number;
  /** fairness: the largest spread of counts (max - min) across a round's pool, and the mean standard deviation */
  countSpread: number;
  countStdDev: number;
  /** CPU ms per use of the benchmark's own process (callers, SDK, sealing) over the measured rounds */
  nodeCpuMsPerUse: number;
  /** DynamoDB Local's CPU ms per use over the same rounds; null when not measurable (an endpoint of your own, or no /proc) */
  dynamoCpuMsPerUse: number | null;
  /** of dynamoCpuMsPerUse, its JIT compiler's: near 0 when the warm-up did its job */
  dynamoJitCpuMsPerUse: number | null;
}

interface ScalingResult {
  name: 'keypool' | 'baseline';
  keys: number;
  requestsPerLease: number;
  capacityPerLease: number;
  p50Ms: number;
}

const progress = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function readConfig(): { config: BenchConfig; json: boolean } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      keys: { type: 'string' },
      uses: { type: 'string' },
      callers: { type: 'string' },
      'max-uses': { type: 'string' },
      sizes: { type: 'string' },
      shards: { type: 'string' },
      'keys-per-account': { type: 'string' },
      'given-back': { type: 'string' },
      only: { type: 'string' },
      'floor-client': { type: 'string', default: 'sdk' },
    },
    strict: true,
  });
  const int = (raw: string | undefined, fallback: number, name: string): number => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) throw new Error(`--${name} must be a whole number`);
    return Number(raw);
  };
  const quick = values.quick;
  const config: BenchConfig = {
    quick,
    keys: int(values.keys, 1000, 'keys'),
    maxUses: int(values['max-uses'], 3, 'max-uses'),
    callers: int(values.callers, 32, 'callers'),
    usesPerContender: int(values.uses, quick ? 2000 : 10_000, 'uses'),
    roundFill: 0.75,
    pageSize: 25,
    scalingSizes: values.sizes
      ? values.sizes.split(',').map((s) => int(s, 0, 'sizes'))
      : quick
        ? [100, 1000, 10_000]
        : [100, 1000, 10_000, 100_000],
    scalingLeases: quick ? 100 : 300,
    shards: int(values.shards, DEFAULT_BENCH_SHARDS, 'shards'),
    keysPerAccount: int(values['keys-per-account'], 0, 'keys-per-account'),
    givenBack: values['given-back'] === undefined ? 0.05 : Number(values['given-back']),
    contenders: values.only === undefined ? [...CONTENDERS] : values.only.split(',').map(contenderNamed),
    floorClient: values['floor-client'] === 'keypool' ? 'keypool' : 'sdk',
  };
  if (values['floor-client'] !== 'sdk' && values['floor-client'] !== 'keypool')
    throw new Error('--floor-client must be sdk or keypool');
  if (!(config.givenBack >= 0 && config.givenBack <= 1)) throw new Error('--given-back must be a share from 0 to 1');
  if (config.shards < 1 || config.shards > MAX_SHARDS) throw new Error(`--shards must be from 1 to ${MAX_SHARDS}`);
  return { config, json: values.json };
}

function contenderNamed(name: string): ContenderName {
  const known = CONTENDERS.find((c) => c === name.trim());
  if (!known) throw new Error(`--only takes contenders among ${CONTENDERS.join(', ')}`);
  return known;
}

interface Tally {
  uses: number;
  elapsedMs: number;
  latencies: number[];
  meter: CostMeter;
  violations: number;
  refusals: number;
  heat: PartitionHeat;
  spreads: number[];
  stdDevs: number[];
  nodeCpuMs: number;
  /** undefined once any round could not read DynamoDB Local's CPU */
  dynamoCpuMs: number | undefined;
  /** of it, its JIT compiler threads' (undefined likewise) */
  dynamoJitMs: number | undefined;
}

/**
 * What the provider saw against what the table counts, key by key: the calls made with a key
 * beyond its maxUses + 1 uses, and the difference between its calls and its stored count (every
 * proxied call of the benchmark succeeds, so each must be counted exactly once).
 */
function providerViolations(
  calls: ReadonlyMap<string, number>,
  secrets: ReadonlyMap<string, string>,
  counts: ReadonlyMap<string, number>,
  maxUses: number,
): number {
  let violations = 0;
  for (const [keyId, secret] of secrets) {
    const made = calls.get(secret) ?? 0;
    violations += Math.max(0, made - (maxUses + 1)) + Math.abs(made - (counts.get(keyId) ?? 0));
  }
  return violations;
}

/** max - min and the standard deviation of a pool's counts. */
function countSpread(counts: Iterable<number>): { spread: number; stdDev: number } {
  const all = [...counts];
  if (all.length === 0) return { spread: 0, stdDev: 0 };
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const variance = all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length;
  return { spread: Math.max(...all) - Math.min(...all), stdDev: Math.sqrt(variance) };
}

/** Uses each contender makes, unmeasured, before the measured rounds (fewer in --quick, to stay under 90 s). */
const warmUses = (quick: boolean): number => (quick ? 300 : 1000);
/** Warm-up passes at most: --quick keeps its 90 s, a full run waits for the JIT to settle. */
const warmPassesMax = (quick: boolean): number => (quick ? 2 : 12);
/** A pass whose JIT compiler threads took less than this share of DynamoDB Local's CPU ends the warm-up. */
const WARM_JIT_SHARE = 0.01;

async function main(): Promise<void> {
  // The SDK's notice that its 2027 releases need Node 22 (the Lambdas run 24) is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { config, json } = readConfig();
  const started = Date.now();
  let dynamo: RunningDynamo | undefined;
  let endpoint = process.env.KEYPOOL_DYNAMODB_ENDPOINT;
  if (endpoint) await waitForDynamo(endpoint, 10_000);
  else {
    progress('starting DynamoDB Local (in memory)');
    dynamo = await startDynamoLocal({ port: await freePort() });
    endpoint = dynamo.endpoint;
    const child = dynamo.process;
    // The JVM must not outlive the benchmark, however it ends.
    process.once('exit', () => child.kill('SIGKILL'));
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  }
  // keypool's contenders send through keypool's own client, as its functions do; the floor and
  // the baseline through the SDK's document client, as a service built on the SDK would.
  const sdk = DynamoDBDocumentClient.from(dynamoClient({ endpoint, region: undefined }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const clients = { keypool: documentClient({ endpoint, region: undefined }), sdk: sdkCalls(sdk) };
  const client = clients.keypool;
  // The proxied contenders' provider (a process of its own) and the folder their kept answers go to.
  const stub = await startProviderStub();
  const answersDir = mkdtempSync(join(tmpdir(), 'keypool-bench-answers-'));
  process.once('exit', () => rmSync(answersDir, { recursive: true, force: true }));
  const runTag = randomBytes(3).toString('hex');
  const tables = Object.fromEntries(CONTENDERS.map((name) => [name, `bench-${runTag}-${name}`])) as Record<
    ContenderName,
    string
  >;
  for (const name of CONTENDERS) await ensureTable(endpoint, tables[name]);
  const shardsOf = (name: ContenderName): number => contenderShards(name, config.shards);
  const heats = Object.fromEntries(CONTENDERS.map((name) => [name, new PartitionHeat()])) as Record<
    ContenderName,
    PartitionHeat
  >;
  const heatByTable = new Map(CONTENDERS.map((name) => [tables[name], heats[name]]));
  const heatOf = (tableName: string): PartitionHeat | undefined => heatByTable.get(tableName);
  const watched = { keypool: watchWrites(clients.keypool, heatOf), sdk: watchWrites(clients.sdk, heatOf) };
  const clientOf = (name: ContenderName): DynamoCalls =>
    name.startsWith('keypool') || config.floorClient === 'keypool' ? watched.keypool : watched.sdk;

  const newTally = (heat: PartitionHeat): Tally => ({
    uses: 0,
    elapsedMs: 0,
    latencies: [],
    meter: new CostMeter(),
    violations: 0,
    refusals: 0,
    heat,
    spreads: [],
    stdDevs: [],
    nodeCpuMs: 0,
    dynamoCpuMs: 0,
    dynamoJitMs: 0,
  });
  const tallies = Object.fromEntries(CONTENDERS.map((name) => [name, newTally(heats[name])])) as Record<
    ContenderName,
    Tally
  >;

  /**
   * One round of a contender: a fresh pool of `config.keys` keys, `uses` uses by the callers,
   * then the audit of the pool, all of it added to `tally`. The warm-up plays the very same
   * rounds, the harness's own requests around the stretch included, into a tally it drops (with
   * a heat no write is routed to).
   */
  const playRound = async (
    name: ContenderName,
    pool: string,
    uses: number,
    tally: Tally,
  ): Promise<{ granted: number; violations: number }> => {
    const tableName = tables[name];
    const shards = shardsOf(name);
    const proxied = isProxied(name);
    /** each key's secret, by key id: the floor calls with it, the stub counts calls by it */
    const secrets = new Map<string, string>();
    const ids = await seedKeys({
      client,
      tableName,
      pool,
      count: config.keys,
      sealer: benchSealer(name),
      policy: { maxUses: config.maxUses, shards, ...(proxied ? { provider: 'stability' as const } : {}) },
      keysPerAccount: config.keysPerAccount,
      ...(proxied ? { onSecret: (secret: string) => secrets.set(keyIdFor(secret), secret) } : {}),
    });
    for (const keyId of ids) tally.heat.place(keyId, usagePartition(pool, shardOf(keyId, shards)));
    const use = contender(
      name,
      {
        client: clientOf(name),
        tableName,
        pool,
        maxUses: config.maxUses,
        meter: tally.meter,
        pageSize: config.pageSize,
        shards,
        ...(proxied ? { proxy: { providerUrl: stub.url, secrets, answersDir } } : {}),
      },
      config.callers,
    );
    const log = new GrantLog();
    let next = 0;
    const spent = cpuSince(dynamo?.process.pid);
    const t0 = performance.now();
    tally.heat.start(t0);
    await Promise.all(
      Array.from({ length: config.callers }, async (_, caller) => {
        while (next < uses) {
          next++;
          const t = performance.now();
          const keyId = await use(caller);
          tally.latencies.push(performance.now() - t);
          if (keyId) log.grant(keyId);
          else tally.refusals++;
        }
      }),
    );
    const t1 = performance.now();
    const cpu = spent();
    tally.heat.stop(t1);
    const counts = await storedCounts(client, tableName, pool);
    const result = audit(counts, log, config.maxUses);
    // The provider's side: a call with a key past its cap, or calls a key's count does not show
    // (a use counted twice, or a call not counted).
    if (proxied) result.violations += providerViolations(await stub.takeCalls(), secrets, counts, config.maxUses);
    tally.nodeCpuMs += cpu.selfMs;
    tally.dynamoCpuMs =
      tally.dynamoCpuMs === undefined || cpu.dynamoMs === undefined ? undefined : tally.dynamoCpuMs + cpu.dynamoMs;
    tally.dynamoJitMs =
      tally.dynamoJitMs === undefined || cpu.dynamoJitMs === undefined
        ? undefined
        : tally.dynamoJitMs + cpu.dynamoJitMs;
    tally.elapsedMs += t1 - t0;
    tally.uses += log.totalGranted;
    tally.violations += result.violations;
    const fairness = countSpread(counts.values());
    tally.spreads.push(fairness.spread);
    tally.stdDevs.push(fairness.stdDev);
    return { granted: log.totalGranted, violations: result.violations };
  };

  // Warm-up: nothing here is measured. DynamoDB Local's JVM compiles its hot paths for a long
  // while: after one pass of 1,000 uses per contender its JIT compiler threads still took
  // 20-40% of its CPU in the next round, charged to whichever contender ran then, and most to
  // the one whose requests walk the most code (with a shorter warm-up keypool, measured first
  // in round 1, lost a third of its throughput to that alone). So passes of whole rounds (same
  // pool size, cap and callers; a fresh pool each; the seeding and the audit's scan too: a
  // warm-up without the audit left its first scan, after round 1's first stretch, to throw
  // out the Query path's compiled code, and ~45 recompilations fell into the next contender's
  // stretch) run until the compiler threads took under WARM_JIT_SHARE of the JVM's CPU in a
  // pass: the rounds then measure DynamoDB Local serving, as a deployed table does, not
  // compiling. An endpoint of your own: one pass.
  progress('warming up');
  const warm = Date.now();
  const warmup = { passes: 0, jitShare: null as number | null };
  for (let pass = 0; pass < warmPassesMax(config.quick); pass++) {
    const spent = cpuSince(dynamo?.process.pid);
    for (const name of config.contenders)
      await playRound(name, `warm${pass}`, warmUses(config.quick), newTally(new PartitionHeat()));
    const cpu = spent();
    warmup.passes = pass + 1;
    warmup.jitShare = cpu.dynamoMs && cpu.dynamoJitMs !== undefined ? round3(cpu.dynamoJitMs / cpu.dynamoMs) : null;
    progress(
      `warm pass ${warmup.passes}: JIT compiler ${warmup.jitShare === null ? '(not measurable)' : `${(warmup.jitShare * 100).toFixed(1)}%`} of DynamoDB Local's CPU`,
    );
    if (warmup.jitShare === null || warmup.jitShare < WARM_JIT_SHARE) break;
  }
  progress(`warm in ${((Date.now() - warm) / 1000).toFixed(1)} s`);

  // At least one round per contender of a group, so each runs first once and drift falls on all.
  const fill = Math.max(1, Math.floor(config.keys * (config.maxUses + 1) * config.roundFill));
  // The lease contenders and the proxied ones rotate each among their own (compared within
  // their group), so the rounds a rotation needs stay as many as the larger group.
  const groups = [LEASE_CONTENDERS, PROXIED_CONTENDERS]
    .map((group) => config.contenders.filter((name) => (group as readonly string[]).includes(name)))
    .filter((group) => group.length > 0);
  const rounds = Math.max(...groups.map((group) => group.length), Math.ceil(config.usesPerContender / fill));
  const roundUses = Math.ceil(config.usesPerContender / rounds);
  for (let round = 0; round < rounds; round++) {
    const uses = Math.min(roundUses, config.usesPerContender - round * roundUses);
    // Rotate the order so no contender always runs first (or last) in a round.
    const order = groups.flatMap((group) => group.map((_, i) => group[(i + round) % group.length] as ContenderName));
    for (const name of order) {
      const result = await playRound(name, `p${round}`, uses, tallies[name]);
      progress(`round ${round + 1}/${rounds} ${name}: ${result.granted} uses, ${result.violations} violations`);
    }
  }

  const runs: RunResult[] = config.contenders.map((name) => {
    const t = tallies[name];
    const sorted = [...t.latencies].sort((a, b) => a - b);
    const per = (x: number): number => (t.uses ? x / t.uses : 0);
    const usesPerSec = t.uses / (t.elapsedMs / 1000);
    const heat = t.heat.figures();
    // The tighter of the two partition limits: the hottest index partition, the hottest item.
    const ceiling = Math.min(
      projectedUsesPerSecCeiling({ usesPerSec, hottestIndexWcuPerSec: heat.hottestIndexWcuPerSec }),
      heat.hottestItemWcuPerSec > 0
        ? (usesPerSec * PARTITION_LIMITS.writeUnitsPerSecond) / heat.hottestItemWcuPerSec
        : Infinity,
    );
    return {
      name,
      shards: shardsOf(name),
      uses: t.uses,
      usesPerSec: round2(usesPerSec),
      p50Ms: round2(percentile(sorted, 50)),
      p99Ms: round2(percentile(sorted, 99)),
      requestsPerUse: round3(per(t.meter.requests)),
      rcuPerUse: round3(per(t.meter.rcu)),
      wcuPerUse: round3(per(t.meter.wcu)),
      refusedWritesPerUse: round3(per(t.meter.refusedWrites)),
      violations: t.violations,
      hottestIndexWcuPerSec: round2(heat.hottestIndexWcuPerSec),
      indexWcuPerUse: round3(per(heat.indexWcu)),
      hottestItemWcuPerSec: round2(heat.hottestItemWcuPerSec),
      projectedUsesPerSecCeiling: Number.isFinite(ceiling) ? Math.round(ceiling) : 0,
      countSpread: Math.max(0, ...t.spreads),
      countStdDev: round3(t.stdDevs.reduce((a, b) => a + b, 0) / Math.max(1, t.stdDevs.length)),
      nodeCpuMsPerUse: round3(per(t.nodeCpuMs)),
      dynamoCpuMsPerUse: t.dynamoCpuMs === undefined ? null : round3(per(t.dynamoCpuMs)),
      dynamoJitCpuMsPerUse: t.dynamoJitMs === undefined ? null : round3(per(t.dynamoJitMs)),
    };
  });

  // Scaling: cost per lease by pool size, one caller at a time so only the size varies.
  const scaling: ScalingResult[] = [];
  for (const size of config.scalingSizes) {
    const tableName = `bench-${runTag}-size-${size}`;
    await ensureTable(endpoint, tableName);
    const seedStart = Date.now();
    // A pool of `size` keys for each contender: sharing one, the two used up a 100-key pool
    // (400 uses at maxUses 3) and cheap 409s diluted the cost per lease.
    for (const name of ['keypool', 'baseline'] as const) {
      await seedKeys({
        client,
        tableName,
        pool: `scale-${name}`,
        count: size,
        concurrency: 16,
        sealer: benchSealer(name),
        policy: { maxUses: config.maxUses },
        keysPerAccount: config.keysPerAccount,
      });
    }
    progress(`seeded 2 x ${size} keys in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);
    const meters = { keypool: new CostMeter(), baseline: new CostMeter() };
    const latencies: Record<'keypool' | 'baseline', number[]> = { keypool: [], baseline: [] };
    const uses = {
      keypool: contender(
        'keypool',
        {
          client: clients.keypool,
          tableName,
          pool: 'scale-keypool',
          maxUses: config.maxUses,
          meter: meters.keypool,
          pageSize: config.pageSize,
        },
        1,
      ),
      baseline: contender(
        'baseline',
        {
          client: config.floorClient === 'keypool' ? clients.keypool : clients.sdk,
          tableName,
          pool: 'scale-baseline',
          maxUses: config.maxUses,
          meter: meters.baseline,
          pageSize: config.pageSize,
        },
        1,
      ),
    };
    // Alternate the two so they see the same machine at the same moment.
    for (let i = 0; i < config.scalingLeases; i++) {
      for (const name of ['keypool', 'baseline'] as const) {
        const t = performance.now();
        await uses[name](0);
        latencies[name].push(performance.now() - t);
      }
    }
    for (const name of ['keypool', 'baseline'] as const) {
      const m = meters[name];
      scaling.push({
        name,
        keys: size,
        requestsPerLease: round3(m.requests / config.scalingLeases),
        capacityPerLease: round3((m.rcu + m.wcu) / config.scalingLeases),
        p50Ms: round2(
          percentile(
            [...latencies[name]].sort((a, b) => a - b),
            50,
          ),
        ),
      });
    }
  }

  clients.keypool.destroy();
  sdk.destroy();
  stub.stop();
  await dynamo?.stop();

  // The scale DynamoDB Local cannot show: the partition model driven by the sharded keypool's
  // measured request mix (queries, refused writes, index writes per use).
  const sharded = runs.find((r) => r.name === 'keypool-sharded');
  const partitionModel = sharded
    ? scalingReport(10_000, [1, 8, 32, 64], {
        mix: mixFromMeasured({
          rcuPerUse: sharded.rcuPerUse,
          wcuPerUse: sharded.wcuPerUse,
          refusedWritesPerUse: sharded.refusedWritesPerUse,
          indexWcuPerUse: sharded.indexWcuPerUse,
        }),
      })
    : undefined;
  // The proxied mix: the sharded proxied keypool's measured requests (all successes), plus a
  // refund write for the share of uses given back.
  const proxiedSharded = runs.find((r) => r.name === 'keypool-proxied-sharded');
  const proxiedPartitionModel = proxiedSharded
    ? scalingReport(10_000, [1, 8, 32, 64], {
        mix: proxiedMixFromMeasured(
          {
            rcuPerUse: proxiedSharded.rcuPerUse,
            wcuPerUse: proxiedSharded.wcuPerUse,
            refusedWritesPerUse: proxiedSharded.refusedWritesPerUse,
            indexWcuPerUse: proxiedSharded.indexWcuPerUse,
          },
          config.givenBack,
        ),
      })
    : undefined;
  const elapsedSec = round2((Date.now() - started) / 1000);
  const output = {
    config: { ...config, elapsedSec, warmup },
    runs,
    scaling,
    ...(partitionModel ? { partitionModel } : {}),
    ...(proxiedPartitionModel ? { proxiedPartitionModel } : {}),
  };
  if (json) process.stdout.write(`${JSON.stringify(output)}\n`);
  else process.stdout.write(renderTables(output));
}

/** Markdown tables, as pasted into docs/performance.md and docs/scaling.md. */
export function renderTables(output: {
  config: BenchConfig & { elapsedSec: number; warmup: { passes: number; jitShare: number | null } };
  runs: RunResult[];
  scaling: ScalingResult[];
  partitionModel?: ScalingReport;
  proxiedPartitionModel?: ScalingReport;
}): string {
  const { config, runs, scaling } = output;
  const floor = runs.find((r) => r.name === 'floor');
  /** The run a contender is measured against: the floor making the same kind of use at the same shard count. */
  const floorOf = (r: RunResult): RunResult | undefined =>
    isProxied(r.name) ? runs.find((f) => f.name === (r.shards > 1 ? 'floor-proxied-sharded' : 'floor-proxied')) : floor;
  const ratio = (x: number, base: number | undefined): string =>
    base === undefined || base === 0 ? '-' : `${(x / base).toFixed(2)}x`;
  const cpuPerUse = (r: RunResult): number | undefined =>
    r.dynamoCpuMsPerUse === null ? undefined : round3(r.nodeCpuMsPerUse + r.dynamoCpuMsPerUse);
  const proxied = runs.filter((r) => isProxied(r.name));
  const flat = runs.find((r) => r.name === 'keypool');
  const sharded = runs.find((r) => r.name === 'keypool-sharded');
  const lines = [
    `${config.keys} keys, maxUses ${config.maxUses}, ${config.callers} callers, ${config.usesPerContender} uses per contender, page ${config.pageSize}, keypool-sharded at ${config.shards} shards, the floor and the baseline through ${config.floorClient === 'sdk' ? "the SDK's document client" : "keypool's DynamoDB client"}; ${config.elapsedSec} s`,
    '',
    '| contender | shards | uses | uses/s | vs floor | p50 ms | p99 ms | requests/use | RCU/use | WCU/use | refused writes/use | violations |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map(
      (r) =>
        `| ${r.name} | ${r.shards} | ${r.uses} | ${r.usesPerSec} | ${ratio(r.usesPerSec, floorOf(r)?.usesPerSec)} | ${r.p50Ms} | ${r.p99Ms} | ${r.requestsPerUse} | ${r.rcuPerUse} | ${r.wcuPerUse} | ${r.refusedWritesPerUse} | ${r.violations} |`,
    ),
    '',
    ...(flat && sharded
      ? [
          `refused writes per use: ${flat.refusedWritesPerUse} at 1 shard, ${sharded.refusedWritesPerUse} at ${sharded.shards} shards`,
          '',
        ]
      : []),
    ...(proxied.length > 0
      ? [
          `Proxied uses against the floor making the same provider call at the same shard count (floor-proxied: one index query, one conditional write with the cap, then the call; -idem: under a fresh Idempotency-Key each, recorded in the table and its answer kept in the file store). Each ratio is keypool's figure over the floor's; violations count uses past the cap, uses counted twice or lost, and provider calls with a key past its cap or not counted on it:`,
          '',
          '| contender | shards | uses/s | vs floor | requests/use | vs floor | capacity (RCU+WCU)/use | vs floor | CPU ms/use (Node.js + DynamoDB Local) | vs floor | violations |',
          '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
          ...proxied.map((r) => {
            const f = floorOf(r);
            const capacity = round3(r.rcuPerUse + r.wcuPerUse);
            const cpu = cpuPerUse(r);
            return `| ${r.name} | ${r.shards} | ${r.usesPerSec} | ${ratio(r.usesPerSec, f?.usesPerSec)} | ${r.requestsPerUse} | ${ratio(r.requestsPerUse, f?.requestsPerUse)} | ${capacity} | ${ratio(capacity, f && f.rcuPerUse + f.wcuPerUse)} | ${cpu ?? '-'} | ${cpu === undefined ? '-' : ratio(cpu, f && cpuPerUse(f))} | ${r.violations} |`;
          }),
          '',
          `A proxied use holds its slot until its call's bound (proxyTimeoutSeconds + ${PROXY_SLOT_MARGIN_SECONDS} s) unless given back, so a key serves at most ${LEASE_SLOTS} proxied uses in such a window: ${config.maxUses + 1 <= LEASE_SLOTS ? `at maxUses ${config.maxUses} (${config.maxUses + 1} uses per key) the hold does not bind here` : `at maxUses ${config.maxUses} (${config.maxUses + 1} uses per key) it binds: a key's uses past the ${LEASE_SLOTS}th wait for a slot`}.`,
          '',
        ]
      : []),
    `Partition heat (what each run wrote to its hottest usage-index partition and its hottest item; DynamoDB allows ${PARTITION_LIMITS.writeUnitsPerSecond} WCU/s per partition):`,
    '',
    '| contender | shards | uses/s | index WCU/use | hottest index partition WCU/s | hottest item WCU/s | projected ceiling per pool (uses/s) | count spread (max-min) | count std dev |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map(
      (r) =>
        `| ${r.name} | ${r.shards} | ${r.usesPerSec} | ${r.indexWcuPerUse} | ${r.hottestIndexWcuPerSec} | ${r.hottestItemWcuPerSec} | ${r.projectedUsesPerSecCeiling} | ${r.countSpread} | ${r.countStdDev} |`,
    ),
    '',
    `CPU per use (the callers' Node.js process and DynamoDB Local share this machine; their sum is what a use costs it). Warm-up: ${config.warmup.passes} pass(es), the last with DynamoDB Local's JIT compiler at ${config.warmup.jitShare === null ? '(not measurable)' : `${(config.warmup.jitShare * 100).toFixed(1)}%`} of its CPU:`,
    '',
    '| contender | shards | uses/s | Node.js CPU ms/use | DynamoDB Local CPU ms/use | of which JIT compiler | sum |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...runs.map(
      (r) =>
        `| ${r.name} | ${r.shards} | ${r.usesPerSec} | ${r.nodeCpuMsPerUse} | ${r.dynamoCpuMsPerUse ?? '-'} | ${r.dynamoJitCpuMsPerUse ?? '-'} | ${r.dynamoCpuMsPerUse === null ? '-' : round3(r.nodeCpuMsPerUse + r.dynamoCpuMsPerUse)} |`,
    ),
    '',
    '| pool size | keypool requests/lease | keypool capacity/lease | keypool p50 ms | baseline requests/lease | baseline capacity/lease | baseline p50 ms |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...config.scalingSizes.map((size) => {
      const k = scaling.find((s) => s.name === 'keypool' && s.keys === size);
      const b = scaling.find((s) => s.name === 'baseline' && s.keys === size);
      return `| ${size} | ${k?.requestsPerLease ?? '-'} | ${k?.capacityPerLease ?? '-'} | ${k?.p50Ms ?? '-'} | ${b?.requestsPerLease ?? '-'} | ${b?.capacityPerLease ?? '-'} | ${b?.p50Ms ?? '-'} |`;
    }),
    '',
    ...(output.partitionModel
      ? [
          "Partition model (bench/partition-model.ts), driven by keypool-sharded's measured request mix:",
          '',
          renderReport(output.partitionModel),
        ]
      : []),
    ...(output.proxiedPartitionModel
      ? [
          `Partition model for proxied uses, driven by keypool-proxied-sharded's measured request mix with ${(config.givenBack * 100).toFixed(1)} % of uses given back (\`--given-back\`), each paying one refund write:`,
          '',
          renderReport(output.proxiedPartitionModel),
        ]
      : []),
  ];
  return lines.join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
