/** lease, complete, increment: the caller's commands (the old --find --max-uses=3 and increment_usage). */
import { LeaseTtlSeconds, MaxUses, OutcomeSchema, RetryAfterSeconds } from '../../domain/primitives.js';
import { OUTCOMES } from '../../domain/types.js';
import { checked, type Command, json, numberFlag, table, UsageError } from '../framework.js';
import { poolFlag, poolHelp } from './pool-flag.js';

export const lease: Command = {
  name: 'lease',
  secrets: true,
  summary: 'lease the least used, then least recently used, usable key of a pool (prints the secret)',
  usage: '[--pool P] [--max-uses N] [--ttl S] [--json]',
  help: [
    poolHelp(15),
    "--max-uses N   a key is usable while its count is <= N: at most the pool's cap, which is the default",
    "--ttl S        seconds until the lease expires: at most the pool's leaseTtlSeconds, which is the default",
    '--json         print the HTTP API body: {"leaseId","keyId","apiKey","pool","usageCount","expiresAt"}',
    "Above the pool's cap or lease TTL: exit 2 naming it (`keypool pool show P` shows the policy).",
  ],
  options: {
    pool: { type: 'string' },
    'max-uses': { type: 'string' },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const maxUses = numberFlag(MaxUses, args.values['max-uses'], '--max-uses');
    const ttlSeconds = numberFlag(LeaseTtlSeconds, args.values.ttl, '--ttl');
    const grant = await services.broker().lease(pool, {
      ...(maxUses === undefined ? {} : { maxUses }),
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
    });
    if (args.values.json) io.out(json(grant));
    else io.out(table([{ ...grant }], ['leaseId', 'keyId', 'apiKey', 'pool', 'usageCount', 'expiresAt']));
    return 0;
  },
};

export const complete: Command = {
  name: 'complete',
  summary: 'report how a lease went (success and unknown keep its use counted; any other outcome gives it back)',
  usage: '<leaseId> [--pool P] [--outcome O] [--retry-after S] [--json]',
  help: [
    poolHelp(16),
    `--outcome O     ${OUTCOMES.join(' | ')} (default: success); invalid_key, out_of_credits and rate_limited rest the key`,
    "                (suspect, exhausted, cooling) for at most the pool's maxClientCooldownSeconds, or until maintenance confirms or clears them",
    "--retry-after S with rate_limited only: the provider's Retry-After in seconds (1..3600); the key rests that long, at most the",
    "                pool's maxClientCooldownSeconds (default: the pool's cooldown)",
    '--json          print the HTTP API body: {"keyId","usageCount","status","reportIgnored"?}',
    "Past the pool's maxClientReportsPerMinute a report changes no status (reportIgnored: over_budget).",
  ],
  options: {
    pool: { type: 'string' },
    outcome: { type: 'string' },
    'retry-after': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const outcome =
      args.values.outcome === undefined ? 'success' : checked(OutcomeSchema, args.values.outcome, '--outcome');
    const retryAfterSeconds = numberFlag(RetryAfterSeconds, args.values['retry-after'], '--retry-after');
    if (retryAfterSeconds !== undefined && outcome !== 'rate_limited')
      throw new UsageError('--retry-after goes with --outcome rate_limited');
    const result = await services.broker().complete(pool, args.positionals[0] ?? '', {
      outcome,
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
    const ignored = result.reportIgnored ? ` (report ignored: ${result.reportIgnored})` : '';
    io.out(
      args.values.json ? json(result) : `${result.keyId}: usageCount ${result.usageCount}, ${result.status}${ignored}`,
    );
    return 0;
  },
};

export const increment: Command = {
  name: 'increment',
  summary: 'count one use of a key without a lease (the old increment_usage)',
  usage: '<keyId> [--pool P] [--json]',
  help: [
    poolHelp(13),
    '--json       print the HTTP API body: {"keyId","usageCount"}',
    "Past the pool's maxClientReportsPerMinute lease-less counts are refused (exit 1) until the next minute.",
  ],
  options: { pool: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const result = await services.broker().increment(pool, args.positionals[0] ?? '');
    io.out(args.values.json ? json(result) : `${result.keyId}: usageCount ${result.usageCount}`);
    return 0;
  },
};
