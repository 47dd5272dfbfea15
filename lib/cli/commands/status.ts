/** status: the operator's view of each pool's health, from the same counts the metrics publish. */
import { poolHealth } from '../../maintenance/pool-health.js';
import { type Command, json, table } from '../framework.js';

const STATUS_COLUMNS = ['pool', 'total', 'active', 'cooling', 'exhausted', 'disabled', 'usable', 'credits', 'unchecked', 'oldestCheck'];

export const status: Command = {
  name: 'status',
  summary: 'per pool: keys by status, usable keys under the default cap, known credits, oldest balance check',
  usage: '[--json]',
  help: [
    '--json       print {"defaultMaxUses","pools":[{"pool","total","active","cooling","exhausted","disabled","usable","credits","unchecked","oldestCheck"}]}',
    'usable: active keys with usageCount <= KEYPOOL_DEFAULT_MAX_USES (default 3); credits: sum of the last known balances;',
    'unchecked: keys (not disabled) whose balance was never read; oldestCheck: the oldest balance read among the others.',
  ],
  options: { json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const { defaultMaxUses } = services.maintenance().settings;
    const pools = poolHealth(await services.broker().listAll(), defaultMaxUses, Date.now());
    if (args.values.json) io.out(json({ defaultMaxUses, pools }));
    else io.out(pools.length ? `${table(pools.map((p) => ({ ...p })), STATUS_COLUMNS)}\nusable = active with usageCount <= ${defaultMaxUses}` : 'no keys');
    return 0;
  },
};
