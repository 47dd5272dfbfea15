/**
 * keypool's own settings, read from the environment: the table and endpoint every entry point
 * uses, and maintenance's settings. A malformed value fails fast with a message that names it.
 * (Powertools reads its POWERTOOLS_* variables itself, and the local stack reads its ports and
 * data directory in lib/local/start.ts.)
 */
import { DEFAULT_TABLE_NAME } from './table.js';
import { DEFAULT_COOLDOWN_SECONDS, DEFAULT_MAX_USES } from './domain/types.js';

export interface Config {
  tableName: string;
  /** DynamoDB endpoint override (the local stack); undefined means AWS. */
  endpoint: string | undefined;
  region: string | undefined;
  cooldownSeconds: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new ConfigError(`${name} must be a positive whole number, got "${raw}"`);
  return Number(raw);
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    tableName: env.KEYPOOL_TABLE || DEFAULT_TABLE_NAME,
    endpoint: env.KEYPOOL_DYNAMODB_ENDPOINT || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    cooldownSeconds: positiveInt(env, 'KEYPOOL_COOLDOWN_SECONDS', DEFAULT_COOLDOWN_SECONDS),
  };
}

export { positiveInt as readPositiveInt };

/** What pool maintenance (lib/maintenance) and its metrics read. */
export interface MaintenanceConfig {
  /** below this balance a key is exhausted; at or above it an exhausted key is active again */
  minCredits: number;
  /** the cap "usable" is measured against in metrics and `keypool status` */
  defaultMaxUses: number;
  providerBaseUrl: string;
  /** balance requests per second, for the whole run */
  balanceRate: number;
  /** balance requests in flight at once */
  balanceConcurrency: number;
}

export const DEFAULT_MIN_CREDITS = 3;
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
    throw new ConfigError(`${name} must be ${kind} ${range.exclusiveMin ? 'above' : 'from'} ${range.min} to ${range.max}, got "${raw.slice(0, 40)}"`);
  }
  return value;
}

/** Reads the maintenance variables; a malformed one fails with a message naming it. */
export function readMaintenanceConfig(env: NodeJS.ProcessEnv = process.env): MaintenanceConfig {
  const base = env.STABILITY_API_BASE_URL || DEFAULT_PROVIDER_BASE_URL;
  if (!/^https?:\/\/[^\s/]+/.test(base)) throw new ConfigError(`STABILITY_API_BASE_URL must be an http(s) URL, got "${base.slice(0, 80)}"`);
  return {
    minCredits: boundedNumber(env, 'KEYPOOL_MIN_CREDITS', DEFAULT_MIN_CREDITS, { min: 0, max: 1_000_000 }),
    defaultMaxUses: boundedNumber(env, 'KEYPOOL_DEFAULT_MAX_USES', DEFAULT_MAX_USES, { min: 0, max: 1000, integer: true }),
    providerBaseUrl: base.replace(/\/+$/, ''),
    balanceRate: boundedNumber(env, 'KEYPOOL_BALANCE_RATE', DEFAULT_BALANCE_RATE, { min: 0, max: MAX_BALANCE_RATE, exclusiveMin: true }),
    balanceConcurrency: boundedNumber(env, 'KEYPOOL_BALANCE_CONCURRENCY', DEFAULT_BALANCE_CONCURRENCY, { min: 1, max: 64, integer: true }),
  };
}
