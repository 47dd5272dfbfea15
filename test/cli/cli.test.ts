/**
 * The real `keypool` bin on DynamoDB Local. Where a command prints the API's body (--json),
 * the test asks the real local server over the same table for the same thing and compares.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/dynamodb-local.js';
import type { LocalServer } from '../../lib/local/server.js';
import { type CliRun, runKeypool, startKeypool } from '../support/cli.js';
import { DENIED_PRINCIPAL, startDenyingDynamo } from '../support/denying-dynamo.js';
import { createTestTable, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import type { KeyViewBody, LeaseGrantBody } from '../support/pool-api.js';
import { call, startTestServer } from '../support/server.js';

let env: Record<string, string>;
let table: TestTable;
let server: LocalServer;
let provider: FakeProvider;

beforeAll(async () => {
  table = await createTestTable('cli');
  env = { KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint, KEYPOOL_TABLE: table.tableName };
  server = await startTestServer(table.tableName);
  provider = await startFakeProvider();
});

afterAll(async () => {
  await server.close();
  await provider.close();
});

interface ImportJson {
  imported: number;
  duplicates: number;
  keys: KeyViewBody[];
}

/** Runs keypool with the test table's environment. */
function keypool(args: string[], stdin?: string): Promise<CliRun> {
  return runKeypool(args, env, stdin);
}

