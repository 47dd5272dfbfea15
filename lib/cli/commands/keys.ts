/** add, list, enable, disable: the operator's commands over the pool's keys. */
import { ApiKeySecret, KeyStatusSchema, Label, MAX_IMPORT_BATCH, PoolName } from '../../domain/primitives.js';
import type { ImportResult, KeyView } from '../../domain/types.js';
import { checked, type Command, json, readLines, stringFlag, table, UsageError } from '../framework.js';

const KEY_COLUMNS = ['keyId', 'pool', 'maskedKey', 'usageCount', 'status', 'lastUsedAt', 'label'];

function keyRows(keys: KeyView[]): Record<string, string | number | null>[] {
  return keys.map((k) => ({ ...k, label: k.label ?? null }));
}

export const add: Command = {
  name: 'add',
  summary: 'import keys (a key already present is a duplicate and is left as it is)',
  usage: '<apiKey...> [--file F] [--pool P] [--label L] [--json]',
  help: [
    '--file F     read keys from F, one per line (# comments and blank lines skipped); "-" reads stdin',
    '--pool P     pool to import into (default: stability)',
    '--label L    label for every key imported',
    '--json       print the HTTP API body: {"imported","duplicates","keys"}',
    'Keys on the command line can end up in shell history; prefer --file.',
  ],
  options: { file: { type: 'string' }, pool: { type: 'string' }, label: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [0, 100_000],
  async run({ args, io, services }) {
    const file = stringFlag(args.values.file);
    const secrets = [...args.positionals, ...(file ? await readLines(file) : [])];
    if (secrets.length === 0) throw new UsageError('give at least one key, or --file F');
    const pool = args.values.pool === undefined ? undefined : checked(PoolName, args.values.pool, '--pool');
    const label = args.values.label === undefined ? undefined : checked(Label, args.values.label, '--label');
    secrets.forEach((secret, i) => checked(ApiKeySecret, secret, `key #${i + 1}`));
    const total: ImportResult = { imported: 0, duplicates: 0, keys: [] };
    for (let i = 0; i < secrets.length; i += MAX_IMPORT_BATCH) {
      const batch = secrets.slice(i, i + MAX_IMPORT_BATCH).map((apiKey) => ({ apiKey, ...(pool ? { pool } : {}), ...(label ? { label } : {}) }));
      const result = await services.broker().importKeys(batch);
      total.imported += result.imported;
      total.duplicates += result.duplicates;
      total.keys.push(...result.keys);
    }
    if (args.values.json) io.out(json(total));
    else io.out(`${table(keyRows(total.keys), KEY_COLUMNS)}\nimported ${total.imported}, duplicates ${total.duplicates}`);
    return 0;
  },
};

export const list: Command = {
  name: 'list',
  summary: 'list keys, secrets masked',
  usage: '[--pool P] [--status S] [--json]',
  help: [
    '--pool P     only keys of pool P',
    '--status S   only keys with status S (active, cooling, exhausted, disabled)',
    '--json       print the HTTP API body with every page merged: {"keys":[...],"cursor":null}',
  ],
  options: { pool: { type: 'string' }, status: { type: 'string' }, json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pool = args.values.pool === undefined ? undefined : checked(PoolName, args.values.pool, '--pool');
    const status = args.values.status === undefined ? undefined : checked(KeyStatusSchema, args.values.status, '--status');
    const keys = await services.broker().listAll({ ...(pool ? { pool } : {}), ...(status ? { status } : {}) });
    keys.sort((a, b) => a.pool.localeCompare(b.pool) || a.createdAt.localeCompare(b.createdAt));
    if (args.values.json) io.out(json({ keys, cursor: null }));
    else io.out(keys.length ? `${table(keyRows(keys), KEY_COLUMNS)}\n${keys.length} key(s)` : 'no keys');
    return 0;
  },
};

function statusCommand(name: 'enable' | 'disable'): Command {
  const status = name === 'enable' ? 'active' : 'disabled';
  return {
    name,
    summary: name === 'enable' ? 'make a key active again' : 'take a key out of the pool (it is never leased)',
    usage: '<keyId> [--json]',
    help: ['--json       print the HTTP API body (the KeyView)'],
    options: { json: { type: 'boolean' } },
    positionals: [1, 1],
    async run({ args, io, services }) {
      const view = await services.broker().setStatus(args.positionals[0] ?? '', status);
      io.out(args.values.json ? json(view) : `${view.keyId} is ${view.status}`);
      return 0;
    },
  };
}

export const enable = statusCommand('enable');
export const disable = statusCommand('disable');
