/** pool set | list | show | reshard: the operator's commands over pools and their policy (PUT, GET /pools). */
import { POLICY_CACHE_MS } from '../../use-cases/pool-directory.js';
import {
  CooldownSeconds,
  LeaseTtlSeconds,
  MaxClientCooldownSeconds,
  MaxClientReportsPerMinute,
  MaxUses,
  MinCredits,
  PoolName,
  ProviderSchema,
  RateLimitScopeSchema,
  ProxyAttempts,
  ProxyTimeoutSeconds,
  Shards,
} from '../../domain/primitives.js';
import { reshard as reshardPool, RESHARD_SETTLE_MS, type ReshardReport } from '../../use-cases/reshard.js';
import { MAX_SHARDS } from '../../domain/shards.js';
import { LEGACY_POOL_NAMES } from '../../domain/pool-name.js';
import { POOL_DEFAULTS, type PoolPolicy, type PoolSettings, PROVIDERS, RATE_LIMIT_SCOPES } from '../../domain/types.js';
import { checked, type Command, type CommandGroup, Concurrency, json, numberFlag, table } from '../framework.js';

const POOL_COLUMNS = [
  'pool',
  'maxUses',
  'leaseTtlSeconds',
  'cooldownSeconds',
  'provider',
  'minCredits',
  'shards',
  'maxClientCooldownSeconds',
  'maxClientReportsPerMinute',
  'rateLimitScope',
  'proxyAttempts',
  'proxyTimeoutSeconds',
  'updatedAt',
];

/** A pool's row; `shards` reads "1 -> 8" while keys are still being moved to a new layout. */
function poolRows(pools: PoolPolicy[]): Record<string, string | number>[] {
  return pools.map(({ previousShards, shardsChangedAt: _changedAt, ...p }) => ({
    ...p,
    shards: previousShards === undefined ? p.shards : `${previousShards} -> ${p.shards} (resharding)`,
  }));
}