/** The --json body of a run that must succeed. */
function body(run: CliRun): unknown {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

/** A run that must succeed, its output not JSON. */
function ok(run: CliRun): string {
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

/** What the API answers for GET `path`. */
async function api(path: string): Promise<unknown> {
  const answer = await call(server.url, 'GET', path);
  expect(answer.status, path).toBe(200);
  return answer.body;
}

/** Imports fresh fake keys into `pool` through the CLI. */
async function addKeys(pool: string, count: number): Promise<{ keys: KeyViewBody[]; secrets: string[] }> {
  const secrets = Array.from({ length: count }, (_, i) => fakeKey(`${i}-`));
  const imported = body(await keypool(['add', ...secrets, '--pool', pool, '--json'])) as ImportJson;
  return { keys: imported.keys, secrets };
}

/** A refusal: the exit code, and one line on stderr. */
function refused(run: CliRun, code: number): string {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stdout).toBe('');
  return run.stderr.trim();
}

describe('keypool CLI', () => {
  it('retire, add --revive, pool delete --retire-keys, and a dry lease that says why: as the API', async () => {
    // Prepare
    const pool = uniqueName('retire');
    const { keys, secrets } = await addKeys(pool, 2);
    const [first, second] = keys.map((k) => k.keyId);
    // Act
    const retired = body(await keypool(['retire', first ?? '', '--pool', pool, '--json'])) as KeyViewBody;
    const notEmpty = refused(await keypool(['pool', 'delete', pool]), 1);
    const readded = ok(await keypool(['add', secrets[0] ?? '', '--pool', pool]));
    const revived = body(await keypool(['add', secrets[0] ?? '', '--pool', pool, '--revive', '--json']));
    await keypool(['disable', second ?? '', '--pool', pool]);
    await keypool(['retire', first ?? '', '--pool', pool]);
    const dry = refused(await keypool(['lease', '--pool', pool]), 1);
    const deleted = body(await keypool(['pool', 'delete', pool, '--retire-keys', '--json']));
    // Assess
    expect(retired).toMatchObject({ keyId: first, status: 'retired', statusBy: 'operator', statusReason: 'retired' });
    expect(notEmpty).toContain('--retire-keys');
    expect(readded).toContain('retired 1, revived 0');
    expect(revived).toMatchObject({ revived: 1, keys: [{ keyId: first, status: 'active' }] });
    expect(dry).toContain('not usable: 1 disabled');
    expect(dry).toContain('keypool status');
    expect(deleted).toEqual({ pool, deleted: true, retiredKeys: 1 });
    expect((await call(server.url, 'GET', `/pools/${pool}`)).status).toBe(404);
  });

  it('pool delete, and no other command, takes the legacy names "." and ".." that an older version created: their keys retired, the pools gone', async () => {
    // Prepare: pools under the two names refused now, each with a key, as an older CLI made them.
    const broker = table.broker();
    const keyIds: string[] = [];
    for (const legacy of ['.', '..'])
      keyIds.push(...(await broker.importKeys(legacy, [{ apiKey: fakeKey('legacy-') }])).keys.map((k) => k.keyId));
    // Act
    const others = [
      await keypool(['pool', 'set', '..']),
      await keypool(['pool', 'show', '.']),
      await keypool(['add', fakeKey(), '--pool', '.']),
      await keypool(['lease', '--pool', '..']),
      await keypool(['list', '--pool', '.']),
    ];
    const notEmpty = refused(await keypool(['pool', 'delete', '..']), 1);
    const deleted = [
      body(await keypool(['pool', 'delete', '.', '--retire-keys', '--json'])),
      body(await keypool(['pool', 'delete', '..', '--retire-keys', '--json'])),
    ];
    const keys = await Promise.all(keyIds.map((keyId) => table.store.get(keyId)));
    // Assess
    for (const run of others) expect(refused(run, 2)).toContain('not "." or ".."');
    expect(notEmpty).toContain('pool ".." still holds 1 key(s) that are not retired');
    expect(deleted).toEqual([
      { pool: '.', deleted: true, retiredKeys: 1 },
      { pool: '..', deleted: true, retiredKeys: 1 },
    ]);
    expect(keys).toMatchObject([
      { pool: '.', status: 'retired', statusReason: 'pool_deleted' },
      { pool: '..', status: 'retired', statusReason: 'pool_deleted' },
    ]);
    const pools = (await broker.listPools()).map((p) => p.pool);
    expect(pools).not.toContain('.');
    expect(pools).not.toContain('..');
  });

  it('add from arguments and a file, list, lease, complete, increment, disable, enable — with --json bodies as the API', async () => {
    // Prepare
    const pool = uniqueName('cli');
    const secrets = [fakeKey('a'), fakeKey('b'), fakeKey('c')];
    const file = join(mkdtempSync(join(tmpdir(), 'keypool-')), 'keys.txt');
    writeFileSync(file, `# operator keys\n${secrets[1] ?? ''}\n\n  ${secrets[2] ?? ''}  \n`);
    // Act + Assess: add
    const add = await keypool(['add', secrets[0] ?? '', '--file', file, '--pool', pool, '--label', 'ops', '--json']);
    const imported = body(add) as ImportJson;
    expect(imported).toMatchObject({ imported: 3, duplicates: 0 });
    expect(add.stdout).not.toContain(secrets[0]);
    // lease (the old --find --max-uses=3)
    const grant = body(
      await keypool(['lease', '--pool', pool, '--max-uses', '3', '--ttl', '60', '--json']),
    ) as LeaseGrantBody;
    expect(Object.keys(grant).sort()).toEqual(['apiKey', 'expiresAt', 'keyId', 'leaseId', 'pool', 'usageCount']);
    expect(grant).toMatchObject({ apiKey: secrets[0], pool, usageCount: 0 });
    // complete
    const complete = await keypool(['complete', grant.leaseId, '--pool', pool, '--outcome', 'success', '--json']);
    expect(body(complete)).toEqual({ keyId: grant.keyId, usageCount: 1, status: 'active' });
    // increment
    expect(body(await keypool(['increment', grant.keyId, '--pool', pool, '--json']))).toEqual({
      keyId: grant.keyId,
      usageCount: 2,
    });
    // disable / enable
    const disable = await keypool(['disable', grant.keyId, '--pool', pool]);
    expect(disable).toMatchObject({ code: 0, stdout: `${grant.keyId} is disabled\n` });
    const listed = await keypool(['list', '--pool', pool, '--status', 'disabled', '--json']);
    expect(body(listed)).toEqual(await api(`/pools/${pool}/keys?status=disabled`));
    expect(body(listed)).toMatchObject({
      keys: [{ keyId: grant.keyId, usageCount: 2, status: 'disabled' }],
      cursor: null,
    });
    const enabled = body(await keypool(['enable', grant.keyId, '--pool', pool, '--json'])) as KeyViewBody;
    expect(enabled).toMatchObject({ keyId: grant.keyId, status: 'active' });
    // list: the API's body, and a readable table
    expect(body(await keypool(['list', '--pool', pool, '--json']))).toEqual(await api(`/pools/${pool}/keys`));
    const table = await keypool(['list', '--pool', pool]);
    expect(table.stdout).toMatch(/^keyId\s+pool\s+maskedKey\s+usageCount\s+status/);
    expect(table.stdout).toContain('3 key(s)');
    for (const secret of secrets) expect(table.stdout + listed.stdout + complete.stdout).not.toContain(secret);
  });

  it('add creates its pool with the default policy', async () => {
    // Prepare
    const pool = uniqueName('created');
    // Act
    await addKeys(pool, 1);
    const shown = body(await keypool(['pool', 'show', pool, '--json'])) as Record<string, unknown>;
    // Assess
    expect(shown).toEqual(await api(`/pools/${pool}`));
    expect(shown).toMatchObject({
      pool,
      maxUses: 3,
      leaseTtlSeconds: 300,
      cooldownSeconds: 60,
      provider: 'stability',
      minCredits: 3,
    });
  });

  it('pool set creates a pool, a second set changes only what it gives; show and list print what the API answers', async () => {
    // Prepare
    const pool = uniqueName('policy');
    // Act
    const created = body(
      await keypool(['pool', 'set', pool, '--max-uses', '5', '--lease-ttl', '120', '--json']),
    ) as Record<string, unknown>;
    const changed = body(
      await keypool([
        'pool',
        'set',
        pool,
        '--cooldown',
        '90',
        '--provider',
        'none',
        '--min-credits',
        '2.5',
        '--proxy-attempts',
        '4',
        '--proxy-timeout',
        '300',
        '--json',
      ]),
    ) as Record<string, unknown>;
    const shown = await keypool(['pool', 'show', pool, '--json']);
    const listed = await keypool(['pool', 'list', '--json']);
    const text = await keypool(['pool', 'show', pool]);
    // Assess
    expect(created).toMatchObject({
      pool,
      maxUses: 5,
      leaseTtlSeconds: 120,
      cooldownSeconds: 60,
      provider: 'stability',
      minCredits: 3,
      proxyAttempts: 2,
      proxyTimeoutSeconds: 120,
    });
    expect(changed).toEqual({
      ...created,
      cooldownSeconds: 90,
      provider: 'none',
      minCredits: 2.5,
      proxyAttempts: 4,
      proxyTimeoutSeconds: 300,
      updatedAt: changed.updatedAt,
    });
    expect(body(shown)).toEqual(await api(`/pools/${pool}`));
    expect(body(shown)).toEqual(changed);
    expect(body(listed)).toEqual(await api('/pools'));
    expect((body(listed) as { pools: unknown[] }).pools).toContainEqual(changed);
    expect(text.stdout).toMatch(/^pool\s+maxUses\s+leaseTtlSeconds\s+cooldownSeconds\s+provider\s+minCredits/);
    expect(text.stdout).toContain(pool);
  });

  it('pool show of a pool that does not exist exits 1 saying there is no such pool', async () => {
    // Act
    const run = await keypool(['pool', 'show', uniqueName('absent')]);
    // Assess
    expect(refused(run, 1)).toMatch(/^keypool pool show: no pool "absent-[0-9a-f]+"/);
  });

  it("lease above the pool's cap or lease TTL exits 2 naming it; a lower cap is honoured", async () => {
    // Prepare
    const pool = uniqueName('capped');
    ok(await keypool(['pool', 'set', pool, '--max-uses', '2', '--lease-ttl', '60']));
    const { keys } = await addKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    ok(await keypool(['increment', keyId, '--pool', pool]));
    // Act
    const aboveCap = await keypool(['lease', '--pool', pool, '--max-uses', '3']);
    const aboveTtl = await keypool(['lease', '--pool', pool, '--ttl', '61']);
    const lower = await keypool(['lease', '--pool', pool, '--max-uses', '0']);
    const atCap = await keypool(['lease', '--pool', pool, '--max-uses', '2', '--ttl', '60', '--json']);
    // Assess
    expect(refused(aboveCap, 2)).toBe(`keypool lease: maxUses 3 is above pool "${pool}"'s cap of 2`);
    expect(refused(aboveTtl, 2)).toBe(`keypool lease: ttlSeconds 61 is above pool "${pool}"'s leaseTtlSeconds of 60`);
    expect(refused(lower, 1)).toContain('has no active key with usageCount <= 0');
    expect(body(atCap)).toMatchObject({ keyId, usageCount: 1 });
  });

  it('reset sets the count under its pool (default 0) and prints the KeyView the API lists', async () => {
    // Prepare
    const pool = uniqueName('reset');
    const { keys } = await addKeys(pool, 1);
    const keyId = keys[0]?.keyId ?? '';
    for (let i = 0; i < 4; i++) ok(await keypool(['increment', keyId, '--pool', pool]));
    // Act
    const toOne = body(await keypool(['reset', keyId, '--pool', pool, '--to', '1', '--json'])) as KeyViewBody;
    const listedAfterOne = (await api(`/pools/${pool}/keys`)) as { keys: KeyViewBody[] };
    const toZero = await keypool(['reset', keyId, '--pool', pool]);
    const grant = body(await keypool(['lease', '--pool', pool, '--json'])) as LeaseGrantBody;
    // Assess
    expect(toOne).toMatchObject({ keyId, pool, usageCount: 1, status: 'active' });
    expect(listedAfterOne.keys).toEqual([toOne]);
    expect(toZero).toMatchObject({ code: 0, stdout: `${keyId}: usageCount 0, active\n` });
    expect(grant).toMatchObject({ keyId, usageCount: 0 });
  });

  it('a key or lease id used under another pool exits 1 (key_not_found / lease_not_found) and leaves the key as it was', async () => {
    // Prepare
    const [home, other] = [uniqueName('home'), uniqueName('other')];
    const { keys } = await addKeys(home, 1);
    await addKeys(other, 1);
    const keyId = keys[0]?.keyId ?? '';
    const grant = body(await keypool(['lease', '--pool', home, '--json'])) as LeaseGrantBody;
    // Act
    const runs = {
      increment: await keypool(['increment', keyId, '--pool', other]),
      reset: await keypool(['reset', keyId, '--pool', other, '--to', '7']),
      disable: await keypool(['disable', keyId, '--pool', other]),
      enable: await keypool(['enable', keyId, '--pool', other]),
      complete: await keypool(['complete', grant.leaseId, '--pool', other, '--outcome', 'invalid_key']),
    };
    // Assess
    expect(refused(runs.increment, 1)).toBe(`keypool increment: no key with id "${keyId}"`);
    expect(refused(runs.reset, 1)).toBe(`keypool reset: no key with id "${keyId}"`);
    expect(refused(runs.disable, 1)).toBe(`keypool disable: no key with id "${keyId}"`);
    expect(refused(runs.enable, 1)).toBe(`keypool enable: no key with id "${keyId}"`);
    expect(refused(runs.complete, 1)).toMatch(/^keypool complete: no open or recently completed lease "/);
    const [key] = (body(await keypool(['list', '--pool', home, '--json'])) as { keys: KeyViewBody[] }).keys;
    expect(key).toMatchObject({ keyId, usageCount: 1, status: 'active' });
    expect(body(await keypool(['complete', grant.leaseId, '--pool', home, '--json']))).toEqual({
      keyId,
      usageCount: 1,
      status: 'active',
    });
  });

  it('status shows a key reported invalid_key as suspect, per pool with its own cap', async () => {
    // Prepare
    const pool = uniqueName('suspect');
    ok(await keypool(['pool', 'set', pool, '--max-uses', '4']));
    await addKeys(pool, 2);
    const grant = body(await keypool(['lease', '--pool', pool, '--json'])) as LeaseGrantBody;
    // Act
    const completed = body(
      await keypool(['complete', grant.leaseId, '--pool', pool, '--outcome', 'invalid_key', '--json']),
    );
    const status = body(await keypool(['status', '--json'])) as { pools: Record<string, unknown>[] };
    const text = await keypool(['status']);
    const suspects = body(await keypool(['list', '--pool', pool, '--status', 'suspect', '--json'])) as {
      keys: KeyViewBody[];
    };
    // Assess
    expect(completed).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'suspect' });
    expect(Object.keys(status)).toEqual(['pools']);
    expect(status.pools.find((p) => p.pool === pool)).toEqual({
      pool,
      maxUses: 4,
      total: 2,
      active: 1,
      cooling: 0,
      exhausted: 0,
      disabled: 0,
      suspect: 1,
      undecryptable: 0,
      retired: 0,
      usable: 1,
      credits: 0,
      usableCredits: 0,
      unchecked: 2,
      oldestCheck: null,
    });
    expect(text.stdout).toMatch(
      /^pool\s+maxUses\s+total\s+active\s+cooling\s+suspect\s+exhausted\s+disabled\s+undecryptable\s+retired\s+usable\s+usableCredits\s+credits\s+unchecked\s+oldestCheck/,
    );
    expect(text.stdout).toMatch(new RegExp(`^${pool}\\s+4\\s+2\\s+1\\s+0\\s+1\\s+0\\s+0\\s+0\\s+0\\s+1\\s`, 'm'));
    expect(suspects.keys.map((k) => k.keyId)).toEqual([grant.keyId]);
  });

  it('status counts a key resting after rate_limited as cooling, not active or usable', async () => {
    // Prepare
    const pool = uniqueName('cooling');
    await addKeys(pool, 2);
    const grant = body(await keypool(['lease', '--pool', pool, '--json'])) as LeaseGrantBody;
    // Act
    const completed = body(
      await keypool([
        'complete',
        grant.leaseId,
        '--pool',
        pool,
        '--outcome',
        'rate_limited',
        '--retry-after',
        '600',
        '--json',
      ]),
    );
    const status = body(await keypool(['status', '--json'])) as { pools: Record<string, unknown>[] };
    // Assess
    expect(completed).toEqual({ keyId: grant.keyId, usageCount: 0, status: 'cooling' });
    expect(status.pools.find((p) => p.pool === pool)).toMatchObject({ total: 2, active: 1, cooling: 1, usable: 1 });
  });

  it("maintain asks the provider about suspect keys first, at most --max-checks, and confirms (401: disabled) or clears them; a none pool is never asked, its client's report rests until its end", async () => {
    // Prepare: two keys reported invalid_key in a stability pool (one the provider knows, one it
    // answers 401 for), then a never-checked key added there; one reported key in a none pool.
    const [checkedPool, uncheckedPool] = [uniqueName('stab'), uniqueName('none')];
    ok(await keypool(['pool', 'set', uncheckedPool, '--provider', 'none']));
    const { keys, secrets } = await addKeys(checkedPool, 2);
    const { secrets: uncheckedSecrets } = await addKeys(uncheckedPool, 1);
    provider.setKey(secrets[0] ?? '', { credits: 20 });
    for (const pool of [checkedPool, checkedPool, uncheckedPool]) {
      const grant = body(await keypool(['lease', '--pool', pool, '--json'])) as LeaseGrantBody;
      ok(await keypool(['complete', grant.leaseId, '--pool', pool, '--outcome', 'invalid_key']));
    }
    const { secrets: later } = await addKeys(checkedPool, 1);
    provider.setKey(later[0] ?? '', { credits: 20 });
    const maintainEnv = { ...env, STABILITY_API_BASE_URL: provider.url, KEYPOOL_BALANCE_RATE: '10' };
    // Balance reads (a key's account is asked for once besides, the first time).
    const asked = (secret: string | undefined): number =>
      provider.requests.filter((r) => r.apiKey === secret && r.path === '/v1/user/balance').length;
    // Act
    const first = body(
      await runKeypool(['maintain', '--pool', checkedPool, '--max-checks', '1', '--json'], maintainEnv),
    ) as Record<string, unknown>;
    const laterAskedFirst = asked(later[0]);
    // The two suspects are ordered by key id: whichever went first, the next run asks the other,
    // every other key, and last the key the provider disabled (re-checked: still refused, which
    // changes nothing and is no answer the breaker counts).
    const disabledFirst = asked(secrets[1]) === 1;
    const second = body(await runKeypool(['maintain', '--pool', checkedPool, '--json'], maintainEnv));
    const unasked = body(await runKeypool(['maintain', '--pool', uncheckedPool, '--json'], maintainEnv));
    const text = await runKeypool(['maintain', '--pool', checkedPool], maintainEnv);
    const listed = body(await keypool(['list', '--pool', checkedPool, '--json'])) as { keys: KeyViewBody[] };
    // Assess
    expect(Object.keys(first)).toEqual([
      'checked',
      'active',
      'exhausted',
      'disabled',
      'cooling',
      'suspect',
      'undecryptable',
      'errors',
      'providerAuthBreaker',
    ]);
    expect(first).toMatchObject({ checked: 1, suspect: 1, exhausted: 0, cooling: 0, errors: [] });
    expect(Number(first.active) + Number(first.disabled)).toBe(2);
    expect(laterAskedFirst).toBe(0);
    expect(second).toEqual({
      checked: 3,
      active: 2,
      exhausted: 0,
      disabled: 1,
      cooling: 0,
      suspect: 0,
      undecryptable: 0,
      errors: [],
      providerAuthBreaker: disabledFirst
        ? { open: false, refusals: 0, answers: 2 }
        : { open: false, refusals: 1, answers: 3 },
    });
    // Nobody confirms a report in a none pool: the client's suspect rests until its end, then is active.
    expect(unasked).toEqual({
      checked: 0,
      active: 0,
      exhausted: 0,
      disabled: 0,
      cooling: 0,
      suspect: 1,
      undecryptable: 0,
      errors: [],
      providerAuthBreaker: { open: false, refusals: 0, answers: 0 },
    });
    expect(asked(uncheckedSecrets[0])).toBe(0);
    expect(text.stdout).toMatch(
      /^checked 3, 0 error\(s\); keys after the run: active 2, exhausted 0, disabled 1, cooling 0, suspect 0, undecryptable 0$/m,
    );
    const status = (id: string | undefined): string | undefined => listed.keys.find((k) => k.keyId === id)?.status;
    expect([status(keys[0]?.keyId), status(keys[1]?.keyId)]).toEqual(['active', 'disabled']);
  });

  it('maintain exits 1, after its report, when it read no balance (every request failed, nothing answers) or the provider-auth breaker opened', async () => {
    // Prepare: a pool whose keys the provider answers 500 for; a pool of five keys it refuses (401).
    const failing = uniqueName('failing');
    const { secrets } = await addKeys(failing, 2);
    for (const secret of secrets) provider.setKey(secret, { balanceStatus: 500 });
    const refusing = uniqueName('refusing');
    await addKeys(refusing, 5);
    const maintainEnv = { ...env, STABILITY_API_BASE_URL: provider.url, KEYPOOL_BALANCE_RATE: '10' };
    const nothing = `http://127.0.0.1:${await freePort()}`;
    // Act
    const erroring = await runKeypool(['maintain', '--pool', failing, '--json'], maintainEnv);
    const unreachable = await runKeypool(['maintain', '--pool', failing], {
      ...maintainEnv,
      STABILITY_API_BASE_URL: nothing,
    });
    const breaker = await runKeypool(['maintain', '--pool', refusing, '--json'], maintainEnv);
    // Assess: before, all three exited 0, which a schedule or CI reads as a healthy run.
    expect(erroring.code, erroring.stderr).toBe(1);
    expect(JSON.parse(erroring.stdout)).toMatchObject({ checked: 2, providerAuthBreaker: { answers: 0 } });
    expect(erroring.stderr.trim()).toMatch(
      /^keypool maintain: no balance was read from http:\/\/127\.0\.0\.1:\d+ \(STABILITY_API_BASE_URL\): 2 key\(s\) failed, the first: provider answered 500 server_error$/,
    );
    expect(unreachable.code, unreachable.stderr).toBe(1);
    // Every check failed: the counts after it are the keys' statuses as they were, and say so.
    expect(unreachable.stdout).toMatch(/^checked \d+, [1-9]\d* error\(s\); keys after the run: active \d+, /m);
    expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
    expect(unreachable.stderr.trim()).toMatch(
      /^keypool maintain: no balance was read from (.+) \(STABILITY_API_BASE_URL\): \d+ key\(s\) failed, the first: /,
    );
    expect(unreachable.stderr).toContain(`from ${nothing} (STABILITY_API_BASE_URL)`);
    expect(breaker.code, breaker.stderr).toBe(1);
    expect(JSON.parse(breaker.stdout)).toMatchObject({ providerAuthBreaker: { open: true, refusals: 5, answers: 5 } });
    expect(breaker.stderr.trim()).toBe(
      'keypool maintain: provider-auth breaker open: 5 of 5 answers were 401/403 and no key was disabled',
    );
    expect(erroring.stderr + unreachable.stderr + breaker.stderr).not.toMatch(/sk-test-/);
  });

  it('add --verify exits 1 when a key was left unverified (not stored), after printing what it stored', async () => {
    // Prepare: a key the provider answers for, one it answers 500 for.
    const pool = uniqueName('verify');
    const [good, silent] = [fakeKey('good-'), fakeKey('silent-')];
    provider.setKey(good, { credits: 10 });
    provider.setKey(silent, { accountStatus: 500 });
    const verifyEnv = { ...env, STABILITY_API_BASE_URL: provider.url };
    // Act
    const partial = await runKeypool(['add', good, silent, '--pool', pool, '--verify', '--json'], verifyEnv);
    const again = await runKeypool(['add', good, '--pool', pool, '--verify', '--json'], verifyEnv);
    // Assess: before, the first exited 0 with a key silently left out.
    expect(partial.code, partial.stderr).toBe(1);
    expect(JSON.parse(partial.stdout)).toMatchObject({ imported: 1, rejected: 0, unverified: 1 });
    expect(partial.stderr.trim()).toBe(
      'keypool add: 1 key(s) not stored: the provider did not answer for them; run the same add again',
    );
    expect(body(again)).toMatchObject({ imported: 0, duplicates: 1, unverified: 0 });
  });

  it("enable --disabled-by provider re-enables at once every key the provider disabled, and leaves an operator's disabled", async () => {
    // Prepare: four keys; maintenance disables two on a documented 401, the operator one.
    const pool = uniqueName('reenable');
    const { keys, secrets } = await addKeys(pool, 4);
    for (const secret of secrets.slice(2)) provider.setKey(secret, { credits: 50 });
    ok(await keypool(['disable', keys[2]?.keyId ?? '', '--pool', pool]));
    ok(await runKeypool(['maintain', '--pool', pool], { ...env, STABILITY_API_BASE_URL: provider.url }));
    // Act
    const text = await keypool(['enable', '--pool', pool, '--disabled-by', 'provider']);
    const json = body(await keypool(['enable', '--pool', pool, '--disabled-by', 'provider', '--json']));
    const listed = body(await keypool(['list', '--pool', pool, '--json'])) as { keys: KeyViewBody[] };
    // Assess
    expect(ok(text)).toBe(`enabled 2 key(s) of pool ${pool} the provider had disabled\n`);
    expect(json).toEqual({ pool, enabled: 0 });
    const status = (i: number): string | undefined => listed.keys.find((k) => k.keyId === keys[i]?.keyId)?.status;
    expect([status(0), status(1), status(2), status(3)]).toEqual(['active', 'active', 'disabled', 'active']);
    expect(refused(await keypool(['enable', keys[0]?.keyId ?? '', '--disabled-by', 'provider']), 2)).toContain(
      'either a key id or --disabled-by',
    );
    expect(refused(await keypool(['enable', '--pool', pool, '--disabled-by', 'operator']), 2)).toContain(
      '--disabled-by',
    );
  });

  it('reads keys from stdin with --file -, and a second add reports duplicates', async () => {
    const pool = uniqueName('stdin');
    const secret = fakeKey();
    const first = await keypool(['add', '--file', '-', '--pool', pool, '--json'], `${secret}\n`);
    const again = await keypool(['add', '--file', '-', '--pool', pool, '--json'], `${secret}\n`);
    expect(body(first)).toMatchObject({ imported: 1, duplicates: 0 });
    expect(body(again)).toMatchObject({ imported: 0, duplicates: 1 });
  });

  it('add --account names the account, account set moves a key, account list shows each with its keys; status shows usable credits', async () => {
    // Prepare
    const pool = uniqueName('acct');
    const secrets = [fakeKey(), fakeKey()];
    const imported = body(
      await keypool(['add', ...secrets, '--pool', pool, '--account', 'org-x', '--json']),
    ) as ImportJson;
    // Act
    const moved = body(
      await keypool(['account', 'set', imported.keys[1]?.keyId ?? '', 'org-y', '--pool', pool, '--json']),
    ) as KeyViewBody;
    const listed = body(await keypool(['account', 'list', '--pool', pool, '--json'])) as {
      accounts: { account: string; keys: number; usableKeys: number }[];
    };
    const text = ok(await keypool(['account', 'list', '--pool', pool]));
    const status = body(await keypool(['status', '--json'])) as { pools: Record<string, unknown>[] };
    // Assess
    expect(imported.keys.map((k) => k.account)).toEqual(['org-x', 'org-x']);
    expect(moved.account).toBe('org-y');
    expect(listed.accounts.map(({ account, keys, usableKeys }) => ({ account, keys, usableKeys }))).toEqual([
      { account: 'org-x', keys: 1, usableKeys: 1 },
      { account: 'org-y', keys: 1, usableKeys: 1 },
    ]);
    expect(text).toMatch(/^account\s+keys\s+usableKeys\s+credits/);
    expect(status.pools.find((p) => p.pool === pool)).toMatchObject({ usable: 2, usableCredits: 0 });
    expect((await keypool(['add', fakeKey(), '--pool', pool, '--account', 'a#b'])).code).toBe(2);
  });

  it('exits 1 with one line on stderr for a domain refusal', async () => {
    // Prepare
    const empty = uniqueName('empty');
    ok(await keypool(['pool', 'set', empty]));
    // Act
    const none = await keypool(['lease', '--pool', empty]);
    const absent = await keypool(['lease', '--pool', uniqueName('absent')]);
    const missing = await keypool([
      'complete',
      'k_000000000000000000000000.0.zzzzzzz.0000000000000000',
      '--pool',
      empty,
    ]);
    // Assess
    expect(refused(none, 1)).toContain('has no active key');
    expect(refused(absent, 1)).toMatch(/^keypool lease: no pool "absent-/);
    expect(refused(missing, 1)).toMatch(/^keypool complete: no open or recently completed lease/);
  });

  it('maintain refuses an unsafe STABILITY_API_BASE_URL before any request: exit 2, one line naming the problem', async () => {
    // Prepare: an empty pool, so a run that wrongly starts checks nothing and exits 0.
    const pool = uniqueName('badurl');
    ok(await keypool(['pool', 'set', pool]));
    for (const url of ['https://api.stability.ai@evil.example', 'https://evil.example/#', 'http://api.stability.ai']) {
      // Act
      const run = await runKeypool(['maintain', '--pool', pool], { ...env, STABILITY_API_BASE_URL: url });
      // Assess
      expect(run.code, url).toBe(2);
      expect(run.stderr.trim().split('\n'), url).toHaveLength(1);
      expect(run.stderr, url).toMatch(/^keypool maintain: STABILITY_API_BASE_URL /);
      expect(run.stdout, url).toBe('');
    }
  });

  it('says in one line when DynamoDB cannot be reached', async () => {
    const run = await runKeypool(['list'], {
      KEYPOOL_DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
      KEYPOOL_TABLE: 'keypool',
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(/^keypool list: cannot reach DynamoDB at http:\/\/127\.0\.0\.1:9$/);
  });

  it("says in one line that the endpoint is not DynamoDB when it names keypool's API port instead", async () => {
    // Prepare: the local stack's API port given where DynamoDB Local's belongs.
    const port = new URL(server.url).port;
    // Act
    const run = await runKeypool(['list'], {
      KEYPOOL_DYNAMODB_ENDPOINT: '',
      KEYPOOL_DYNAMODB_LOCAL_PORT: port,
      KEYPOOL_TABLE: 'keypool',
    });
    // Assess: before, "failed: send a body as JSON, with Content-Type: application/json", the API's own refusal.
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(
      `keypool list: http://127.0.0.1:${port} answers, but not as DynamoDB: KEYPOOL_DYNAMODB_LOCAL_PORT must name DynamoDB's port (the DynamoDB line npm start prints), not the API's or the console's`,
    );
  });

  it('says in one line which permission its credentials lack on which table, never the principal, when DynamoDB denies it', async () => {
    // Prepare
    const denying = await startDenyingDynamo();
    try {
      // Act
      const run = await runKeypool(['status'], {
        KEYPOOL_DYNAMODB_ENDPOINT: denying.url,
        KEYPOOL_TABLE: 'keypool-prod',
      });
      // Assess
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(
        'keypool status: the AWS credentials in use are not allowed dynamodb:Query on table "keypool-prod" (index pool-keys): grant it to them, or use credentials that have it',
      );
      expect(run.stderr).not.toContain(DENIED_PRINCIPAL.split('/')[0]);
      expect(run.stderr).not.toContain('123456789012');
    } finally {
      await denying.close();
    }
  });

  it('stops quietly when the reader of its output goes away (keypool list | head -1)', async () => {
    // Prepare: the reading end closed before the command writes
    const child = startKeypool(['--help'], {});
    child.stdout?.destroy();
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    // Act
    const code = await new Promise<number | null>((done) => child.once('close', (c) => done(c)));
    // Assess: before, an unhandled EPIPE printed a stack trace and exited 1.
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
