/**
 * Configuration, read from the environment once. Every variable keypool reads is here; a
 * malformed value fails fast with a message that names it.
 */
import { DEFAULT_TABLE_NAME } from './table.js';
import { DEFAULT_COOLDOWN_SECONDS } from './domain/types.js';

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