const set: Command = {
  name: 'set',
  summary: 'create a pool or change its policy (PUT /pools/{pool}): only the flags given change',
  usage:
    '<pool> [--max-uses N] [--lease-ttl S] [--cooldown S] [--provider stability|none] [--min-credits N] [--shards N] [--max-client-cooldown S] [--max-client-reports N] [--proxy-attempts N] [--proxy-timeout S] [--rate-limit-scope key|account] [--json]',
  help: [
    `--max-uses N      the cap: a key is leased while its count is <= N (0..1000; new pool: ${POOL_DEFAULTS.maxUses})`,
    `--lease-ttl S     the longest lease, and the default one, in seconds (1..3600; new pool: ${POOL_DEFAULTS.leaseTtlSeconds})`,
    `--cooldown S      how long a rate_limited key rests without a Retry-After, in seconds (1..86400; new pool: ${POOL_DEFAULTS.cooldownSeconds})`,
    `--provider P      ${PROVIDERS.join(' | ')}: whose balance maintenance reads; none = never sent to a provider (new pool: ${POOL_DEFAULTS.provider})`,
    `--min-credits N   below N credits maintenance exhausts a key; at or above, revives it (new pool: ${POOL_DEFAULTS.minCredits})`,
    `--shards N        index partitions the pool's usage order is spread over (1..${MAX_SHARDS}; new pool: ${POOL_DEFAULTS.shards}): about 500 leases/s each`,
    '                  on DynamoDB; 1 is one strict LRU order. A change moves keys in the background (keypool pool reshard, or maintenance)',
    `--max-client-cooldown S   the longest a client's report rests a key, in seconds (1..3600; new pool: ${POOL_DEFAULTS.maxClientCooldownSeconds}):`,
    '                  a rate_limited Retry-After is capped at S; invalid_key and out_of_credits rest the key S unless maintenance',
    '                  confirms or clears them first',
    `--max-client-reports N    negative reports and lease-less counts one caller may make per minute (1..10000; new pool: ${POOL_DEFAULTS.maxClientReportsPerMinute});`,
    '                  past N they change nothing (a report still counts or gives back its use) and a count answers 429',
    `--rate-limit-scope S      ${RATE_LIMIT_SCOPES.join(' | ')}: what a 429 cools, the key alone or every key of its account (new pool: ${POOL_DEFAULTS.rateLimitScope})`,
    `--proxy-attempts N        proxy mode: keys one proxied request may try, the first included (1..5; new pool: ${POOL_DEFAULTS.proxyAttempts});`,
    '                  another key only after an answer that says nothing was generated, never after a timeout',
    `--proxy-timeout S         proxy mode: how long one provider call may take, in seconds (1..600; new pool: ${POOL_DEFAULTS.proxyTimeoutSeconds});`,
    '                  past it the call is unknown: its use stays counted',
    '--json            print the HTTP API body (the PoolView)',
    `Leases in a running Lambda follow a change within its policy cache (${POLICY_CACHE_MS / 1000} s).`,
  ],
  options: {
    'max-uses': { type: 'string' },
    'lease-ttl': { type: 'string' },
    cooldown: { type: 'string' },
    provider: { type: 'string' },
    'min-credits': { type: 'string' },
    shards: { type: 'string' },
    'max-client-cooldown': { type: 'string' },
    'max-client-reports': { type: 'string' },
    'rate-limit-scope': { type: 'string' },
    'proxy-attempts': { type: 'string' },
    'proxy-timeout': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = checked(PoolName, args.positionals[0], 'pool');
    const shards = numberFlag(Shards, args.values.shards, '--shards');
    const maxClientCooldownSeconds = numberFlag(
      MaxClientCooldownSeconds,
      args.values['max-client-cooldown'],
      '--max-client-cooldown',
    );
    const maxClientReportsPerMinute = numberFlag(
      MaxClientReportsPerMinute,
      args.values['max-client-reports'],
      '--max-client-reports',
    );
    const proxyAttempts = numberFlag(ProxyAttempts, args.values['proxy-attempts'], '--proxy-attempts');
    const proxyTimeoutSeconds = numberFlag(ProxyTimeoutSeconds, args.values['proxy-timeout'], '--proxy-timeout');
    const maxUses = numberFlag(MaxUses, args.values['max-uses'], '--max-uses');
    const leaseTtlSeconds = numberFlag(LeaseTtlSeconds, args.values['lease-ttl'], '--lease-ttl');
    const cooldownSeconds = numberFlag(CooldownSeconds, args.values.cooldown, '--cooldown');
    const provider =
      args.values.provider === undefined ? undefined : checked(ProviderSchema, args.values.provider, '--provider');
    const minCredits = numberFlag(MinCredits, args.values['min-credits'], '--min-credits');
    const scope = args.values['rate-limit-scope'];
    const rateLimitScope = scope === undefined ? undefined : checked(RateLimitScopeSchema, scope, '--rate-limit-scope');
    const settings: Partial<PoolSettings> = {
      ...(maxUses === undefined ? {} : { maxUses }),
      ...(leaseTtlSeconds === undefined ? {} : { leaseTtlSeconds }),
      ...(cooldownSeconds === undefined ? {} : { cooldownSeconds }),
      ...(provider === undefined ? {} : { provider }),
      ...(minCredits === undefined ? {} : { minCredits }),
      ...(shards === undefined ? {} : { shards }),
      ...(maxClientCooldownSeconds === undefined ? {} : { maxClientCooldownSeconds }),
      ...(maxClientReportsPerMinute === undefined ? {} : { maxClientReportsPerMinute }),
      ...(rateLimitScope === undefined ? {} : { rateLimitScope }),
      ...(proxyAttempts === undefined ? {} : { proxyAttempts }),
      ...(proxyTimeoutSeconds === undefined ? {} : { proxyTimeoutSeconds }),
    };
    const view = await services.broker().setPool(pool, settings);
    io.out(args.values.json ? json(view) : table(poolRows([view]), POOL_COLUMNS));
    return 0;
  },
};

const list: Command = {
  name: 'list',
  summary: 'every pool and its policy (GET /pools)',
  usage: '[--json]',
  help: ['--json       print the HTTP API body: {"pools":[PoolView]}'],
  options: { json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pools = await services.broker().listPools();
    if (args.values.json) io.out(json({ pools }));
    else io.out(pools.length ? `${table(poolRows(pools), POOL_COLUMNS)}\n${pools.length} pool(s)` : 'no pools');
    return 0;
  },
};

const show: Command = {
  name: 'show',
  summary: "one pool's policy (GET /pools/{pool}); exit 1 when there is no such pool",
  usage: '<pool> [--json]',
  help: ['--json       print the HTTP API body (the PoolView)'],
  options: { json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = checked(PoolName, args.positionals[0], 'pool');
    const view = await services.broker().getPool(pool);
    io.out(args.values.json ? json(view) : table(poolRows([view]), POOL_COLUMNS));
    return 0;
  },
};

