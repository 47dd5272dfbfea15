/**
 * The CLI's small framework: commands register a spec (or a group of them, `keypool pool
 * set`); run-cli.ts parses, dispatches and maps errors to exit codes (0 ok, 1 domain refusal or
 * unreachable store, 2 bad usage).
 */
import { isAbsolute, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as z from 'zod/mini';
import {
  type Config,
  localDynamoEndpoint,
  type MaintenanceConfig,
  readConfig,
  readDynamoLocalPort,
} from '../config.js';
import type { Broker } from '../use-cases/broker.js';
import type { PoolStore } from '../ports/pool-store.js';
import type { ReshardOptions } from '../use-cases/reshard.js';
import type { ResealOptions } from '../use-cases/reseal.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import type { MaintenanceDeps } from '../use-cases/maintenance/maintain.js';
import type { MigrationSources } from '../ports/migration-source.js';
import type { MigrationStore } from '../ports/migration-store.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A refusal the user should read as an answer, not a crash (exit 1). */
export class Refusal extends Error {
  override readonly name = 'Refusal';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

/** Where the CLI found DynamoDB, for messages: the endpoint variable, AWS, or the local stack. */
export type CliConfig = Config & { endpointSource: 'env' | 'aws' | 'local' };

/** What commands work through: the use cases over ports, built by the wiring (lib/wiring.ts) on first use. */
export interface CliServices {
  /** the broker over the configured table */
  broker(): Broker;
  /** maintenance's settings and what it reads and writes through */
  maintenance(): { deps: MaintenanceDeps; settings: MaintenanceConfig };
  /** the migration's store and sources */
  migration(): { store: MigrationStore; pools: PoolStore; sealer: SecretSealer; sources: MigrationSources };
  /** what `keypool reseal` reads and writes through */
  sealing(): Pick<ResealOptions, 'store' | 'pools' | 'sealer'>;
  /** what `keypool pool reshard` reads and writes through */
  sharding(): Pick<ReshardOptions, 'store' | 'pools'>;
  /**
   * Reads the wrapping keys now (the commands that seal or open, before they touch the table): a
   * missing or unsafe key file, or no key configured, is a ConfigError. Never creates a key.
   */
  loadSealing(): Promise<void>;
  /**
   * Serves the read-only console page on 127.0.0.1:`port` (0: any free port) over the configured
   * table until closed; `onError` hears of a read that failed (the page says only "internal error").
   */
  console(port: number, onError: (error: unknown) => void): Promise<{ url: string; close(): Promise<void> }>;
}

export interface CommandContext {
  args: ParsedArgs;
  io: CliIo;
  config: CliConfig;
  services: CliServices;
}

export interface Command {
  name: string;
  summary: string;
  /** usage line after `keypool <name>` */
  usage: string;
  /** lines of option help */
  help: string[];
  options: Options;
  /** how many positionals: [min, max] */
  positionals?: [number, number];
  /** seals or opens secrets: the wrapping keys are read before it runs (run-cli.ts), so a missing key is exit 2 before any write */
  secrets?: true;
  run(context: CommandContext): Promise<number>;
}

/**
 * A command whose first positional names one of its subcommands (`keypool pool set <pool>`).
 * Each subcommand is an ordinary Command named by its own word ("set"); run-cli.ts runs it
 * under its full name ("pool set"), so usage lines and error prefixes read as typed.
 */
export interface CommandGroup {
  name: string;
  summary: string;
  subcommands: Command[];
}

/** Whether an entry of the command list is a group of subcommands. */
export function isGroup(entry: Command | CommandGroup): entry is CommandGroup {
  return 'subcommands' in entry;
}

/**
 * Where the CLI finds DynamoDB: the endpoint variable, else AWS when a region is set, else the
 * local stack's DynamoDB Local on the port `npm start` uses (KEYPOOL_DYNAMODB_LOCAL_PORT, 8000).
 */
export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const config = readConfig(env);
  if (config.endpoint) return { ...config, endpointSource: 'env' };
  if (config.region) return { ...config, endpointSource: 'aws' };
  return { ...config, endpoint: localDynamoEndpoint(readDynamoLocalPort(env)), endpointSource: 'local' };
}

/**
 * A word the user typed, echoed only when it looks like a command (or, with its dashes, an
 * option) name: lowercase letters and dashes, no longer than the longest name (19,
 * `max-client-cooldown`) and a little: a mistyped secret is never repeated, even a made-up one
 * such as `sk-test-abcdefghijkl` (a provider's real keys carry digits and capitals).
 */
export function shownWord(word: string, kind: 'command' | 'option' = 'command'): string {
  const name = kind === 'option' ? word.replace(/^--?/, '') : word;
  if (/^[a-z][a-z-]{0,21}$/.test(name)) return `"${word}"`;
  return kind === 'option' ? '(not an option name)' : '(not a command name)';
}

/**
 * node:util's parse error as one line. An unknown option is the user's text (it may be a
 * secret typed after `--`), so it is shown only when it looks like a name; node's other
 * messages name only this command's own options, and their later lines say how to give a value
 * that starts with a dash.
 */
function parseErrorText(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
    return `unknown option ${shownWord(/^Unknown option '([^']*)'/.exec(text)?.[1] ?? '', 'option')}`;
  return text.split('\n').join(' ') || 'bad arguments';
}

export function parse(command: Command, argv: string[]): ParsedArgs {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(parseErrorText(error));
  }
  const [min, max] = command.positionals ?? [0, 0];
  if (!parsed.values.help && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw new UsageError(`usage: keypool ${command.name} ${command.usage}`);
  }
  return parsed;
}

