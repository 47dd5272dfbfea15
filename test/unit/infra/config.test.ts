/** Stage settings from CDK context: the stage's typed defaults, validated overrides, clear refusals. */
import { describe, expect, it } from 'vitest';
import { resolveStageConfig, STAGE_CONFIG, StageConfigError } from '../../../infra/config.js';
import { DEFAULT_POOL } from '../../../lib/domain/types.js';

describe('resolveStageConfig', () => {
  it('uses dev when no stage is given, and the prod settings for -c stage=prod', () => {
    expect(resolveStageConfig({})).toEqual(STAGE_CONFIG.dev);
    expect(resolveStageConfig({ stage: 'prod' })).toEqual(STAGE_CONFIG.prod);
    expect(STAGE_CONFIG.prod).toMatchObject({ removal: 'retain', deletionProtection: true });
  });

  it("serves the domain's default pool on both stages unless pools are given", () => {
    expect(resolveStageConfig({ stage: 'dev' }).pools).toEqual([{ pool: DEFAULT_POOL, minUsableKeys: 1 }]);
    expect(resolveStageConfig({ stage: 'prod' }).pools).toEqual([
      { pool: DEFAULT_POOL, minUsableKeys: 3, minUsableCredits: 30 },
    ]);
  });

  it('takes a minimum of usable credits as a third field: pool:min:credits', () => {
    expect(resolveStageConfig({ pools: 'stability:4:100,sdxl:2' }).pools).toEqual([
      { pool: 'stability', minUsableKeys: 4, minUsableCredits: 100 },
      { pool: 'sdxl', minUsableKeys: 2 },
    ]);
  });

  it('takes the pools from -c pools, or from -c poolAlarms as before, in the same pool:min form', () => {
    // Act
    const viaPools = resolveStageConfig({ pools: 'stability:4,sdxl-turbo:2' });
    const viaPoolAlarms = resolveStageConfig({ poolAlarms: 'stability:4,sdxl-turbo:2' });
    // Assess
    expect(viaPools.pools).toEqual([
      { pool: 'stability', minUsableKeys: 4 },
      { pool: 'sdxl-turbo', minUsableKeys: 2 },
    ]);
    expect(viaPoolAlarms).toEqual(viaPools);
  });

  it.each([
    [{ pools: 'stability:1', poolAlarms: 'stability:1' }, /-c pools or -c poolAlarms/],
    [{ pools: 'stability:1,Stability:2' }, /-c pools: pools "stability" and "Stability"/],
    [{ poolAlarms: 'sdxl-turbo:1,sdxl_turbo:1' }, /-c poolAlarms: pools "sdxl-turbo" and "sdxl_turbo"/],
    [{ pools: 'a/b:1' }, /-c pools: bad pool "a\/b"/],
    [{ pools: 'stability' }, /-c pools/],
  ])('refuses the pool list %j: it would break a policy name, an alarm or an output', (context, message) => {
    expect(() => resolveStageConfig(context)).toThrow(StageConfigError);
    expect(() => resolveStageConfig(context)).toThrow(message);
  });

  it('applies each override given on the command line (context values arrive as strings)', () => {
    // Act
    const config = resolveStageConfig({
      stage: 'prod',
      alarmEmail: 'ops@example.com',
      poolAlarms: 'stability:5,sdxl:2',
      maintenanceEveryMinutes: '30',
      throttleRate: '200',
      throttleBurst: '400',
      migrationBucket: 'legacy-export',
      migrationBucketKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      legacyTable: 'old-keys',
      legacyTableKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/5678abcd-12ab-34cd-56ef-1234567890ab',
    });
    // Assess
    expect(config).toMatchObject({
      stage: 'prod',
      alarmEmail: 'ops@example.com',
      pools: [
        { pool: 'stability', minUsableKeys: 5 },
        { pool: 'sdxl', minUsableKeys: 2 },
      ],
      maintenanceEveryMinutes: 30,
      throttle: { rateLimit: 200, burstLimit: 400 },
      migration: {
        sourceBucket: 'legacy-export',
        sourceBucketKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        legacyTable: 'old-keys',
        legacyTableKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/5678abcd-12ab-34cd-56ef-1234567890ab',
      },
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
    [{ migrationBucket: 'legacy-export', migrationBucketKeyArn: 'alias/legacy' }, /-c migrationBucketKeyArn/],
    [
      { migrationBucketKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
      /-c migrationBucketKeyArn.*-c migrationBucket/,
    ],
    [{ legacyTable: 'old-keys', legacyTableKeyArn: 'alias/legacy' }, /-c legacyTableKeyArn/],
    [
      { legacyTableKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/5678abcd-12ab-34cd-56ef-1234567890ab' },
      /-c legacyTableKeyArn.*-c legacyTable/,
    ],
  ])('refuses %j with a message naming the context key', (context, message) => {
    expect(() => resolveStageConfig(context)).toThrow(StageConfigError);
    expect(() => resolveStageConfig(context)).toThrow(message);
  });
});

describe('resolveStageConfig: the secrets key', () => {
  const OLD = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const OTHER = 'arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef';

  it('has one secrets key, generation 1, and no previous key unless a rotation is under way', () => {
    // Act
    const dev = resolveStageConfig({});
    const prod = resolveStageConfig({ stage: 'prod' });
    // Assess
    expect(dev.secrets).toEqual({ keyGeneration: 1, previousKeyGenerations: [], previousKeyArns: [] });
    expect(prod.secrets).toEqual(dev.secrets);
  });

  it('takes the generation, the previous generations and the previous key ARNs from context', () => {
    // Act
    const config = resolveStageConfig({
      secretsKeyGeneration: '3',
      previousSecretsKeyGenerations: '1,2',
      previousSecretsKeyArns: `${OLD}, ${OTHER}`,
    });
    // Assess
    expect(config.secrets).toEqual({ keyGeneration: 3, previousKeyGenerations: [1, 2], previousKeyArns: [OLD, OTHER] });
  });

  it.each([
    [
      { previousSecretsKeyArns: 'alias/keypool-prod-secrets' },
      /-c previousSecretsKeyArns: "alias\/keypool-prod-secrets" is not a KMS key ARN/,
    ],
    [
      { previousSecretsKeyArns: '1234abcd-12ab-34cd-56ef-1234567890ab' },
      /-c previousSecretsKeyArns: .* is not a KMS key ARN/,
    ],
    [{ previousSecretsKeyArns: 'arn:aws:kms:eu-west-1:111122223333:alias/keypool-prod-secrets' }, /not a KMS key ARN/],
    [{ previousSecretsKeyArns: `${OLD},` }, /-c previousSecretsKeyArns: "" is not a KMS key ARN/],
    [{ previousSecretsKeyArns: `${OLD},${OLD}` }, /-c previousSecretsKeyArns: .* is listed twice/],
    [{ secretsKeyGeneration: '0' }, /-c secretsKeyGeneration/],
    [{ previousSecretsKeyGenerations: 'one' }, /-c previousSecretsKeyGenerations/],
    [{ previousSecretsKeyGenerations: '1' }, /-c previousSecretsKeyGenerations: 1 is the current generation/],
    [
      { secretsKeyGeneration: '3', previousSecretsKeyGenerations: '2,2' },
      /-c previousSecretsKeyGenerations: 2 is listed twice/,
    ],
    [
      { secretsKeyGeneration: '3', previousSecretsKeyGenerations: '0' },
      /-c previousSecretsKeyGenerations: 0 is not a generation/,
    ],
  ])('refuses %j: a key the functions could not use, or a generation that is no other key', (context, message) => {
    expect(() => resolveStageConfig(context)).toThrow(StageConfigError);
    expect(() => resolveStageConfig(context)).toThrow(message);
  });
});
