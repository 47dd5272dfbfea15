/** status: the operator's view of each pool's health, from the same counts the metrics publish. */
import { type KeyView, STATUS_READING_ORDER } from '../../domain/types.js';
import { poolHealth, viewHealth } from '../../use-cases/maintenance/pool-health.js';
import { type Command, json, table } from '../framework.js';

const STATUS_COLUMNS = [
  'pool',
  'maxUses',
  'total',
  ...STATUS_READING_ORDER,
  'usable',
  'usableCredits',
  'credits',
  'unchecked',
  'oldestCheck',
];

export const status: Command = {
  name: 'status',
  summary:
    "per pool: keys by status (suspect and undecryptable included), usable keys under the pool's cap, usable and known credits, oldest balance check",
  usage: '[--json]',
  help: [
    '--json       print {"pools":[{"pool","maxUses","total","active","cooling","exhausted","disabled","suspect","undecryptable","retired","usable","usableCredits","credits","unchecked","oldestCheck"}]}',
    "Every pool, keys or not. usable: active keys with usageCount <= the pool's maxUses; suspect: reported invalid_key,",
    'out of the pool until maintenance asks the provider; undecryptable: the stored ciphertext itself does not open,',
    'never leased until `keypool reseal` opens it again or it is imported anew; credits: sum of the last known balances,',
    'once per account (a key whose account is not known yet is its own); usableCredits: the same over the accounts with a usable key;',
    'unchecked: keys (not disabled) whose balance was never read; oldestCheck: the oldest balance read among the others.',
    'retired: retired by an operator (keypool retire, pool delete --retire-keys), kept for the audit; in no other count, not in total.',
  ],
  options: { json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const broker = services.broker();
    const policies = await broker.listPools();
    const keys: KeyView[] = [];
    for (const { pool } of policies) keys.push(...(await broker.listAll(pool)));
    const pools = poolHealth(keys.map(viewHealth), policies, Date.now());
    if (args.values.json) io.out(json({ pools }));
    else
      io.out(
        pools.length
          ? `${table(
              pools.map((p) => ({ ...p })),
              STATUS_COLUMNS,
            )}\nusable = active with usageCount <= the pool's maxUses`
          : 'no pools',
      );
    return 0;
  },
};
