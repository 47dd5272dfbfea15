/**
 * Accounts above keys, against DynamoDB Local and the fake provider answering account and
 * balance by key (several keys per account): one balance read per account, every key showing
 * its account's credits, and an account's state put on all its keys as soon as the write that
 * records it returns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBalanceStore } from '../../lib/adapters/dynamo-balance-store.js';
import { StabilityClient } from '../../lib/adapters/stability-client.js';
import type { BalanceProvider } from '../../lib/ports/balance-provider.js';
import { NoUsableKey } from '../../lib/domain/errors.js';
import type { LeaseGrant, PoolSettings } from '../../lib/domain/types.js';
import type { Reporter } from '../../lib/domain/rules.js';
import { maintain, type MaintenanceOptions } from '../../lib/use-cases/maintenance/maintain.js';
import { accountChange, accountStatusOf } from '../../lib/domain/accounts.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { testSealer } from '../support/sealing.js';

let table: TestTable;
let provider: FakeProvider;

beforeAll(async () => {
  table = await createTestTable('accounts');
  provider = await startFakeProvider();
});

afterAll(async () => {
  await provider.close();
});

/** One run over `pool`; `balance` answers the balance reads in place of the provider when given. */
function run(pool: string, options: Partial<MaintenanceOptions> = {}, balance?: BalanceProvider) {
  const client = new StabilityClient({ baseUrl: provider.url });
  return maintain(
    {
      pools: table.pools,
      keys: table.store,
      sealer: testSealer(),
      balances: new DynamoBalanceStore({ client: table.store.client, tableName: table.tableName }),
      provider: balance ?? client,
      accounts: { provider: client, store: table.accounts },
    },
    { pool, rate: 1000, concurrency: 8, ...options },
  );
}

/** `perAccount` keys in each of `accounts` accounts, registered with the provider; the pool's keys in order. */
async function seed(
  pool: string,
  accounts: number,
  perAccount: number,
  options: { settings?: Partial<PoolSettings>; named?: boolean; credits?: (account: number) => number } = {},
): Promise<{ keyId: string; apiKey: string; account: string }[]> {
  const broker = table.broker();
  await broker.setPool(pool, { maxUses: 1000, minCredits: 3, ...options.settings });
  const keys = Array.from({ length: accounts * perAccount }, (_, i) => ({
    apiKey: fakeKey(`${i}-`),
    account: `org-${pool}-${i % accounts}`,
  }));
  for (let a = 0; a < accounts; a++) provider.setAccount(`org-${pool}-${a}`, options.credits?.(a) ?? 50 + a);
  for (const key of keys) provider.setKey(key.apiKey, { account: key.account });
  const result = await broker.importKeys(
    pool,
    keys.map(({ apiKey, account }) => ({ apiKey, ...(options.named ? { account } : {}) })),
  );
  return result.keys.map((view, i) => ({ keyId: view.keyId, ...(keys[i] as { apiKey: string; account: string }) }));
}

function requestsTo(path: string, from: number, to?: number): number {
  return provider.requests.slice(from, to).filter((r) => r.path === path).length;
}

