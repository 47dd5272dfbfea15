/**
 * The bound of an import with verify (MAX_VERIFY_BATCH) against the figures it comes from: every
 * key may wait for the provider's account endpoint up to the client's timeout, the import asks
 * DEFAULT_IMPORT_CONCURRENCY keys at a time, and the keys function answers within its timeout
 * (API Gateway's 29 s integration limit). The bound is the most whole rounds that fit.
 */
import { describe, expect, it } from 'vitest';
import { ENTRY_POINTS } from '../../infra/entry-points.js';
import { DEFAULT_PROVIDER_TIMEOUT_MS } from '../../lib/adapters/stability-client.js';
import { MAX_IMPORT_BATCH, MAX_VERIFY_BATCH } from '../../lib/domain/primitives.js';
import { DEFAULT_IMPORT_CONCURRENCY } from '../../lib/use-cases/key-import.js';

describe('an import with verify', () => {
  it('takes as many keys as whole rounds of provider timeouts fit in the keys function, and no more', () => {
    // Prepare
    const budgetMs = ENTRY_POINTS.keys.timeoutSeconds * 1000;
    const roundMs = DEFAULT_PROVIDER_TIMEOUT_MS;
    // Act
    const rounds = MAX_VERIFY_BATCH / DEFAULT_IMPORT_CONCURRENCY;
    // Assess
    expect(Number.isInteger(rounds)).toBe(true);
    expect(rounds * roundMs).toBeLessThan(budgetMs);
    expect((rounds + 1) * roundMs).toBeGreaterThan(budgetMs);
    expect(MAX_VERIFY_BATCH).toBeLessThan(MAX_IMPORT_BATCH);
  });
});
