/**
 * keypool's own settings, read from the environment: the table and endpoint every entry point
 * uses, the local stack's data dir and DynamoDB port (which `npm start` and the CLI read alike),
 * the wrapping keys, and maintenance's settings. A malformed value fails fast with a message that
 * names it. (The logger and metrics read their POWERTOOLS_* variables, named as Powertools names them, themselves.)
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KMS_KEY_ARN, SEALING_ENV } from './domain/sealing-names.js';
import { DEFAULT_TABLE_NAME } from './table.js';
import { isLoopbackHostname } from './shared/loopback.js';

export interface Config {
  tableName: string;
  /** DynamoDB endpoint override (the local stack); undefined means AWS. */
  endpoint: string | undefined;
  region: string | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new ConfigError(`${name} must be a positive whole number, got "${raw}"`);
  return Number(raw);
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    tableName: env.KEYPOOL_TABLE || DEFAULT_TABLE_NAME,
    endpoint: env.KEYPOOL_DYNAMODB_ENDPOINT || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
  };
}

export { positiveInt as readPositiveInt };

/** DynamoDB Local's port when KEYPOOL_DYNAMODB_LOCAL_PORT is unset. */
export const DEFAULT_DYNAMODB_LOCAL_PORT = 8000;

/** The port of the local stack's DynamoDB Local: `npm start` starts it there, and the CLI looks for it there. */
export function readDynamoLocalPort(env: NodeJS.ProcessEnv = process.env): number {
  return positiveInt(env, 'KEYPOOL_DYNAMODB_LOCAL_PORT', DEFAULT_DYNAMODB_LOCAL_PORT);
}

/** The console's port when neither `keypool console --port` nor KEYPOOL_CONSOLE_PORT (npm start) gives one. */
export const DEFAULT_CONSOLE_PORT = 3001;

/** The port `npm start` serves the console on, beside the API: KEYPOOL_CONSOLE_PORT, else 3001. */
export function readConsolePort(env: NodeJS.ProcessEnv = process.env): number {
  return positiveInt(env, 'KEYPOOL_CONSOLE_PORT', DEFAULT_CONSOLE_PORT);
}

/** The local stack's DynamoDB URL for a port (loopback only). */
export function localDynamoEndpoint(port: number): string {
  return `http://127.0.0.1:${port}`;
}

/** The data dir's name in the project directory when KEYPOOL_DATA_DIR is unset. */
export const DEFAULT_DATA_DIR_NAME = '.keypool';

let projectDirOnce: string | null | undefined;
/**
 * keypool's project directory: the nearest directory above this module whose package.json is
 * keypool's (the checkout `npm start` runs in, for the sources and the bundles in dist/ alike);
 * undefined when there is none.
 */
function projectDir(): string | undefined {
  if (projectDirOnce === undefined) {
    projectDirOnce = null;
    for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
      try {
        if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'keypool') {
          projectDirOnce = dir;
          break;
        }
      } catch {
        // No package.json here, or not one we can read: look further up.
      }
      if (dirname(dir) === dir) break;
    }
  }
  return projectDirOnce ?? undefined;
}

/** The data dir's default: `.keypool` in the project directory, whatever directory a process runs in. */
export function defaultDataDir(): string {
  const project = projectDir();
  return project === undefined ? resolve(DEFAULT_DATA_DIR_NAME) : join(project, DEFAULT_DATA_DIR_NAME);
}

/**
 * The local stack's data dir (DynamoDB Local's files and the local sealing key), absolute:
 * KEYPOOL_DATA_DIR (a relative one from the working directory, as a shell reads a path), else
 * `.keypool` in the project directory. `npm start` and the CLI read it alike, so a CLI run from
 * another directory finds the stack's key, not one of its own.
 */
export function localDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KEYPOOL_DATA_DIR ? resolve(env.KEYPOOL_DATA_DIR) : defaultDataDir();
}

/**
 * What pool maintenance (lib/use-cases/maintenance) reads from the deployment; each pool's minCredits and
 * cap are the pool's own (PUT /pools/{pool}).
 */
export interface MaintenanceConfig {
  providerBaseUrl: string;
  /** balance requests per second, for the whole run */
  balanceRate: number;
  /** balance requests in flight at once */
  balanceConcurrency: number;
}

export const DEFAULT_PROVIDER_BASE_URL = 'https://api.stability.ai';
export const DEFAULT_BALANCE_RATE = 5;
/** Stability allows 150 requests in 10 s; maintenance stays well under it. */
export const MAX_BALANCE_RATE = 10;
export const DEFAULT_BALANCE_CONCURRENCY = 4;

function boundedNumber(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  range: { min: number; max: number; exclusiveMin?: boolean; integer?: boolean },
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  const shape = range.integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  if (!shape.test(raw) || value > range.max || value < range.min || (range.exclusiveMin && value === range.min)) {
    const kind = range.integer ? 'a whole number' : 'a number';
    throw new ConfigError(
      `${name} must be ${kind} ${range.exclusiveMin ? 'above' : 'from'} ${range.min} to ${range.max}, got "${raw.slice(0, 40)}"`,
    );
  }
  return value;
}