describe('maintenance reads one balance per account', () => {
  it('100 keys in 10 accounts: 100 account calls and 10 balance reads the first run, 10 balance reads the next; every key shows its account credits', async () => {
    // Prepare
    const pool = uniqueName('ten');
    const keys = await seed(pool, 10, 10);
    const start = provider.requests.length;
    // Act
    const first = await run(pool);
    const between = provider.requests.length;
    const second = await run(pool);
    // Assess
    expect(requestsTo('/v1/user/account', start, between)).toBe(100);
    expect(requestsTo('/v1/user/balance', start, between)).toBe(10);
    expect(first.accounts).toEqual({ asked: 100, learned: 100 });
    expect(requestsTo('/v1/user/account', between)).toBe(0);
    expect(requestsTo('/v1/user/balance', between)).toBe(10);
    expect(second.summary).toMatchObject({ checked: 10, active: 100, errors: [] });
    const views = await table.broker().listAll(pool);
    expect(views).toHaveLength(100);
    for (const view of views) {
      const key = keys.find((k) => k.keyId === view.keyId);
      const index = Number(key?.account.split('-').at(-1));
      expect(view).toMatchObject({ account: key?.account, credits: 50 + index, status: 'active' });
      expect(view.creditsCheckedAt).not.toBeNull();
    }
    // Credits counted once per account: 50 + 51 + ... + 59.
    expect(second.pools[0]).toMatchObject({ credits: 545, usableCredits: 545 });
  });

  it('an empty balance exhausts every key of its account; a later balance with credits brings back exactly those keys', async () => {
    // Prepare
    const pool = uniqueName('empty');
    const keys = await seed(pool, 2, 3, { named: true });
    // Keys 0, 2, 4 are the first account's; 1, 3, 5 the second's.
    const [a0, b0, a1] = keys as [(typeof keys)[0], (typeof keys)[0], (typeof keys)[0]];
    const first = new Set(keys.filter((k) => k.account === a0.account).map((k) => k.keyId));
    const broker = table.broker();
    await broker.updateKey(pool, a1.keyId, { status: 'disabled' });
    provider.setAccount(a0.account, 1);
    const start = provider.requests.length;
    // Act
    const drained = await run(pool);
    // Assess
    expect(requestsTo('/v1/user/account', start)).toBe(0);
    expect(drained.summary).toMatchObject({ checked: 2, active: 3, exhausted: 2, disabled: 1 });
    const after = await broker.listAll(pool);
    for (const view of after.filter((v) => v.account === a0.account && v.keyId !== a1.keyId))
      expect(view).toMatchObject({ status: 'exhausted', statusBy: 'provider', statusReason: 'account_out_of_credits' });
    for (let i = 0; i < 6; i++) expect(first.has((await broker.lease(pool)).keyId)).toBe(false);
    expect(drained.pools[0]).toMatchObject({ usableCredits: 51 });
    // Act: the account is topped up.
    provider.setAccount(a0.account, 40);
    const back = await run(pool);
    // Assess: its keys are back, the operator's disabled one stays disabled.
    expect(back.summary).toMatchObject({ active: 5, exhausted: 0, disabled: 1 });
    const views = await broker.listAll(pool);
    expect(views.find((v) => v.keyId === a1.keyId)).toMatchObject({ status: 'disabled', statusBy: 'operator' });
    expect(views.find((v) => v.keyId === a0.keyId)).toMatchObject({ status: 'active', credits: 40 });
    expect(views.find((v) => v.keyId === b0.keyId)).toMatchObject({ status: 'active', credits: 51 });
  });
});

/**
 * Leases and completes (success) in a loop on `workers` callers until `stop`; each grant is kept
 * with the moment its lease request started.
 */
