/** lease, complete, increment: the caller's commands (the old --find --max-uses=3 and increment_usage). */
import { OUTCOMES, type Outcome } from '../../domain/types.js';
import { PoolName } from '../../domain/primitives.js';
import { checked, type Command, intFlag, json, table, UsageError } from '../framework.js';

export const lease: Command = {
  name: 'lease',
  summary: 'lease the least recently used usable key (prints the secret)',
  usage: '[--pool P] [--max-uses N] [--ttl S] [--json]',
  help: [
    '--pool P       pool (default: stability)',
    '--max-uses N   a key is usable while its count is <= N (default 3, 0..1000)',
    '--ttl S        seconds until the lease expires (default 300, 1..3600)',
    '--json         print the HTTP API body: {"leaseId","keyId","apiKey","pool","usageCount","expiresAt"}',
  ],
  options: { pool: { type: 'string' }, 'max-uses': { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pool = args.values.pool === undefined ? undefined : checked(PoolName, args.values.pool, '--pool');
    const maxUses = intFlag(args.values['max-uses'], '--max-uses', 0, 1000);
    const ttlSeconds = intFlag(args.values.ttl, '--ttl', 1, 3600);
    const grant = await services.broker().lease({
      ...(pool ? { pool } : {}),
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
  summary: 'report how a lease went (success counts the use; anything else returns it)',
  usage: '<leaseId> [--outcome O] [--json]',
  help: [`--outcome O  ${OUTCOMES.join(' | ')} (default: success)`, '--json       print the HTTP API body: {"keyId","usageCount","status"}'],
  options: { outcome: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const outcome = args.values.outcome ?? 'success';
    if (typeof outcome !== 'string' || !(OUTCOMES as readonly string[]).includes(outcome)) {
      throw new UsageError(`--outcome takes one of ${OUTCOMES.join(', ')}`);
    }
    const result = await services.broker().complete(args.positionals[0] ?? '', outcome as Outcome);
    io.out(args.values.json ? json(result) : `${result.keyId}: usageCount ${result.usageCount}, ${result.status}`);
    return 0;
  },
};

export const increment: Command = {
  name: 'increment',
  summary: 'count one use of a key without a lease (the old increment_usage)',
  usage: '<keyId> [--json]',
  help: ['--json       print the HTTP API body: {"keyId","usageCount"}'],
  options: { json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const result = await services.broker().increment(args.positionals[0] ?? '');
    io.out(args.values.json ? json(result) : `${result.keyId}: usageCount ${result.usageCount}`);
    return 0;
  },
};
