/**
 * The partition-capacity model (bench/partition-model.ts): pure, deterministic, no
 * DynamoDB needed. Rates are kept small so the whole file runs in a few seconds.
 */
import { describe, expect, it } from 'vitest';
import {
  analyticCeiling,
  DEFAULT_MIX,
  dryPoolCost,
  mixFrom,
  mixFromMeasured,
  mixTotals,
  projectedUsesPerSecCeiling,
  proxiedMixFromMeasured,
  recommendShards,
  renderReport,
  scalingReport,
  simulate,
  sustainableRate,
} from '../../../bench/partition-model.js';

describe('request mix', () => {
  it('defaults to the per-use figures measured on DynamoDB Local (3.4 requests, 0.5 RCU, 4.4 WCU)', () => {
    // Prepare
    const mix = DEFAULT_MIX;
    // Act
    const totals = mixTotals(mix);
    // Assess
    expect(totals.requestsPerLease).toBeCloseTo(3.4, 9);
    expect(totals.rcuPerLease).toBeCloseTo(0.5, 9);
    expect(totals.wcuPerLease).toBeCloseTo(4.4, 9);
    expect(totals.indexWcuPerLease).toBe(2);
  });

  it('is rebuilt from a benchmark run: the default from the default figures, refunds from WCU left over', () => {
    // Prepare
    const asMeasured = { rcuPerUse: 0.5, wcuPerUse: 4.4, refusedWritesPerUse: 0.4 };
    // Act
    const same = mixFromMeasured(asMeasured);
    const withRefunds = mixFromMeasured({ ...asMeasured, wcuPerUse: 5.4 });
    const counted = mixFromMeasured({ ...asMeasured, indexWcuPerUse: 2.5 });
    const paging = mixFromMeasured({ ...asMeasured, rcuPerUse: 0.75 });
    // Assess
    expect(same).toEqual(DEFAULT_MIX);
    expect(withRefunds.refundShare).toBeCloseTo(0.5, 9);
    expect(counted.refundShare).toBeCloseTo(0.25, 9);
    expect(paging.queriesPerLease).toBeCloseTo(1.5, 9);
  });

  it('accepts only known fields in range', () => {
    // Prepare
    const unknown = { refusedWrites: 0.2 };
    const negative = { refusedWritesPerLease: -1 };
    // Act
    const given = mixFrom({ refusedWritesPerLease: 0.2 });
    // Assess
    expect(given).toEqual({ ...DEFAULT_MIX, refusedWritesPerLease: 0.2 });
    expect(() => mixFrom(unknown)).toThrow();
    expect(() => mixFrom(negative)).toThrow();
    expect(() => mixFrom({ queriesPerLease: '2' })).toThrow();
  });
});

describe('proxied mix', () => {
  it('pays a completion write only for the uses given back, and each of those moves the sort key back', () => {
    // Prepare
    const measured = { rcuPerUse: 0.5, wcuPerUse: 3.3, refusedWritesPerUse: 0.3, indexWcuPerUse: 2 };
    // Act
    const mix = proxiedMixFromMeasured(measured, 0.1);
    const totals = mixTotals(mix);
    const run = simulate(200, { mix, shards: 1 });
    // Assess
    expect(mix.completionShare).toBe(0.1);
    expect(mix.refundShare).toBe(0.1);
    expect(totals.requestsPerLease).toBeCloseTo(1 + 0.3 + 1 + 0.1, 9);
    expect(totals.baseWcuPerLease).toBeCloseTo(1 + 0.3 + 0.1, 9);
    expect(totals.indexWcuPerLease).toBeCloseTo(2.2, 9);
    expect(run.sustainable).toBe(true);
    expect(run.baseWcuPerLease).toBeGreaterThan(1.2);
    expect(run.baseWcuPerLease).toBeLessThan(1.6);
    expect(run.indexWcuPerLease).toBeGreaterThan(2.05);
    expect(run.indexWcuPerLease).toBeLessThan(2.4);
  });

  it('leaves a client lease mix as it was: every lease completed', () => {
    // Prepare
    const measured = { rcuPerUse: 0.5, wcuPerUse: 4.4, refusedWritesPerUse: 0.4 };
    // Act
    const mix = mixFromMeasured(measured);
    // Assess
    expect(mix.completionShare).toBe(1);
    expect(mixTotals(mix).requestsPerLease).toBeCloseTo(3.4, 9);
  });
});