function reshardText(report: ReshardReport): string {
  if (report.notBefore !== null) {
    return `pool ${report.pool}: shards changed ${report.previousShards ?? '?'} -> ${report.shards} less than ${RESHARD_SETTLE_MS / 1000} s ago; keys move from ${report.notBefore} (run again then, or pass --wait)`;
  }
  const layout =
    report.previousShards === null
      ? `${report.shards} shard(s), no change pending`
      : `${report.previousShards} -> ${report.shards} shards`;
  const lines = [`pool ${report.pool}: ${layout}; looked at ${report.keys} key(s), moved ${report.moved}`];
  if (report.changedMeanwhile > 0)
    lines.push(`  ${report.changedMeanwhile} key(s) changed while this run worked on them: run it again`);
  if (report.previousShards !== null)
    lines.push(
      report.finished
        ? '  done: leases read only the new layout from now on'
        : '  not finished: run it again (maintenance also goes on with it)',
    );
  return lines.join('\n');
}

const reshard: Command = {
  name: 'reshard',
  summary: "move a pool's keys to their shards after `pool set --shards` (maintenance does it too, each pass)",
  usage: '<pool> [--wait] [--concurrency N] [--json]',
  help: [
    `--wait            if shards changed less than ${RESHARD_SETTLE_MS / 1000} s ago, wait until keys may move instead of stopping`,
    '--concurrency N   keys moved at once (default 8, at most 64)',
    '--json            print {"pool","shards","previousShards","keys","moved","changedMeanwhile","finished","notBefore"}',
    'Each key is one conditional write; leases go on meanwhile and find every key (they read both layouts until',
    'the run that finds every key home ends the change). Safe to interrupt and to run again.',
  ],
  options: { wait: { type: 'boolean' }, concurrency: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = checked(PoolName, args.positionals[0], 'pool');
    const concurrency = numberFlag(Concurrency, args.values.concurrency, '--concurrency');
    const options = { ...services.sharding(), pool, ...(concurrency === undefined ? {} : { concurrency }) };
    let report = await reshardPool(options);
    if (report.notBefore !== null && args.values.wait === true) {
      const waitMs = Math.max(0, Date.parse(report.notBefore) - Date.now());
      io.err(`waiting ${Math.ceil(waitMs / 1000)} s until every broker reads the new shard count`);
      await new Promise((done) => setTimeout(done, waitMs + 100));
      report = await reshardPool(options);
    }
    io.out(args.values.json ? json(report) : reshardText(report));
    return 0;
  },
};

const remove: Command = {
  name: 'delete',
  summary: 'delete a pool (DELETE /pools/{pool}); refused while it holds keys not retired, unless --retire-keys',
  usage: '<pool> [--retire-keys] [--json]',
  help: [
    '--retire-keys   retire every key of the pool first (never leased again, secrets destroyed, records kept);',
    '                the command runs until every key is retired, however large the pool (the API answers',
    '                202 after about 20 s and is sent again)',
    '--json          print the HTTP API body: {"pool","deleted","retiredKeys"}',
    'Without --retire-keys a pool with keys that are not retired is refused (exit 1, pool_not_empty).',
    'Leases of the pool are refused from then on; `keypool pool set` creates it again, its retired keys still listed.',
    '<pool> may also be "." or "..": names an older version created, which no URL reaches and no other command',
    'accepts; this command deletes such a pool (with --retire-keys, its keys too) and nothing creates one again.',
  ],
  options: { 'retire-keys': { type: 'boolean' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    // A legacy name is taken as it is, here only: this command reaches the table without a URL.
    const word = args.positionals[0];
    const pool = word !== undefined && LEGACY_POOL_NAMES.includes(word) ? word : checked(PoolName, word, 'pool');
    const result = await services.broker().deletePool(pool, { retireKeys: args.values['retire-keys'] === true });
    io.out(args.values.json ? json(result) : `pool ${result.pool} deleted; ${result.retiredKeys} key(s) retired`);
    return 0;
  },
};

export const poolCommand: CommandGroup = {
  name: 'pool',
  summary: 'pools and their policy: pool set, pool list, pool show, pool reshard, pool delete',
  subcommands: [set, list, show, reshard, remove],
};
