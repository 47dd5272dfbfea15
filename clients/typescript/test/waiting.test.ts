/**
 * Waiting for a cooling key (leaseWaiting, withKey's maxWaitSeconds, keySource) and the
 * provider's Retry-After on a rate_limited completion, on plain fakes: no HTTP.
 */
import { describe, expect, it } from 'vitest';
import { NoUsableKey } from '../src/errors.js';
import type { CompletionReport, LeaseGrant } from '../src/types.js';
import { type KeySource, keySource, type LeaseWait, leaseWaiting, WaitBudget } from '../src/waiting.js';
import { retryAfterSeconds, withKey } from '../src/with-key.js';

const grant = (n: number): LeaseGrant => ({
  leaseId: `lease-${n}`,
  keyId: `key-${n}`,
  apiKey: `sk-test-${n}`,
  pool: 'p',
  usageCount: 0,
  expiresAt: new Date(0).toISOString(),
});

/** A source that answers each lease with the next of `answers` (a number: NoUsableKey with that retryAfterSeconds; null: without one). */
function scripted(
  answers: (LeaseGrant | number | null)[],
): KeySource & { waits: (LeaseWait | undefined)[]; reports: CompletionReport[] } {
  const waits: (LeaseWait | undefined)[] = [];
  const reports: CompletionReport[] = [];
  return {
    waits,
    reports,
    lease: (request?: LeaseWait) => {
      waits.push(request);
      const next = answers.shift();
      if (next === undefined) return Promise.reject(new Error('no more answers'));
      if (typeof next === 'object' && next !== null) return Promise.resolve(next);
      return Promise.reject(new NoUsableKey('none', next === null ? {} : { retryAfterSeconds: next }));
    },
    complete: (_leaseId: string, report?: CompletionReport) => (reports.push(report ?? {}), Promise.resolve({})),
  };
}

function recorder(): { slept: number[]; sleep: (ms: number) => Promise<void> } {
  const slept: number[] = [];
  return { slept, sleep: (ms) => (slept.push(ms), Promise.resolve()) };
}

describe('leaseWaiting', () => {
  it('waits out each cooldown while the sleeps together stay within the bound, then throws the NoUsableKey it could not wait for', async () => {
    // Prepare
    const source = scripted([2, 2, 2, grant(1)]);
    const { slept, sleep } = recorder();
    // Act
    const error = await leaseWaiting(() => source.lease(), new WaitBudget(5), { sleep, random: () => 0.99 }).catch(
      (e: unknown) => e,
    );
    // Assess
    expect(slept).toEqual([2_000 + 0.99 * 200, 2_000 + 0.99 * 200]);
    expect(slept.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5_000);
    expect(error).toBeInstanceOf(NoUsableKey);
    expect((error as NoUsableKey).retryAfterSeconds).toBe(2);
  });

  it('the jitter never carries a sleep past the bound', async () => {
    // Prepare
    const source = scripted([3, grant(1)]);
    const { slept, sleep } = recorder();
    // Act
    const leased = await leaseWaiting(() => source.lease(), new WaitBudget(3), { sleep, random: () => 0.99 });
    // Assess
    expect(leased.leaseId).toBe('lease-1');
    expect(slept).toEqual([3_000]);
  });

  it('a dry pool with no cooling key is not waited for, whatever the bound', async () => {
    // Prepare
    const source = scripted([null, grant(1)]);
    const { slept, sleep } = recorder();
    // Act
    const error = await leaseWaiting(() => source.lease(), new WaitBudget(60), { sleep }).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(NoUsableKey);
    expect((error as NoUsableKey).retryAfterSeconds).toBeUndefined();
    expect(slept).toEqual([]);
  });
});