describe('partition capacity', () => {
  it('tops one unsharded pool out just under 1,000 WCU/s / index WCU per lease', () => {
    // Prepare
    const heavierIndex = mixFrom({ indexWcuPerLease: 4 });
    // Act
    const unsharded = sustainableRate({ shards: 1 });
    const heavier = sustainableRate({ shards: 1, mix: heavierIndex });
    // Assess: below the even-load ceiling (Poisson jitter throttles first), and not far below
    expect(unsharded.analyticCeiling).toBe(500);
    expect(unsharded.leasesPerSec).toBeLessThanOrEqual(500);
    expect(unsharded.leasesPerSec).toBeGreaterThan(0.9 * 500);
    expect(heavier.leasesPerSec).toBeLessThanOrEqual(250);
    expect(heavier.leasesPerSec).toBeGreaterThan(0.9 * 250);
    expect(unsharded.run.sustainable).toBe(true);
  });

  it('grows the sustainable rate with every doubling of S, close to linearly', () => {
    // Prepare
    const counts = [1, 2, 4, 8];
    // Act
    const rates = counts.map((shards) => sustainableRate({ shards }).leasesPerSec);
    // Assess
    for (let i = 1; i < rates.length; i++) expect(rates[i]).toBeGreaterThan(rates[i - 1] as number);
    expect(rates[3]).toBeGreaterThan(7 * (rates[0] as number));
    expect(rates[3]).toBeLessThanOrEqual(analyticCeiling({ shards: 8 }));
  });

  it('recommends the smallest S that sustains the target', () => {
    // Prepare
    const target = 2000;
    // Act
    const recommended = recommendShards(target);
    // Assess
    expect(recommended).toBeDefined();
    const { shards, leasesPerSec } = recommended ?? { shards: 0, leasesPerSec: 0 };
    expect(leasesPerSec).toBeGreaterThanOrEqual(target);
    expect(sustainableRate({ shards: shards - 1 }).leasesPerSec).toBeLessThan(target);
  });

  it('recommends nothing when even 64 shards cannot reach the target', () => {
    // Prepare
    const beyond = analyticCeiling({ shards: 64 }) + 1;
    // Act
    const recommended = recommendShards(beyond);
    // Assess
    expect(recommended).toBeUndefined();
  });

  it('gives the same result for the same seed and another one for another seed', () => {
    // Prepare
    const options = { shards: 2, seed: 7 };
    // Act
    const first = simulate(900, options);
    const again = simulate(900, options);
    const other = simulate(900, { ...options, seed: 8 });
    // Assess
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    expect(sustainableRate(options)).toEqual(sustainableRate(options));
  });
});

