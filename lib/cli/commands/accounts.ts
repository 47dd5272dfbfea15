/** account list, account set: the operator's view of a pool's accounts, and a key's account. */
import { AccountName } from '../../domain/primitives.js';
import { checked, type Command, type CommandGroup, json, table, UsageError } from '../framework.js';
import { poolFlag, poolHelp } from './pool-flag.js';

const ACCOUNT_COLUMNS = ['account', 'keys', 'usableKeys', 'credits', 'creditsCheckedAt', 'status', 'cooldownUntil'];

const list: Command = {
  name: 'list',
  summary: "a pool's accounts: keys, usable keys, credits, status (GET /pools/{pool}/accounts)",
  usage: '[--pool P] [--json]',
  help: [
    poolHelp(13),
    '--json       print the HTTP API body with every page merged: {"accounts":[...],"cursor":null}',
    'Accounts keypool knows: named at import (add --account) or by `account set`, learned by maintenance',
    "(the provider's default organization of each key), or stopped by a report. A key whose account is not",
    'known yet is its own account and is not listed. See docs/accounts.md.',
  ],
  options: { pool: { type: 'string' }, json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const view = services.broker().accounts;
    if (!view) throw new UsageError('this configuration keeps no accounts');
    const accounts = await view.listAll(pool);
    if (args.values.json) io.out(json({ accounts, cursor: null }));
    else
      io.out(
        accounts.length
          ? `${table(
              accounts.map((a) => ({ ...a, cooldownUntil: a.cooldownUntil ?? null })),
              ACCOUNT_COLUMNS,
            )}\n${accounts.length} account(s)`
          : 'no known accounts',
      );
    return 0;
  },
};

const set: Command = {
  name: 'set',
  summary: "set a key's account (PATCH /pools/{pool}/keys/{keyId} with account)",
  usage: '<keyId> <account> [--pool P] [--json]',
  help: [
    poolHelp(13),
    '--json       print the HTTP API body (the KeyView)',
    "The operator's account replaces one maintenance learned; the key keeps its status until the account's next verdict.",
  ],
  options: { pool: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [2, 2],
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const account = checked(AccountName, args.positionals[1], 'account');
    const view = await services.broker().updateKey(pool, args.positionals[0] ?? '', { account });
    io.out(args.values.json ? json(view) : `${view.keyId}: account ${view.account ?? account}`);
    return 0;
  },
};

export const accountCommand: CommandGroup = {
  name: 'account',
  summary: "a pool's accounts (keys sharing one provider balance): account list, account set",
  subcommands: [list, set],
};
