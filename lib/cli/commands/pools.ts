/** pool set | list | show: the operator's commands over pools and their policy (PUT, GET /pools). */
import { POLICY_CACHE_MS } from '../../domain/pool-directory.js';
import { CooldownSeconds, LeaseTtlSeconds, MaxUses, MinCredits, PoolName, ProviderSchema } from '../../domain/primitives.js';
import { POOL_DEFAULTS, type PoolPolicy, type PoolSettings, PROVIDERS } from '../../domain/types.js';
import { checked, type Command, type CommandGroup, json, numberFlag, table } from '../framework.js';

const POOL_COLUMNS = ['pool', 'maxUses', 'leaseTtlSeconds', 'cooldownSeconds', 'provider', 'minCredits', 'updatedAt'];

function poolRows(pools: PoolPolicy[]): Record<string, string | number>[] {
  return pools.map((p) => ({ ...p }));
}

const set: Command = {
  name: 'set',
  summary: "create a pool or change its policy (PUT /pools/{pool}): only the flags given change",
  usage: '<pool> [--max-uses N] [--lease-ttl S] [--cooldown S] [--provider stability|none] [--min-credits N] [--json]',
  help: [
    `--max-uses N      the cap: a key is leased while its count is <= N (0..1000; new pool: ${POOL_DEFAULTS.maxUses})`,
    `--lease-ttl S     the longest lease, and the default one, in seconds (1..3600; new pool: ${POOL_DEFAULTS.leaseTtlSeconds})`,
    `--cooldown S      how long a rate_limited key rests without a Retry-After, in seconds (1..86400; new pool: ${POOL_DEFAULTS.cooldownSeconds})`,
    `--provider P      ${PROVIDERS.join(' | ')}: whose balance maintenance reads; none = never sent to a provider (new pool: ${POOL_DEFAULTS.provider})`,
    `--min-credits N   below N credits maintenance exhausts a key; at or above, revives it (new pool: ${POOL_DEFAULTS.minCredits})`,
    '--json            print the HTTP API body (the PoolView)',
    `Leases in a running Lambda follow a change within its policy cache (${POLICY_CACHE_MS / 1000} s).`,
  ],
  options: {
    'max-uses': { type: 'string' },
    'lease-ttl': { type: 'string' },
    cooldown: { type: 'string' },
    provider: { type: 'string' },
    'min-credits': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = checked(PoolName, args.positionals[0], 'pool');
    const maxUses = numberFlag(MaxUses, args.values['max-uses'], '--max-uses');
    const leaseTtlSeconds = numberFlag(LeaseTtlSeconds, args.values['lease-ttl'], '--lease-ttl');
    const cooldownSeconds = numberFlag(CooldownSeconds, args.values.cooldown, '--cooldown');
    const provider = args.values.provider === undefined ? undefined : checked(ProviderSchema, args.values.provider, '--provider');
    const minCredits = numberFlag(MinCredits, args.values['min-credits'], '--min-credits');
    const settings: Partial<PoolSettings> = {
      ...(maxUses === undefined ? {} : { maxUses }),
      ...(leaseTtlSeconds === undefined ? {} : { leaseTtlSeconds }),
      ...(cooldownSeconds === undefined ? {} : { cooldownSeconds }),
      ...(provider === undefined ? {} : { provider }),
      ...(minCredits === undefined ? {} : { minCredits }),
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

export const poolCommand: CommandGroup = {
  name: 'pool',
  summary: 'pools and their policy: pool set, pool list, pool show',
  subcommands: [set, list, show],
};