/** Hosts maintenance trusts with every key; KEYPOOL_PROVIDER_HOSTS adds to them. */
export const DEFAULT_PROVIDER_HOSTS: readonly string[] = ['api.stability.ai'];

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** Plain path segments only: a proxy may mount the API under a prefix, nothing more exotic. */
const PATH_PREFIX = /^(?:\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*\/?$/;

/**
 * The hosts a base URL may name over https: api.stability.ai plus KEYPOOL_PROVIDER_HOSTS
 * (comma-separated host names, e.g. a company proxy). Fails on an entry that is not a bare
 * host name (no scheme, port, path or wildcard).
 */
export function readProviderHosts(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = list(env, 'KEYPOOL_PROVIDER_HOSTS').map((host) => host.toLowerCase());
  for (const host of extra) {
    if (!HOST_NAME.test(host))
      throw new ConfigError(
        `KEYPOOL_PROVIDER_HOSTS lists "${host.slice(0, 80)}", which is not a bare host name (no scheme, port, path or wildcard)`,
      );
  }
  return [...DEFAULT_PROVIDER_HOSTS, ...extra];
}

/**
 * STABILITY_API_BASE_URL checked before any key is sent to it: https to an allowed host, or
 * http (or https) to a loopback address (the fake providers in tests). No user name or
 * password, no query or fragment, a path of plain segments at most (a proxy's prefix).
 * Answers the URL without its trailing slash; a refused one is a ConfigError of one line that
 * never echoes what could be a password.
 */
export function checkProviderBaseUrl(raw: string, allowedHosts: readonly string[]): string {
  const name = 'STABILITY_API_BASE_URL';
  // Checked on the raw text: the parser drops tabs and newlines, and an empty "?" or "#" or a
  // bare "@" leaves no trace in the parsed URL.
  if (/[^\x21-\x7e]/.test(raw)) throw new ConfigError(`${name} has a space, control or non-ASCII character`);
  if (raw.includes('@'))
    throw new ConfigError(
      `${name} must not hold a user name or password ("...@"): the host would be what follows the "@"`,
    );
  if (raw.includes('?') || raw.includes('#'))
    throw new ConfigError(`${name} must not have a query or fragment ("?" or "#")`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `${name} must be an absolute URL like ${DEFAULT_PROVIDER_BASE_URL}, got "${raw.slice(0, 80)}"`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigError(`${name} must be https (or http to a loopback address), got ${url.protocol.slice(0, 20)}`);
  const host = url.hostname;
  if (!isLoopbackHostname(host)) {
    if (url.protocol === 'http:')
      throw new ConfigError(`${name} must use https for ${host} (plain http only to a loopback address)`);
    if (!allowedHosts.includes(host)) {
      throw new ConfigError(
        `${name} host ${host} is not allowed (allowed: ${allowedHosts.join(', ')}); list it in KEYPOOL_PROVIDER_HOSTS if it may see every key`,
      );
    }
  }
  if (!PATH_PREFIX.test(url.pathname))
    throw new ConfigError(
      `${name} path must be plain segments (letters, digits, "-", ".", "_", "~"), got "${url.pathname.slice(0, 80)}"`,
    );
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** STABILITY_API_BASE_URL (default https://api.stability.ai), checked (checkProviderBaseUrl): where maintenance and proxy mode send keys. */
export function readProviderBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return checkProviderBaseUrl(env.STABILITY_API_BASE_URL || DEFAULT_PROVIDER_BASE_URL, readProviderHosts(env));
}

/** Reads the maintenance variables; a malformed one fails with a message naming it. */
export function readMaintenanceConfig(env: NodeJS.ProcessEnv = process.env): MaintenanceConfig {
  return {
    providerBaseUrl: readProviderBaseUrl(env),
    balanceRate: boundedNumber(env, 'KEYPOOL_BALANCE_RATE', DEFAULT_BALANCE_RATE, {
      min: 0,
      max: MAX_BALANCE_RATE,
      exclusiveMin: true,
    }),
    balanceConcurrency: boundedNumber(env, 'KEYPOOL_BALANCE_CONCURRENCY', DEFAULT_BALANCE_CONCURRENCY, {
      min: 1,
      max: 64,
      integer: true,
    }),
  };
}

/** A value as a POSIX shell word: as it is when it is plain, else single-quoted. */
function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The variables a CLI in another terminal needs to reach the stack `npm start` runs with `env`
 * (read before the start adds its own), as shell words `NAME=value`; none with the defaults.
 * The CLI reads the same KEYPOOL_DYNAMODB_LOCAL_PORT and KEYPOOL_DATA_DIR, but a shell with
 * AWS_REGION sends it to AWS, so that case names the endpoint itself. Paths are made absolute:
 * the other terminal may be in another directory.
 */
export function cliEnvironment(env: NodeJS.ProcessEnv): string[] {
  const words: [string, string][] = [];
  const port = readDynamoLocalPort(env);
  if (env.KEYPOOL_DYNAMODB_ENDPOINT) words.push(['KEYPOOL_DYNAMODB_ENDPOINT', env.KEYPOOL_DYNAMODB_ENDPOINT]);
  else if (env.AWS_REGION || env.AWS_DEFAULT_REGION)
    words.push(['KEYPOOL_DYNAMODB_ENDPOINT', localDynamoEndpoint(port)]);
  else if (port !== DEFAULT_DYNAMODB_LOCAL_PORT) words.push(['KEYPOOL_DYNAMODB_LOCAL_PORT', String(port)]);
  if (env.KEYPOOL_TABLE && env.KEYPOOL_TABLE !== DEFAULT_TABLE_NAME) words.push(['KEYPOOL_TABLE', env.KEYPOOL_TABLE]);
  const sealing = readSealingConfig(env);
  if (sealing?.kind === 'kms') {
    words.push([SEALING_ENV.keyArn, sealing.keyArn]);
    if (sealing.previousKeyArns.length) words.push([SEALING_ENV.previousKeyArns, sealing.previousKeyArns.join(',')]);
  } else if (sealing) {
    words.push([SEALING_ENV.keyFile, resolve(sealing.keyFile)]);
    if (sealing.previousKeyFiles.length)
      words.push([SEALING_ENV.previousKeyFiles, sealing.previousKeyFiles.map((file) => resolve(file)).join(',')]);
  } else if (localDataDir(env) !== defaultDataDir()) {
    words.push(['KEYPOOL_DATA_DIR', localDataDir(env)]);
  }
  // The provider the stack proxies to is the one a CLI's maintain and add --verify must ask: once
  // checked (never a URL with a password in it; a refused one is the stack's own error to give).
  if (env.STABILITY_API_BASE_URL) {
    try {
      words.push(['STABILITY_API_BASE_URL', readProviderBaseUrl(env)]);
      if (env.KEYPOOL_PROVIDER_HOSTS) words.push(['KEYPOOL_PROVIDER_HOSTS', env.KEYPOOL_PROVIDER_HOSTS]);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
    }
  }
  return words.map(([name, value]) => `${name}=${shellWord(value)}`);
}

/**
 * Where sealed secrets' wrapping keys come from (lib/adapters/esdk-sealer.ts): a KMS key on
 * AWS, a 256-bit key file locally. The current one seals and opens; previous ones only open,
 * while `keypool reseal` moves every secret to the current one.
 */
export type SealingConfig =
  | { kind: 'kms'; keyArn: string; previousKeyArns: string[] }
  | { kind: 'local'; keyFile: string; previousKeyFiles: string[] };

/** The variables that name the wrapping keys (defined in lib/domain/sealing-names.ts, which the CDK app reads too). */
export { SEALING_ENV };

function list(env: NodeJS.ProcessEnv, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * The sealing configuration the environment gives: a KMS key ARN, else a key file; undefined
 * when neither is set (the caller decides: the local stack and the CLI fall back to the data
 * directory's key file). A malformed ARN fails fast, naming the variable.
 */
export function readSealingConfig(env: NodeJS.ProcessEnv = process.env): SealingConfig | undefined {
  const keyArn = env[SEALING_ENV.keyArn];
  const keyFile = env[SEALING_ENV.keyFile];
  // Previous keys only open, during a rotation to a current key of their kind: without that
  // current key they would be ignored, and the secrets under them read as not held.
  const previousWithout = (previous: string, why: string): void => {
    if (list(env, previous).length > 0)
      throw new ConfigError(
        `${previous} is set, but ${why}: previous keys only open, beside a current key of their kind that seals`,
      );
  };
  if (keyArn)
    previousWithout(
      SEALING_ENV.previousKeyFiles,
      `the current key is ${SEALING_ENV.keyArn}'s KMS key (previous key files go with ${SEALING_ENV.keyFile}, and no KMS key)`,
    );
  else if (!keyFile) previousWithout(SEALING_ENV.previousKeyFiles, `${SEALING_ENV.keyFile} is not`);
  if (!keyArn) previousWithout(SEALING_ENV.previousKeyArns, `${SEALING_ENV.keyArn} is not`);
  if (keyArn) {
    const previousKeyArns = list(env, SEALING_ENV.previousKeyArns);
    for (const [name, arn] of [
      [SEALING_ENV.keyArn, keyArn],
      ...previousKeyArns.map((p) => [SEALING_ENV.previousKeyArns, p] as const),
    ] as const) {
      if (!KMS_KEY_ARN.test(arn))
        throw new ConfigError(
          `${name} must be KMS key ARNs (arn:aws:kms:<region>:<account>:key/<id>; not an alias), got "${arn.slice(0, 120)}"`,
        );
    }
    return { kind: 'kms', keyArn, previousKeyArns };
  }
  if (keyFile) return { kind: 'local', keyFile, previousKeyFiles: list(env, SEALING_ENV.previousKeyFiles) };
  return undefined;
}
