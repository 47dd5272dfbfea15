/**
 * The service's side of the client package: a Broker bound as a key source fails with the
 * package's error classes, exactly as the HTTP API's answers would make it fail, and the package
 * has a class for every code the API answers (the one table, lib/http/errors.ts).
 */
import * as client from '@keypool/client';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ERROR_CODES as PACKAGE_CODES } from '../../clients/typescript/src/errors.js';
import { brokerKeySource, type PoolLeasing } from '../../lib/client/broker-key-source.js';
import { LeaseExpired, NoUsableKey, PoolNotFound, SealingUnavailable } from '../../lib/domain/errors.js';
import type {
  CompletionReport,
  CompletionResult,
  KeyStatus,
  LeaseGrant,
  LeaseRequest,
  Outcome,
} from '../../lib/domain/types.js';
import { ERROR_CODES } from '../../lib/http/errors.js';

const grant: LeaseGrant = {
  leaseId: 'lease-1',
  keyId: 'key-1',
  apiKey: 'sk-test-1',
  pool: 'images',
  usageCount: 0,
  expiresAt: new Date(0).toISOString(),
};

/** A broker whose lease and complete answer from the scripts, recording each call. */
function scriptedBroker(
  leases: (LeaseGrant | Error)[],
  completions: Error[] = [],
): PoolLeasing & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    lease: (pool, request) => {
      calls.push(['lease', pool, request]);
      const next = leases.shift() ?? new Error('no more answers');
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    complete: (pool, leaseId, report) => {
      calls.push(['complete', pool, leaseId, report]);
      const next = completions.shift();
      return next ? Promise.reject(next) : Promise.resolve({ keyId: 'key-1', usageCount: 1, status: 'active' });
    },
  };
}

describe('brokerKeySource', () => {
  it("binds a Broker's pool-scoped lease and complete to one pool and waits for a cooling key like a Pool", async () => {
    // Prepare
    const broker = scriptedBroker([new NoUsableKey('images', 3, 1), grant]);
    const slept: number[] = [];
    const sleep = (ms: number): Promise<void> => (slept.push(ms), Promise.resolve());
    const source = brokerKeySource(broker, 'images', { maxWaitSeconds: 1, sleep, random: () => 0 });
    // Act
    const leased = await source.lease({ maxUses: 2 });
    await source.complete(leased.leaseId, { outcome: 'success' });
    // Assess
    expect(source.pool).toBe('images');
    expect(slept).toEqual([1_000]);
    expect(broker.calls).toEqual([
      ['lease', 'images', { maxUses: 2 }],
      ['lease', 'images', { maxUses: 2 }],
      ['complete', 'images', 'lease-1', { outcome: 'success' }],
    ]);
  });

  it("fails with the package's classes, as the API's answers would: the code, the status, the message and the wait", async () => {
    // Prepare
    const broker = scriptedBroker(
      [new NoUsableKey('images', 3, 30), new PoolNotFound('images'), new SealingUnavailable('open', [])],
      [new LeaseExpired('lease-1', grant.expiresAt)],
    );
    const source = brokerKeySource(broker, 'images');
    // Act
    const errors = [
      await source.lease().catch((e: unknown) => e),
      await source.lease().catch((e: unknown) => e),
      await source.lease().catch((e: unknown) => e),
      await source.complete('lease-1', { outcome: 'failure' }).catch((e: unknown) => e),
    ];
    // Assess
    expect(errors[0]).toBeInstanceOf(client.NoUsableKey);
    expect(errors[0]).toMatchObject({ code: 'no_usable_key', status: 409, retryAfterSeconds: 30 });
    expect((errors[0] as Error).message).toBe(new NoUsableKey('images', 3, 30).message);
    expect(errors[1]).toBeInstanceOf(client.PoolNotFound);
    expect(errors[2]).toBeInstanceOf(client.SealingUnavailable);
    expect((errors[2] as client.SealingUnavailable).retryAfterSeconds).toBeGreaterThan(0);
    expect(errors[3]).toBeInstanceOf(client.LeaseExpired);
  });

  it('an error that is not a keypool answer (the database failed) passes as it is', async () => {
    // Prepare
    const failure = new Error('ProvisionedThroughputExceededException');
    const source = brokerKeySource(scriptedBroker([failure]), 'images');
    // Act
    const error = await source.lease().catch((e: unknown) => e);
    // Assess
    expect(error).toBe(failure);
  });
});

describe('the client package and the API agree on error codes', () => {
  it('every code an answer may carry has its own class in the package, and the package has no code the API lacks', () => {
    // Assess
    expect([...PACKAGE_CODES].sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const error = client.errorFromAnswer({ status: 400, body: { error: code, message: 'm' } });
      expect(error.code).toBe(code);
      expect(error).not.toBeInstanceOf(client.KeypoolApiError);
    }
  });
});

describe('the client package and the API agree on bodies', () => {
  it("each body type the package declares (it may not import the service's) is the domain's type of the same meaning", () => {
    // Assess: checked by the type-checker (npm run typecheck)
    expectTypeOf<client.Outcome>().toEqualTypeOf<Outcome>();
    expectTypeOf<client.KeyStatus>().toEqualTypeOf<KeyStatus>();
    expectTypeOf<client.LeaseRequest>().toEqualTypeOf<LeaseRequest>();
    expectTypeOf<client.LeaseGrant>().toEqualTypeOf<LeaseGrant>();
    expectTypeOf<client.CompletionReport>().toEqualTypeOf<CompletionReport>();
    expectTypeOf<client.Completion>().toEqualTypeOf<CompletionResult>();
  });
});
