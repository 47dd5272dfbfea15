/** Stage settings from CDK context: the stage's typed defaults, validated overrides, clear refusals. */
import { describe, expect, it } from 'vitest';
import { resolveStageConfig, STAGE_CONFIG, StageConfigError } from '../../infra/config.js';

describe('resolveStageConfig', () => {
  it('uses dev when no stage is given, and the prod settings for -c stage=prod', () => {
    expect(resolveStageConfig({})).toEqual(STAGE_CONFIG.dev);
    expect(resolveStageConfig({ stage: 'prod' })).toEqual(STAGE_CONFIG.prod);
    expect(STAGE_CONFIG.prod).toMatchObject({ removal: 'retain', deletionProtection: true });
  });

  it('applies each override given on the command line (context values arrive as strings)', () => {
    // Act
    const config = resolveStageConfig({
      stage: 'prod',
      alarmEmail: 'ops@example.com',
      poolAlarms: 'default:5,sdxl:2',
      maintenanceEveryMinutes: '30',
      throttleRate: '200',
      throttleBurst: '400',
      migrationBucket: 'legacy-export',
      legacyTable: 'old-keys',
    });
    // Assess
    expect(config).toMatchObject({
      stage: 'prod',
      alarmEmail: 'ops@example.com',
      pools: [
        { pool: 'default', minUsableKeys: 5 },
        { pool: 'sdxl', minUsableKeys: 2 },
      ],
      maintenanceEveryMinutes: 30,
      throttle: { rateLimit: 200, burstLimit: 400 },
      migration: { sourceBucket: 'legacy-export', legacyTable: 'old-keys' },
    });
  });

  it.each([
    [{ stage: 'staging' }, /-c stage/],
    [{ alarmEmail: 'not-an-address' }, /-c alarmEmail/],
    [{ poolAlarms: 'default' }, /-c poolAlarms/],
    [{ maintenanceEveryMinutes: '0' }, /-c maintenanceEveryMinutes/],
    [{ throttleRate: '1.5' }, /-c throttleRate/],
    [{ migrationBucket: 'Not_A_Bucket' }, /-c migrationBucket/],
    [{ legacyTable: 'a b' }, /-c legacyTable/],
  ])('refuses %j with a message naming the context key', (context, message) => {
    expect(() => resolveStageConfig(context)).toThrow(StageConfigError);
    expect(() => resolveStageConfig(context)).toThrow(message);
  });
});