function leaseLoop(
  pool: string,
  workers: number,
): { stop: () => Promise<void>; grants: { startedAt: number; grant: LeaseGrant }[] } {
  const broker = table.broker();
  const grants: { startedAt: number; grant: LeaseGrant }[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const startedAt = performance.now();
      try {
        const grant = await broker.lease(pool);
        grants.push({ startedAt, grant });
        await broker.complete(pool, grant.leaseId, { outcome: 'success' });
      } catch (error) {
        if (!(error instanceof NoUsableKey)) throw error;
      }
    }
  });
  return {
    grants,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Leases until a key of `account` is granted (the others are completed at once). */
async function leaseOf(pool: string, accountKeys: ReadonlySet<string>): Promise<LeaseGrant> {
  const broker = table.broker();
  for (let i = 0; i < 200; i++) {
    const grant = await broker.lease(pool);
    if (accountKeys.has(grant.keyId)) return grant;
    await broker.complete(pool, grant.leaseId, { outcome: 'success' });
  }
  throw new Error('no key of the account was leased');
}

describe("an account's state reaches all its keys before the completion returns", () => {
  it.each<[string, Reporter]>([
    ['a client report of out_of_credits', { by: 'client' }],
    ['the provider answering 402 (proxy mode)', { by: 'provider' }],
  ])('%s on one key: a concurrent lease loop never gets a sibling afterwards', async (_, reporter) => {
    // Prepare
    const pool = uniqueName('spread');
    const keys = await seed(pool, 2, 8, { named: true, settings: { maxClientCooldownSeconds: 3600 } });
    const account = keys[0]?.account ?? '';
    const siblings = new Set(keys.filter((k) => k.account === account).map((k) => k.keyId));
    const grant = await leaseOf(pool, siblings);
    const loop = leaseLoop(pool, 4);
    await new Promise((done) => setTimeout(done, 100));
    // Act
    await table.broker().complete(pool, grant.leaseId, { outcome: 'out_of_credits' }, reporter);
    const returnedAt = performance.now();
    await new Promise((done) => setTimeout(done, 400));
    await loop.stop();
    // Assess
    const later = loop.grants.filter((g) => g.startedAt > returnedAt);
    expect(later.length).toBeGreaterThan(0);
    expect(later.filter((g) => siblings.has(g.grant.keyId))).toEqual([]);
    const views = await table.broker().listAll(pool);
    for (const view of views.filter((v) => siblings.has(v.keyId) && v.keyId !== grant.keyId))
      expect(view).toMatchObject({
        status: 'exhausted',
        statusBy: reporter.by,
        statusReason: 'account_out_of_credits',
      });
    expect(views.filter((v) => !siblings.has(v.keyId)).every((v) => v.status === 'active')).toBe(true);
  });

  it("a client's out_of_credits report lapses by itself after the pool's maxClientCooldownSeconds", async () => {
    // Prepare
    const pool = uniqueName('lapse');
    const keys = await seed(pool, 1, 4, { named: true, settings: { maxClientCooldownSeconds: 1 } });
    const broker = table.broker();
    const grant = await broker.lease(pool);
    await broker.complete(pool, grant.leaseId, { outcome: 'out_of_credits' });
    await expect(broker.lease(pool)).rejects.toBeInstanceOf(NoUsableKey);
    // Act
    await new Promise((done) => setTimeout(done, 1100));
    // Assess
    const again = await broker.lease(pool);
    expect(keys.map((k) => k.keyId)).toContain(again.keyId);
  });

  it.each([
    ['account', 4],
    ['key', 1],
  ] as const)('rateLimitScope %s: a 429 cools %i key(s) of the account for its Retry-After', async (scope, cooled) => {
    // Prepare
    const pool = uniqueName(`scope-${scope}`);
    await seed(pool, 1, 4, { named: true, settings: { rateLimitScope: scope, maxClientCooldownSeconds: 600 } });
    const broker = table.broker();
    const grant = await broker.lease(pool);
    const before = Date.now();
    // Act
    await broker.complete(pool, grant.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 120 }, { by: 'provider' });
    // Assess
    const views = await broker.listAll(pool);
    const cooling = views.filter((v) => v.status === 'cooling');
    expect(cooling).toHaveLength(cooled);
    for (const view of cooling) {
      const until = Date.parse(view.cooldownUntil ?? '');
      expect(until).toBeGreaterThanOrEqual(before + 119_000);
      expect(until).toBeLessThanOrEqual(Date.now() + 121_000);
    }
  });

  it('a key imported into an exhausted account takes its state', async () => {
    // Prepare
    const pool = uniqueName('inherit');
    const keys = await seed(pool, 1, 2, { named: true });
    const broker = table.broker();
    const grant = await broker.lease(pool);
    await broker.complete(pool, grant.leaseId, { outcome: 'out_of_credits' }, { by: 'provider' });
    // Act
    const { keys: added } = await broker.importKeys(pool, [
      { apiKey: fakeKey('late-'), account: keys[0]?.account ?? '' },
    ]);
    // Assess
    expect(added[0]).toMatchObject({
      status: 'exhausted',
      statusBy: 'provider',
      statusReason: 'account_out_of_credits',
    });
    await expect(broker.lease(pool)).rejects.toBeInstanceOf(NoUsableKey);
  });
});

