/** add, list, enable, disable, reset: the operator's commands over a pool's keys. */
import {
  AccountName,
  ApiKeySecret,
  KeyStatusSchema,
  Label,
  MAX_IMPORT_BATCH,
  MAX_VERIFY_BATCH,
  UsageCount,
} from '../../domain/primitives.js';
import { DEFAULT_POOL, type ImportResult, KEY_STATUSES, type KeyView, STATUS_SETTERS } from '../../domain/types.js';
import { checked, type Command, json, numberFlag, readLines, stringFlag, table, UsageError } from '../framework.js';
import { poolFlag, poolHelp } from './pool-flag.js';

const KEY_COLUMNS = ['keyId', 'pool', 'maskedKey', 'usageCount', 'status', 'lastUsedAt', 'account', 'label'];

/**
 * list's table adds who set a key's status and until when it rests: what tells a key an operator
 * disabled from one the provider did, and when a reported key comes back by itself
 * (docs/troubleshooting.md sends the operator here for both).
 */
const LIST_COLUMNS = [...KEY_COLUMNS.slice(0, 5), 'statusBy', 'cooldownUntil', ...KEY_COLUMNS.slice(5)];

function keyRows(keys: KeyView[]): Record<string, string | number | null>[] {
  return keys.map((k) => ({ ...k, label: k.label ?? null }));
}

