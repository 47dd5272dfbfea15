/**
 * keypool's settings (lib/config.ts): maintenance's defaults and refusals naming the variable, the
 * wrapping keys, the local data dir and what the start banner tells a CLI.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  cliEnvironment,
  ConfigError,
  defaultDataDir,
  localDataDir,
  readMaintenanceConfig,
  readSealingConfig,
} from '../../lib/config.js';

describe('readMaintenanceConfig', () => {
  it("defaults: 5 requests/s, 4 in flight, api.stability.ai (minimum credits and cap are each pool's own)", () => {
    expect(readMaintenanceConfig({})).toEqual({
      providerBaseUrl: 'https://api.stability.ai',
      balanceRate: 5,
      balanceConcurrency: 4,
    });
  });

  it.each([
    ['KEYPOOL_BALANCE_RATE', '0'],
    ['KEYPOOL_BALANCE_RATE', '50'],
    ['KEYPOOL_BALANCE_CONCURRENCY', '0'],
    ['STABILITY_API_BASE_URL', 'api.stability.ai'],
  ])('%s=%s fails fast, naming the variable', (name, value) => {
    expect(() => readMaintenanceConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => readMaintenanceConfig({ [name]: value })).toThrow(name);
  });
});

describe('readSealingConfig', () => {
  const arn = (n: number): string => `arn:aws:kms:eu-west-1:111122223333:key/0000000${n}-1111-2222-3333-444455556666`;

  it.each([
    [{ KEYPOOL_SEALING_PREVIOUS_KEY_FILES: '/old' }, 'KEYPOOL_SEALING_KEY_FILE'],
    [{ KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS: arn(1) }, 'KEYPOOL_SECRETS_KEY_ARN'],
    [{ KEYPOOL_SECRETS_KEY_ARN: arn(2), KEYPOOL_SEALING_PREVIOUS_KEY_FILES: '/old' }, 'KEYPOOL_SEALING_KEY_FILE'],
    [{ KEYPOOL_SEALING_KEY_FILE: '/new', KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS: arn(1) }, 'KEYPOOL_SECRETS_KEY_ARN'],
  ])(
    'previous keys without a current key of their kind are a ConfigError naming it (%o), never ignored',
    (env, needs) => {
      // Act / Assess
      expect(() => readSealingConfig(env)).toThrow(ConfigError);
      expect(() => readSealingConfig(env)).toThrow(needs);
    },
  );

  it('previous keys with their current key are read in order', () => {
    // Act / Assess
    expect(
      readSealingConfig({ KEYPOOL_SEALING_KEY_FILE: '/new', KEYPOOL_SEALING_PREVIOUS_KEY_FILES: '/a, /b' }),
    ).toEqual({
      kind: 'local',
      keyFile: '/new',
      previousKeyFiles: ['/a', '/b'],
    });
    expect(readSealingConfig({ KEYPOOL_SECRETS_KEY_ARN: arn(2), KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS: arn(1) })).toEqual({
      kind: 'kms',
      keyArn: arn(2),
      previousKeyArns: [arn(1)],
    });
  });
});

describe('cliEnvironment: what the npm start banner tells a CLI in another terminal', () => {
  it('is nothing with the defaults, whatever the API port', () => {
    // Act / Assess
    expect(cliEnvironment({})).toEqual([]);
    expect(
      cliEnvironment({ KEYPOOL_PORT: '3100', KEYPOOL_DATA_DIR: defaultDataDir(), KEYPOOL_TABLE: 'keypool' }),
    ).toEqual([]);
  });

  it('names the port, the table and the data dir that differ, with paths made absolute and quoted for a shell', () => {
    // Act
    const words = cliEnvironment({
      KEYPOOL_DYNAMODB_LOCAL_PORT: '8100',
      KEYPOOL_TABLE: 'other',
      KEYPOOL_DATA_DIR: 'data dir',
    });
    // Assess
    expect(words).toEqual([
      'KEYPOOL_DYNAMODB_LOCAL_PORT=8100',
      'KEYPOOL_TABLE=other',
      `KEYPOOL_DATA_DIR='${resolve('data dir')}'`,
    ]);
  });

  it('names the endpoint when one was given, or when a region in the shell would send the CLI to AWS', () => {
    // Act / Assess
    expect(cliEnvironment({ KEYPOOL_DYNAMODB_ENDPOINT: 'http://127.0.0.1:9000' })).toEqual([
      'KEYPOOL_DYNAMODB_ENDPOINT=http://127.0.0.1:9000',
    ]);
    expect(cliEnvironment({ AWS_REGION: 'eu-west-1' })).toEqual(['KEYPOOL_DYNAMODB_ENDPOINT=http://127.0.0.1:8000']);
  });

  it('names the provider the stack was given, which maintain and add --verify ask, and never one it refuses', () => {
    // Act / Assess
    expect(cliEnvironment({ STABILITY_API_BASE_URL: 'http://127.0.0.1:37767/' })).toEqual([
      'STABILITY_API_BASE_URL=http://127.0.0.1:37767',
    ]);
    expect(
      cliEnvironment({ STABILITY_API_BASE_URL: 'https://proxy.example/v', KEYPOOL_PROVIDER_HOSTS: 'proxy.example' }),
    ).toEqual(['STABILITY_API_BASE_URL=https://proxy.example/v', 'KEYPOOL_PROVIDER_HOSTS=proxy.example']);
    expect(cliEnvironment({ STABILITY_API_BASE_URL: 'https://user:secret@api.stability.ai' })).toEqual([]);
  });

  it('names the key files (current and previous) when they are given, instead of the data dir', () => {
    // Act / Assess
    expect(
      cliEnvironment({
        KEYPOOL_DATA_DIR: '/elsewhere',
        KEYPOOL_SEALING_KEY_FILE: 'k/current',
        KEYPOOL_SEALING_PREVIOUS_KEY_FILES: '/old/a,b',
      }),
    ).toEqual([
      `KEYPOOL_SEALING_KEY_FILE=${resolve('k/current')}`,
      `KEYPOOL_SEALING_PREVIOUS_KEY_FILES=/old/a,${resolve('b')}`,
    ]);
  });
});

describe('localDataDir', () => {
  it("is the project's .keypool, not the working directory's, unless KEYPOOL_DATA_DIR names one", () => {
    // Act / Assess
    expect(localDataDir({})).toBe(join(fileURLToPath(new URL('../..', import.meta.url)), '.keypool'));
    expect(localDataDir({ KEYPOOL_DATA_DIR: '/srv/keypool' })).toBe('/srv/keypool');
  });
});