describe('an import with verify asks the provider first', () => {
  it('stores a key the provider accepts with its account; reports a refused key rejected and an unanswered one unverified, storing neither', async () => {
    // Prepare
    const pool = uniqueName('verify');
    const [good, refused, unanswered] = [fakeKey('good-'), fakeKey('bad-'), fakeKey('down-')];
    provider.setKey(good, { account: 'org-verified' });
    provider.setKey(unanswered, { accountStatus: 500 });
    const broker = table.broker({ verifier: new StabilityClient({ baseUrl: provider.url }) });
    // Act
    const result = await broker.importKeys(
      pool,
      [good, refused, unanswered].map((apiKey) => ({ apiKey })),
      { verify: true },
    );
    // Assess
    expect(result).toMatchObject({ imported: 1, rejected: 1, unverified: 1 });
    expect(result.keys).toHaveLength(1);
    expect(result.keys[0]).toMatchObject({ account: 'org-verified', status: 'active' });
    expect(result.refused?.map((r) => r.outcome)).toEqual(['rejected', 'unverified']);
    expect(JSON.stringify(result)).not.toContain(refused);
    expect((await broker.listAll(pool)).map((k) => k.account)).toEqual(['org-verified']);
    // The account the provider answered is listed at once, as a named one is, not after a maintenance run.
    expect(await table.accounts.record(pool, 'org-verified')).toMatchObject({ status: 'active' });
  });

  it('refuses verify for a pool no provider checks', async () => {
    // Prepare
    const pool = uniqueName('verify-none');
    const broker = table.broker({ verifier: new StabilityClient({ baseUrl: provider.url }) });
    await broker.setPool(pool, { provider: 'none' });
    // Act / Assess
    await expect(broker.importKeys(pool, [{ apiKey: fakeKey() }], { verify: true })).rejects.toThrow(/verify/);
    expect(await broker.listAll(pool)).toEqual([]);
  });
});

describe("a balance read never replaces a newer verdict on its account's record", () => {
  it("the provider's 402 arriving while maintenance reads the account's balance keeps the account exhausted: a key imported after the run takes that state", async () => {
    // Prepare: the account's balance (50) is read, then a proxied call on one of its keys
    // answers 402 before the run writes what it read.
    const pool = uniqueName('newer');
    const keys = await seed(pool, 1, 3, { named: true });
    const account = keys[0]?.account ?? '';
    const broker = table.broker();
    const client = new StabilityClient({ baseUrl: provider.url });
    let spent = false;
    const answeredThen402: BalanceProvider = {
      balance: async (secret) => {
        const answer = await client.balance(secret);
        if (!spent) {
          spent = true;
          const grant = await broker.lease(pool);
          await broker.complete(pool, grant.leaseId, { outcome: 'out_of_credits' }, { by: 'provider' });
        }
        return answer;
      },
    };
    // Act
    await run(pool, { concurrency: 1 }, answeredThen402);
    const { keys: added } = await broker.importKeys(pool, [{ apiKey: fakeKey('after-'), account }]);
    // Assess
    expect(await table.accounts.record(pool, account)).toMatchObject({ status: 'exhausted', statusBy: 'provider' });
    for (const view of await broker.listAll(pool)) expect(view).toMatchObject({ status: 'exhausted' });
    expect(added[0]).toMatchObject({ status: 'exhausted', statusBy: 'provider' });
  });
});

describe('a run allowed N checks asks for at most N balances', () => {
  it('an account whose keys the provider refuses is read through one key, not each in turn, under --max-checks 1', async () => {
    // Prepare: one account of four keys, every one refused by the provider (documented 401).
    const pool = uniqueName('capped');
    const keys = await seed(pool, 1, 4, { named: true });
    for (const key of keys) provider.setKey(key.apiKey, { account: key.account, balanceStatus: 401 });
    const start = provider.requests.length;
    // Act
    const report = await run(pool, { concurrency: 1, maxChecks: 1 });
    // Assess
    expect(requestsTo('/v1/user/balance', start)).toBe(1);
    expect(report.summary.checked).toBe(1);
  });
});

