/**
 * The CLI's small framework: commands register a spec; main.ts parses, dispatches and maps
 * errors to exit codes (0 ok, 1 domain refusal or unreachable store, 2 bad usage).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type * as z from 'zod/mini';
import { type Config, type MaintenanceConfig, readConfig } from '../config.js';
import type { Broker } from '../domain/broker.js';
import type { PoolStore } from '../domain/key-store.js';
import type { MaintenanceDeps } from '../maintenance/maintain.js';
import type { MigrationSources } from '../migration/migrate.js';
import type { MigrationStore } from '../migration/migration-store.js';

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
  migration(): { store: MigrationStore; pools: PoolStore; sources: MigrationSources };
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
  run(context: CommandContext): Promise<number>;
}

export const LOCAL_ENDPOINT = 'http://127.0.0.1:8000';

/** Where the CLI finds DynamoDB: the endpoint variable, else AWS when a region is set, else the local stack. */
export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const config = readConfig(env);
  if (config.endpoint) return { ...config, endpointSource: 'env' };
  if (config.region) return { ...config, endpointSource: 'aws' };
  return { ...config, endpoint: LOCAL_ENDPOINT, endpointSource: 'local' };
}

export function parse(command: Command, argv: string[]): ParsedArgs {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({ args: argv, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const [min, max] = command.positionals ?? [0, 0];
  if (!parsed.values.help && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw new UsageError(`usage: keypool ${command.name} ${command.usage}`);
  }
  return parsed;
}

/** Validates a flag's value with the API's own schema; a bad value is a usage error. */
export function checked<T>(schema: z.ZodMiniType<T>, value: unknown, flag: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new UsageError(`${flag}: ${result.error.issues[0]?.message ?? 'invalid value'}`);
  return result.data;
}

/** A whole number flag in [min, max]. */
export function intFlag(value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

export function stringFlag(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A plain text table: a header row and left-aligned columns. */
export function table(rows: Record<string, string | number | null | undefined>[], columns: string[]): string {
  const cells = [columns, ...rows.map((row) => columns.map((c) => String(row[c] ?? '-')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function json(value: unknown): string {
  return JSON.stringify(value);
}

/** Reads keys from a file (or stdin for "-"): one per line, blank lines and # comments skipped. */
export async function readLines(path: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
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
    throw new UsageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