describe('withKey waiting', () => {
  it('one bound for the whole call: a wait on a later attempt spends what earlier ones left, and the source is told not to wait itself', async () => {
    // Prepare: the first key is rate limited; then the pool is dry (2 s) twice, with a 4 s bound.
    const source = scripted([grant(1), 2, 2, grant(2)]);
    const { slept, sleep } = recorder();
    let calls = 0;
    // Act
    const error = await withKey({ keys: source, maxWaitSeconds: 4, backoffMs: 0, sleep, random: () => 0.5 }, () =>
      Promise.resolve(new Response(null, { status: ++calls === 1 ? 429 : 200 })),
    ).catch((e: unknown) => e);
    // Assess: 0 ms backoff, one 2.1 s wait; the second 2 s wait would pass 4 s in total.
    expect(error).toBeInstanceOf(NoUsableKey);
    expect(slept).toEqual([0, 2_100]);
    expect(source.waits).toEqual([{ maxWaitSeconds: 0 }, { maxWaitSeconds: 0 }, { maxWaitSeconds: 0 }]);
  });

  it("takes the source's maxWaitSeconds when given none, and 0 (no wait) when neither has one", async () => {
    // Prepare
    const waiting = Object.assign(scripted([1, grant(1)]), { maxWaitSeconds: 2 });
    const plain = scripted([1, grant(1)]);
    const { slept, sleep } = recorder();
    const ok = (): Promise<Response> => Promise.resolve(new Response(null, { status: 200 }));
    // Act
    const response = await withKey({ keys: waiting, sleep, random: () => 0 }, ok);
    const error = await withKey({ keys: plain, sleep }, ok).catch((e: unknown) => e);
    // Assess
    expect(response.status).toBe(200);
    expect(slept).toEqual([1_000]);
    expect((error as NoUsableKey).retryAfterSeconds).toBe(1);
  });

  it.each([
    ['30', 30],
    ['1', 1],
    ['3600', 3600],
    ['86400', 3600],
    ['0', undefined],
    ['1.5', undefined],
    ['Wed, 21 Oct 2015 07:28:00 GMT', undefined],
    [null, undefined],
  ] as const)(
    'a 429 with Retry-After %s completes rate_limited with retryAfterSeconds %s',
    async (header, expected) => {
      // Prepare
      const source = scripted([grant(1)]);
      const headers: Record<string, string> = header === null ? {} : { 'retry-after': header };
      // Act
      await withKey({ keys: source, retries: 0 }, () =>
        Promise.resolve(new Response(null, { status: 429, headers })),
      ).catch(() => undefined);
      // Assess
      expect(source.reports).toEqual([
        expected === undefined ? { outcome: 'rate_limited' } : { outcome: 'rate_limited', retryAfterSeconds: expected },
      ]);
      expect(retryAfterSeconds(new Response(null, { headers }))).toBe(expected);
    },
  );

  it('Retry-After goes only with rate_limited: a 503 carrying one completes as a plain failure', async () => {
    // Prepare
    const source = scripted([grant(1)]);
    // Act
    await withKey({ keys: source, retries: 0 }, () =>
      Promise.resolve(new Response(null, { status: 503, headers: { 'retry-after': '5' } })),
    ).catch(() => undefined);
    // Assess
    expect(source.reports).toEqual([{ outcome: 'failure' }]);
  });
});

describe('keySource', () => {
  it('leases of your own, with the same waiting as a Pool: a cooling key within the bound is waited for, the bound is not passed on', async () => {
    // Prepare
    const calls: unknown[][] = [];
    let dry = true;
    const { slept, sleep } = recorder();
    const source = keySource({
      lease: (request) => {
        calls.push(['lease', request]);
        if (dry) {
          dry = false;
          return Promise.reject(new NoUsableKey('none', { retryAfterSeconds: 1 }));
        }
        return Promise.resolve(grant(1));
      },
      complete: (leaseId, report) => (calls.push(['complete', leaseId, report]), Promise.resolve({})),
      maxWaitSeconds: 1,
      sleep,
      random: () => 0,
    });
    // Act
    const leased = await source.lease({ maxUses: 2 });
    await source.complete(leased.leaseId);
    const tooLong = await keySource({
      ...source,
      lease: () => Promise.reject(new NoUsableKey('none', { retryAfterSeconds: 2 })),
    })
      .lease()
      .catch((e: unknown) => e);
    // Assess
    expect(source.maxWaitSeconds).toBe(1);
    expect(slept).toEqual([1_000]);
    expect(calls).toEqual([
      ['lease', { maxUses: 2 }],
      ['lease', { maxUses: 2 }],
      ['complete', 'lease-1', {}],
    ]);
    expect(tooLong).toBeInstanceOf(NoUsableKey);
  });
});