/** A validation issue in words, for a flag (zod/mini carries no messages of its own). */
function issueText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_big':
      return `must be at most ${String(issue.maximum)}${issue.origin === 'string' ? ' characters' : ''}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}${issue.origin === 'string' ? ' characters' : ''}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_type':
      return issue.expected === 'int' ? 'must be a whole number' : `must be a ${issue.expected}`;
    default:
      // Our own checks (regex, refine) carry a message written for people.
      return issue.message && issue.message !== 'Invalid input' ? issue.message : 'invalid value';
  }
}

/** Validates a flag's value with the API's own schema; a bad value is a usage error of one line. */
export function checked<T>(schema: z.ZodMiniType<T>, value: unknown, flag: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new UsageError(`${flag}: ${issue ? issueText(issue) : 'invalid value'}`);
  }
  return result.data;
}

/**
 * A number flag checked with the API's schema for that field (MaxUses, LeaseTtlSeconds, ...):
 * undefined when the flag is absent. Only plain decimal digits are read as a number ("0x10",
 * "1e3" and "" are refused), so the flag means what the API's JSON number would.
 */
export function numberFlag(schema: z.ZodMiniType<number>, value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^-?\d{1,16}(\.\d{1,16})?$/.test(value))
    throw new UsageError(`${flag}: must be a number`);
  return checked(schema, Number(value), flag);
}

/** --concurrency of the commands that write many keys at once. */
export const Concurrency = z.int().check(z.minimum(1), z.maximum(64));

/** The first `shown` items of a report list, one line each, then how many more `--json` would list. */
export function capped<T>(items: readonly T[], shown: number, line: (item: T) => string): string[] {
  const more = items.length - shown;
  return [
    ...items.slice(0, shown).map(line),
    ...(more > 0 ? [`    ... and ${more} more (--json lists them all)`] : []),
  ];
}

export function stringFlag(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A plain text table: a header row and left-aligned columns. */
export function table(rows: Record<string, string | number | null | undefined>[], columns: string[]): string {
  const cells = [columns, ...rows.map((row) => columns.map((c) => String(row[c] ?? '-')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function json(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * A file the operator named, where they meant it: relative to the directory they typed the
 * command in. `npm run keypool` runs the CLI in the project directory, and npm names the
 * directory it was typed in as INIT_CWD; the bin run directly is already there. "-" is stdin.
 */
export function operatorPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path === '-' || isAbsolute(path)) return path;
  const typedIn =
    env.npm_lifecycle_event === 'keypool' && env.npm_package_name === 'keypool' ? env.INIT_CWD : undefined;
  return typedIn ? resolve(typedIn, path) : path;
}

/** A path as typed, with the absolute path it was read from when that differs, for messages. */
function pathShown(typed: string, read: string): string {
  const full = resolve(read);
  return full === typed ? typed : `${typed} (${full})`;
}

/** A line of a file read by readLines: its text, trimmed, and where it was (`<file> line <n>`, for messages). */
export interface FileLine {
  text: string;
  where: string;
}

/**
 * The lines of `path` ("-": stdin) that say something: trimmed, blank lines and `#` comments
 * skipped, each with its line number, so a refusal can name the line without echoing it.
 */
export async function readLines(typed: string): Promise<FileLine[]> {
  const { readFile } = await import('node:fs/promises');
  const path = operatorPath(typed);
  let text: string;
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      text = await readFile(path, 'utf8');
    }
  } catch (error) {
    throw new UsageError(`cannot read ${pathShown(typed, path)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const source = path === '-' ? 'stdin' : typed;
  return text
    .split(/\r?\n/)
    .map((line, i) => ({ text: line.trim(), where: `${source} line ${i + 1}` }))
    .filter((line) => line.text !== '' && !line.text.startsWith('#'));
}