describe('runs that stop early sweep a pool of accounts', () => {
  it('three runs each allowed 2 balance reads cover 6 accounts, the account read longest ago first; a fourth starts again from the oldest', async () => {
    // Prepare: one key per account, each account known, so every read is an account's.
    const pool = uniqueName('sweep');
    const keys = await seed(pool, 6, 1, { named: true });
    const accountOf = new Map(keys.map((k) => [k.apiKey, k.account]));
    const readBy = async (): Promise<string[]> => {
      const start = provider.requests.length;
      await run(pool, { maxChecks: 2 });
      return provider.requests
        .slice(start)
        .filter((r) => r.path === '/v1/user/balance')
        .map((r) => accountOf.get(r.apiKey ?? '') ?? 'unknown');
    };
    // Act
    const first = await readBy();
    const second = await readBy();
    const third = await readBy();
    const fourth = await readBy();
    // Assess: a read of an account writes none of its keys, yet the order moves on past it.
    for (const accounts of [first, second, third, fourth]) expect(new Set(accounts).size).toBe(2);
    expect(new Set([...first, ...second, ...third])).toEqual(new Set(keys.map((k) => k.account)));
    expect(new Set(fourth)).toEqual(new Set(first));
  });
});

describe('which keys a run asks the account of', () => {
  it('a key the provider disabled is not asked for its account again: its balance read says whether it came back', async () => {
    // Prepare: two keys of known accounts, three the provider refuses (401 to every request).
    const pool = uniqueName('refused');
    await seed(pool, 2, 1);
    await table.broker().importKeys(
      pool,
      Array.from({ length: 3 }, (_, i) => ({ apiKey: fakeKey(`gone-${i}-`) })),
    );
    const start = provider.requests.length;
    // Act
    const first = await run(pool);
    const between = provider.requests.length;
    const second = await run(pool);
    // Assess: the first run asks every key's account and disables the three; the next asks none,
    // and still reads each refused key's balance (after the accounts).
    expect(requestsTo('/v1/user/account', start, between)).toBe(5);
    expect(first.summary).toMatchObject({ active: 2, disabled: 3 });
    expect(requestsTo('/v1/user/account', between)).toBe(0);
    expect(requestsTo('/v1/user/balance', between)).toBe(5);
    expect(second.summary).toMatchObject({ active: 2, disabled: 3 });
  });
});

describe('an import writes an account only with a key it adds', () => {
  it('a duplicate named into an account leaves no account record behind; the key keeps no account', async () => {
    // Prepare
    const pool = uniqueName('dup-account');
    const apiKey = fakeKey();
    const broker = table.broker();
    await broker.importKeys(pool, [{ apiKey }]);
    // Act
    const result = await broker.importKeys(pool, [{ apiKey, account: 'org-never' }]);
    // Assess
    expect(result).toMatchObject({ imported: 0, duplicates: 1 });
    expect(result.keys[0]?.account).toBeNull();
    expect(await table.accounts.record(pool, 'org-never')).toBeUndefined();
    expect((await table.accounts.list(pool, 100)).accounts).toEqual([]);
  });

  it("a duplicate named into another account changes neither the key's account nor either record", async () => {
    // Prepare
    const pool = uniqueName('dup-other');
    const apiKey = fakeKey();
    const broker = table.broker();
    await broker.importKeys(pool, [{ apiKey, account: 'org-first' }]);
    const before = await table.accounts.record(pool, 'org-first');
    // Act
    const result = await broker.importKeys(pool, [{ apiKey, account: 'org-second' }]);
    // Assess
    expect(result).toMatchObject({ imported: 0, duplicates: 1 });
    expect(result.keys[0]).toMatchObject({ account: 'org-first' });
    expect(before).toBeDefined();
    expect(await table.accounts.record(pool, 'org-first')).toEqual(before);
    expect(await table.accounts.record(pool, 'org-second')).toBeUndefined();
  });

  it('a key the provider refuses at verify leaves no record of the account it was named into', async () => {
    // Prepare
    const pool = uniqueName('verify-account');
    const broker = table.broker({ verifier: new StabilityClient({ baseUrl: provider.url }) });
    // Act
    const result = await broker.importKeys(pool, [{ apiKey: fakeKey('bad-'), account: 'org-refused' }], {
      verify: true,
    });
    // Assess
    expect(result).toMatchObject({ imported: 0, rejected: 1 });
    expect(await table.accounts.record(pool, 'org-refused')).toBeUndefined();
  });

  it('a batch with one new key and one duplicate in the same account writes that account once, active', async () => {
    // Prepare
    const pool = uniqueName('mixed-account');
    const old = fakeKey();
    const broker = table.broker();
    await broker.importKeys(pool, [{ apiKey: old }]);
    // Act
    const result = await broker.importKeys(pool, [
      { apiKey: old, account: 'org-mixed' },
      { apiKey: fakeKey(), account: 'org-mixed' },
    ]);
    // Assess
    expect(result).toMatchObject({ imported: 1, duplicates: 1 });
    expect(await table.accounts.record(pool, 'org-mixed')).toMatchObject({ account: 'org-mixed', status: 'active' });
    expect((await table.accounts.keysOf(pool, 'org-mixed')).map((k) => k.keyId)).toEqual([result.keys[1]?.keyId]);
  });
});

