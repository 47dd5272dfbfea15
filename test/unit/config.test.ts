/** Maintenance's settings (readMaintenanceConfig in lib/config.ts): defaults, and a clear refusal naming the variable. */
import { describe, expect, it } from 'vitest';
import { ConfigError, readMaintenanceConfig } from '../../lib/config.js';

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