describe('requests and throttling', () => {
  it('bills refused writes to the base table only and each lease to the index twice', () => {
    // Prepare: well under the ceiling, so nothing is throttled
    const rate = 200;
    // Act
    const run = simulate(rate, { shards: 1, measureSeconds: 10 });
    // Assess
    expect(run.throttleRatio).toBe(0);
    expect(run.refusedWritesPerLease).toBeGreaterThan(0.3);
    expect(run.refusedWritesPerLease).toBeLessThan(0.5);
    expect(run.baseWcuPerLease).toBeCloseTo(2 + run.refusedWritesPerLease, 1);
    expect(run.indexWcuPerLease).toBe(2);
    expect(run.rcuPerLease).toBeCloseTo(0.5, 1);
    expect(run.grantedPerSec).toBeGreaterThan(0.9 * rate);
  });

  it('throttles the base write when its index partition is full (back-pressure) and charges nothing for it', () => {
    // Prepare: 800 leases/s want 1,600 index WCU/s of one partition
    const rate = 800;
    // Act
    const run = simulate(rate, { shards: 1 });
    // Assess
    expect(run.throttled.indexWrite).toBeGreaterThan(0);
    expect(run.throttled.baseWrite).toBe(0);
    expect(run.hottestIndexWcuPerSec).toBeLessThanOrEqual(1000);
    expect(run.grantedPerSec).toBeLessThanOrEqual(500);
    expect(run.failedRatio).toBeGreaterThan(0);
    expect(run.sustainable).toBe(false);
  });

  it('throttles on a hot base partition under its own cause', () => {
    // Prepare: every key item on one base partition (a cold table), index room to spare
    const options = { shards: 8, basePartitions: 1 };
    // Act
    const run = simulate(600, options);
    const ceiling = sustainableRate(options);
    // Assess: 1,000 WCU/s over 2.4 base WCU per lease
    expect(run.throttled.baseWrite).toBeGreaterThan(0);
    expect(run.hottestBaseWcuPerSec).toBeLessThanOrEqual(1000);
    expect(ceiling.leasesPerSec).toBeLessThanOrEqual(Math.ceil(1000 / 2.4));
    expect(ceiling.leasesPerSec).toBeGreaterThan(0.9 * (1000 / 2.4));
  });

  it('shares one partition limit between shard values that land on it (a cold index)', () => {
    // Prepare
    const options = { shards: 8, indexPartitions: 1 };
    // Act
    const result = sustainableRate(options);
    // Assess
    expect(result.leasesPerSec).toBeLessThanOrEqual(500);
  });

  it('probes dry shards with one Query each and refuses a fully dry pool after one Query per shard', () => {
    // Prepare
    const partlyDry = { shards: 8, dryShards: 6 };
    const allDry = { shards: 8, dryShards: 8 };
    // Act
    const partly = simulate(300, { ...partlyDry, measureSeconds: 10 });
    const dry = simulate(100, allDry);
    // Assess: a random shard order meets 6 / (2 + 1) = 2 dry shards before a wet one, on average
    expect(partly.dryProbesPerLease).toBeGreaterThan(1.8);
    expect(partly.dryProbesPerLease).toBeLessThan(2.2);
    // Queries and grants near the window edges need not pair up exactly.
    expect(partly.rcuPerLease).toBeCloseTo(0.5 * (1 + partly.dryProbesPerLease), 2);
    expect(dry.grantedPerSec).toBe(0);
    expect(dry.dryRefusals).toBeGreaterThan(0);
    expect(dry.requestsPerSec / dry.offeredPerSec).toBeCloseTo(8, 0);
    expect(dryPoolCost(64)).toEqual({ queries: 64, rcu: 32 });
  });
});

describe('projections and report', () => {
  it('projects the ceiling from measured heat: uses/s scaled until the hottest partition reaches 1,000 WCU/s', () => {
    // Prepare
    const measured = { usesPerSec: 1000, hottestIndexWcuPerSec: 250 };
    // Act
    const ceiling = projectedUsesPerSecCeiling(measured);
    // Assess
    expect(ceiling).toBe(4000);
    expect(projectedUsesPerSecCeiling({ usesPerSec: 10, hottestIndexWcuPerSec: 0 })).toBe(Infinity);
  });

  it('renders one table row per shard count and the recommendation', () => {
    // Prepare
    const report = scalingReport(600, [1, 2]);
    // Act
    const text = renderReport(report);
    // Assess
    expect(report.rows.map((r) => r.shards)).toEqual([1, 2]);
    expect(report.recommended?.shards).toBe(2);
    expect(text).toContain('| 1 | ');
    expect(text).toContain('| 2 | ');
    expect(text).toContain('recommended for 600 leases/s: S = 2');
    // The KMS requests the target implies, beside the shard count: one Decrypt per key (4 uses) to one per lease.
    expect(report.kms.decryptsPerSec).toEqual({ min: 150, max: 600 });
    expect(text).toContain("KMS at 600 leases/s (each opens its key's secret; 4 uses per key): 150-600 Decrypt/s");
  });
});