describe("an account's record keeps the state its keys got, whatever order two reports' writes land in", () => {
  it('a shorter rest written after a longer one leaves the longer on the record, as on the keys; a longer one replaces it', async () => {
    // Prepare
    const pool = uniqueName('record-rest');
    const account = `org-${pool}`;
    const policy = { cooldownSeconds: 1, maxClientCooldownSeconds: 600, rateLimitScope: 'account' } as const;
    const nowMs = Date.now();
    const long = accountChange('rate_limited', 'client', policy, 300, nowMs);
    const short = accountChange('rate_limited', 'client', policy, 10, nowMs);
    const longer = accountChange('rate_limited', 'client', policy, 500, nowMs);
    if (!long || !short || !longer) throw new Error('a rate_limited report under account scope changes the account');
    await table.accounts.writeRecord({ pool, account, ...accountStatusOf(long) }, { change: long, nowMs });
    // Act
    const shortened = await table.accounts.writeRecord(
      { pool, account, ...accountStatusOf(short) },
      { change: short, nowMs },
    );
    // Assess
    expect(shortened).toBe(false);
    expect((await table.accounts.record(pool, account))?.cooldownUntil).toBe(long.stamp.until);
    expect(
      await table.accounts.writeRecord({ pool, account, ...accountStatusOf(longer) }, { change: longer, nowMs }),
    ).toBe(true);
    expect((await table.accounts.record(pool, account))?.cooldownUntil).toBe(longer.stamp.until);
  });

  it("a client's report never replaces the provider's exhausted on the record; the provider's word replaces a client's", async () => {
    // Prepare
    const pool = uniqueName('record-verdict');
    const account = `org-${pool}`;
    const policy = { cooldownSeconds: 1, maxClientCooldownSeconds: 600, rateLimitScope: 'key' } as const;
    const nowMs = Date.now();
    const client = accountChange('out_of_credits', 'client', policy, undefined, nowMs);
    const provider = accountChange('out_of_credits', 'provider', policy, undefined, nowMs);
    if (!client || !provider) throw new Error('an out_of_credits report changes the account');
    await table.accounts.writeRecord({ pool, account, ...accountStatusOf(client) }, { change: client, nowMs });
    // Act
    const verdict = await table.accounts.writeRecord(
      { pool, account, ...accountStatusOf(provider) },
      { change: provider, nowMs },
    );
    const hypothesis = await table.accounts.writeRecord(
      { pool, account, ...accountStatusOf(client) },
      { change: client, nowMs: nowMs + 1 },
    );
    // Assess
    expect([verdict, hypothesis]).toEqual([true, false]);
    expect(await table.accounts.record(pool, account)).toMatchObject({ status: 'exhausted', statusBy: 'provider' });
  });
});