export const add: Command = {
  name: 'add',
  secrets: true,
  summary: 'import keys (a key already present is a duplicate and is left as it is); creates the pool if absent',
  usage: '<apiKey...> [--file F] [--pool P] [--label L] [--account A] [--verify] [--revive] [--json]',
  help: [
    '--file F     read keys from F, one per line (# comments and blank lines skipped); "-" reads stdin',
    `--pool P     pool to import into (default: ${DEFAULT_POOL}); created with the default policy if absent`,
    '--label L    label for every key imported',
    "--account A  the account (the provider's organization) every key imported belongs to; a key imported into",
    "             an exhausted or cooling account takes the account's state (docs/accounts.md)",
    '--verify     ask the provider about each key first (its account endpoint, STABILITY_API_BASE_URL): a key it',
    '             refuses is reported rejected, one it does not answer for unverified, and neither is stored;',
    '             unverified keys are exit 1 (run the same add again: the keys stored now are duplicates then)',
    `             (the HTTP API takes ${MAX_VERIFY_BATCH} keys a request with verify; this command sends any number)`,
    '--revive     bring back keys an operator retired: sealed anew, active in this pool, their counts kept',
    '             (without it a retired key is reported retired and nothing is stored for it)',
    '--json       print the HTTP API body: {"imported","duplicates","retired","revived","keys"}',
    'Keys on the command line can end up in shell history; prefer --file.',
  ],
  options: {
    file: { type: 'string' },
    pool: { type: 'string' },
    label: { type: 'string' },
    account: { type: 'string' },
    verify: { type: 'boolean' },
    revive: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  positionals: [0, 100_000],
  async run({ args, io, services }) {
    const file = stringFlag(args.values.file);
    const pool = poolFlag(args);
    const label = args.values.label === undefined ? undefined : checked(Label, args.values.label, '--label');
    const account =
      args.values.account === undefined ? undefined : checked(AccountName, args.values.account, '--account');
    // Each key is checked where it came from, so a refusal names the argument or the file's line, never the key.
    const given = [
      ...args.positionals.map((text, i) => ({ text, where: `key #${i + 1}` })),
      ...(file ? await readLines(file) : []),
    ];
    if (given.length === 0)
      throw new UsageError(
        file === undefined
          ? 'give at least one key, or --file F'
          : `${file === '-' ? 'stdin' : file} holds no key (only blank lines and # comments, if anything): nothing was imported`,
      );
    const secrets = given.map((line) => checked(ApiKeySecret, line.text, line.where));
    const total: ImportResult = {
      imported: 0,
      duplicates: 0,
      retired: 0,
      revived: 0,
      keys: [],
      ...(args.values.verify === true ? { rejected: 0, unverified: 0, refused: [] } : {}),
    };
    const options = { revive: args.values.revive === true, verify: args.values.verify === true };
    // The API takes MAX_IMPORT_BATCH keys a request; the CLI sends a longer file in batches and adds up the answers.
    for (let i = 0; i < secrets.length; i += MAX_IMPORT_BATCH) {
      const batch = secrets
        .slice(i, i + MAX_IMPORT_BATCH)
        .map((apiKey) => ({ apiKey, ...(label ? { label } : {}), ...(account ? { account } : {}) }));
      const result = await services.broker().importKeys(pool, batch, options);
      total.imported += result.imported;
      total.duplicates += result.duplicates;
      total.retired += result.retired;
      total.revived += result.revived;
      total.keys.push(...result.keys);
      if (total.refused && result.refused) {
        total.rejected = (total.rejected ?? 0) + (result.rejected ?? 0);
        total.unverified = (total.unverified ?? 0) + (result.unverified ?? 0);
        total.refused.push(...result.refused);
      }
    }
    if (args.values.json) io.out(json(total));
    else
      io.out(
        `${table(keyRows(total.keys), KEY_COLUMNS)}\nimported ${total.imported}, duplicates ${total.duplicates}, retired ${total.retired}, revived ${total.revived}${total.retired > 0 ? ' (retired keys are not stored again: --revive brings them back)' : ''}${
          total.refused
            ? `\nrejected ${total.rejected ?? 0}, unverified ${total.unverified ?? 0} (not stored)${total.refused
                .map((r) => `\n  ${r.maskedKey} ${r.outcome}: ${r.reason}`)
                .join('')}`
            : ''
        }`,
      );
    // An unverified key was not stored and nothing asks about it again: a script must not read that as done.
    const unverified = total.unverified ?? 0;
    if (unverified === 0) return 0;
    io.err(
      `keypool add: ${unverified} key(s) not stored: the provider did not answer for them; run the same add again`,
    );
    return 1;
  },
};

export const list: Command = {
  name: 'list',
  summary: "list a pool's keys, secrets masked",
  usage: '[--pool P] [--status S] [--json]',
  help: [
    poolHelp(13),
    `--status S   only keys with status S (${KEY_STATUSES.join(', ')})`,
    '--json       print the HTTP API body with every page merged, in the API\'s order: {"keys":[...],"cursor":null}',
    `The table lists keys in the order they were added, with who set each status (statusBy: ${STATUS_SETTERS.join(', ')})`,
    'and until when a resting key rests (cooldownUntil).',
  ],
  options: { pool: { type: 'string' }, status: { type: 'string' }, json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const status =
      args.values.status === undefined ? undefined : checked(KeyStatusSchema, args.values.status, '--status');
    const keys = await services.broker().listAll(pool, status ? { status } : {});
    if (args.values.json) {
      io.out(json({ keys, cursor: null }));
      return 0;
    }
    const added = [...keys].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    io.out(
      added.length
        ? `${table(keyRows(added), LIST_COLUMNS)}\n${added.length} key(s)`
        : `no keys in pool ${pool}${status ? ` with status ${status}` : ''}`,
    );
    return 0;
  },
};

function statusCommand(name: 'enable' | 'disable'): Command {
  const status = name === 'enable' ? 'active' : 'disabled';
  return {
    name,
    summary:
      name === 'enable'
        ? 'make a key active again'
        : 'take a key out of the pool until an operator enables it (it is never leased, maintenance leaves it alone)',
    usage: '<keyId> [--pool P] [--json]',
    help: [poolHelp(13), '--json       print the HTTP API body (the KeyView)'],
    options: { pool: { type: 'string' }, json: { type: 'boolean' } },
    positionals: [1, 1],
    async run({ args, io, services }) {
      const pool = poolFlag(args);
      const view = await services.broker().updateKey(pool, args.positionals[0] ?? '', { status });
      io.out(args.values.json ? json(view) : `${view.keyId} is ${view.status}`);
      return 0;
    },
  };
}

const disableOne = statusCommand('disable');
const enableOne = statusCommand('enable');

/**
 * `enable <keyId>`, or `enable --pool P --disabled-by provider`: every key of the pool the
 * provider disabled, at once (an operator's disabled is left as it is).
 */
export const enable: Command = {
  ...enableOne,
  summary: 'make a key active again, or every key of a pool the provider disabled',
  usage: '<keyId> [--pool P] [--json] | --pool P --disabled-by provider [--json]',
  help: [
    poolHelp(24),
    '--disabled-by provider  instead of one key: every key of the pool that maintenance disabled on the',
    "                        provider's refusal; a key an operator disabled stays disabled",
    '--json                  print the HTTP API body (the KeyView), or {"pool","enabled"} with --disabled-by',
  ],
  options: { ...enableOne.options, 'disabled-by': { type: 'string' } },
  positionals: [0, 1],
  async run(context) {
    const { args, io, services } = context;
    const by = args.values['disabled-by'];
    if (by === undefined) {
      if (args.positionals.length !== 1) throw new UsageError(`usage: keypool enable ${enable.usage}`);
      return enableOne.run(context);
    }
    if (by !== 'provider') throw new UsageError('--disabled-by takes one value: provider');
    if (args.positionals.length > 0) throw new UsageError('give either a key id or --disabled-by provider, not both');
    const result = await services.broker().enableDisabledBy(poolFlag(args), by);
    io.out(
      args.values.json
        ? json(result)
        : `enabled ${result.enabled} key(s) of pool ${result.pool} the provider had disabled`,
    );
    return 0;
  },
};
export const disable = disableOne;

export const reset: Command = {
  name: 'reset',
  summary: "set a key's usage count (default 0): the key takes its place in the usage order again",
  usage: '<keyId> [--pool P] [--to N] [--json]',
  help: [poolHelp(13), '--to N       the new count (default 0)', '--json       print the HTTP API body (the KeyView)'],
  options: { pool: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const usageCount = numberFlag(UsageCount, args.values.to, '--to') ?? 0;
    const view = await services.broker().updateKey(pool, args.positionals[0] ?? '', { usageCount });
    io.out(args.values.json ? json(view) : `${view.keyId}: usageCount ${view.usageCount}, ${view.status}`);
    return 0;
  },
};

export const retire: Command = {
  name: 'retire',
  summary:
    'retire a key for good (DELETE /pools/{pool}/keys/{keyId}): never leased again, its secret destroyed, its record kept',
  usage: '<keyId> [--pool P] [--json]',
  help: [
    poolHelp(13),
    '--json       print the HTTP API body (the KeyView, status retired)',
    'The record stays listed (keypool list --status retired) with its counts and who retired it when;',
    'a lease of the key still open completes as usual. `keypool add --revive` with the secret brings it back.',
  ],
  options: { pool: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ args, io, services }) {
    const pool = poolFlag(args);
    const view = await services.broker().retireKey(pool, args.positionals[0] ?? '');
    io.out(args.values.json ? json(view) : `${view.keyId} is retired (since ${view.statusAt ?? 'now'})`);
    return 0;
  },
};
