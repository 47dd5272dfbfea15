/**
 * `keypool <command>`: the operator's and caller's CLI over the same use cases the Lambdas run.
 * Exit 0 on success, 1 on a domain refusal (no usable key, not found) or an unreachable
 * store, 2 on bad usage; the reason is one line on stderr.
 */
import { ConfigError, defaultDataDir } from '../config.js';
import { KeypoolError } from '../domain/errors.js';
import { DEFAULT_POOL } from '../domain/types.js';
import { redact } from '../shared/redact.js';
import { deniedPermission, storeFailure } from '../shared/store-failure.js';
import { COMMANDS } from './commands/index.js';
import {
  type CliConfig,
  cliConfig,
  type CliIo,
  type CliServices,
  type Command,
  type CommandContext,
  type CommandGroup,
  isGroup,
  parse,
  type ParsedArgs,
  shownWord,
  Refusal,
  UsageError,
} from './framework.js';

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'keypool: lease API keys from a pool under a usage cap',
    '',
    'usage: keypool <command> [options]     (npm run keypool -- <command> [options])',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `keypool <command> --help` for its options.',
    '',
    'DynamoDB: KEYPOOL_DYNAMODB_ENDPOINT if set, else AWS when AWS_REGION or AWS_DEFAULT_REGION is set, else the',
    'local stack (`npm start`) at 127.0.0.1:$KEYPOOL_DYNAMODB_LOCAL_PORT (default 8000). Table: KEYPOOL_TABLE (default keypool).',
    `Sealing key (${COMMANDS.filter((c) => !isGroup(c) && c.secrets)
      .map((c) => c.name)
      .join(', ')}): KEYPOOL_SECRETS_KEY_ARN, else KEYPOOL_SEALING_KEY_FILE, else,`,
    `against a local DynamoDB, $KEYPOOL_DATA_DIR/sealing-key; KEYPOOL_DATA_DIR defaults to ${defaultDataDir()}`,
    "(the project's, whatever the current directory). The CLI never creates a key: a missing key file is exit 2.",
    '`npm start` prints the variables a CLI in another terminal needs when its settings are not the defaults.',
  ].join('\n');
}

function commandHelp(command: Command): string {
  return [
    `usage: keypool ${command.name} ${command.usage}`,
    '',
    command.summary,
    '',
    ...command.help.map((l) => `  ${l}`),
    ...(command.secrets
      ? [
          '  Reads the sealing key first (`keypool --help` says where from): no key file is exit 2, before anything is written;',
          '  a secret sealed under a key this CLI does not hold changes nothing: exit 1, one line naming both keys.',
        ]
      : []),
  ].join('\n');
}

function groupHelp(group: CommandGroup): string {
  const width = Math.max(...group.subcommands.map((c) => c.name.length));
  return [
    `usage: keypool ${group.name} <subcommand> [options]`,
    '',
    group.summary,
    '',
    'subcommands:',
    ...group.subcommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run \`keypool ${group.name} <subcommand> --help\` for its options.`,
  ].join('\n');
}

/** Why the store could not be reached or read, in one line, or undefined if the error is something else. */
function unreachable(
  error: unknown,
  endpoint: string | undefined,
  local: boolean,
  tableName: string,
): string | undefined {
  switch (storeFailure(error)) {
    case 'missing_table':
      return `table "${tableName}" does not exist${endpoint ? ` at ${endpoint}` : ''}${local ? ': run `npm start` (it creates it)' : ''}`;
    case 'unreachable':
      return local
        ? `nothing answers at ${endpoint ?? 'the local stack'}: start the local stack with \`npm start\``
        : `cannot reach DynamoDB${endpoint ? ` at ${endpoint}` : ''}`;
    case 'not_dynamodb':
      return `${endpoint ?? 'the endpoint'} answers, but not as DynamoDB: ${local ? 'KEYPOOL_DYNAMODB_LOCAL_PORT' : 'KEYPOOL_DYNAMODB_ENDPOINT'} must name DynamoDB's port (the DynamoDB line npm start prints), not the API's or the console's`;
    case 'no_credentials':
      return 'no AWS credentials found (set a profile or KEYPOOL_DYNAMODB_ENDPOINT)';
    case 'access_denied':
      return `the AWS credentials in use are not allowed ${deniedPermission(error, tableName)}: grant it to them, or use credentials that have it`;
    default:
      return undefined;
  }
}

/** The refusals a pool-scoped command gives for a name it looked for in one pool. */
const NOT_FOUND = new Set(['pool_not_found', 'key_not_found', 'lease_not_found']);

/**
 * What to add to a not-found refusal of a command whose --pool was left out: it looked in the
 * default pool, which the operator may not have meant (a lease id does not say its pool).
 */
function defaultPoolHint(error: KeypoolError, command: Command, args: ParsedArgs | undefined): string {
  if (!NOT_FOUND.has(error.code) || !('pool' in command.options) || args?.values.pool !== undefined) return '';
  return ` (no --pool given, so pool "${DEFAULT_POOL}": give the pool with --pool P)`;
}

/**
 * Runs one command line and answers its exit code (0 ok, 1 refusal or unreachable store,
 * 2 bad usage); never exits the process. `services` builds the use cases over the
 * configuration the command resolved: the wiring's (bin/cli.ts), or a test's own.
 */
export async function runCli(argv: string[], io: CliIo, services: (config: CliConfig) => CliServices): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    io.err(`keypool: unknown command ${shownWord(name)}; run keypool --help`);
    return 2;
  }
  let command: Command;
  let commandArgs = rest;
  if (isGroup(entry)) {
    const [word, ...after] = rest;
    if (word === undefined || word === '--help' || word === '-h' || word === 'help') {
      io.out(groupHelp(entry));
      return word === undefined ? 2 : 0;
    }
    const sub = entry.subcommands.find((c) => c.name === word);
    if (!sub) {
      io.err(`keypool ${entry.name}: unknown subcommand ${shownWord(word)}; run keypool ${entry.name} --help`);
      return 2;
    }
    // Run under its full name, so its usage line and error prefix read "keypool pool set".
    command = { ...sub, name: `${entry.name} ${sub.name}` };
    commandArgs = after;
  } else {
    command = entry;
  }
  let context: CommandContext | undefined;
  let parsed: ParsedArgs | undefined;
  try {
    const args = parse(command, commandArgs);
    parsed = args;
    if (args.values.help) {
      io.out(commandHelp(command));
      return 0;
    }
    const config = cliConfig();
    context = { args, io, config, services: services(config) };
    if (command.secrets) await context.services.loadSealing();
    return await command.run(context);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`keypool ${command.name}: ${error.message}`);
      return 2;
    }
    if (error instanceof KeypoolError && error.code === 'invalid_request') {
      io.err(`keypool ${command.name}: ${error.message}`);
      return 2;
    }
    if (error instanceof KeypoolError) {
      io.err(`keypool ${command.name}: ${error.message}${defaultPoolHint(error, command, parsed)}`);
      return 1;
    }
    if (error instanceof Refusal || error instanceof ConfigError) {
      io.err(`keypool ${command.name}: ${error.message}`);
      return error instanceof ConfigError ? 2 : 1;
    }
    const config = context?.config;
    const why = unreachable(error, config?.endpoint, config?.endpointSource === 'local', config?.tableName ?? '');
    io.err(`keypool ${command.name}: ${why ?? `failed: ${redact((error as Error).message)}`}`);
    return 1;
  }
}
