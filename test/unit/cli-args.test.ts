/**
 * The CLI's argument handling, in process: runCli with captured output and services that
 * fail if touched, so every usage error here is decided before any store is reached; and the
 * flags a valid command line gives reach the use cases as the API's body would (a broker over
 * the in-memory stores).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CliIo, CliServices } from '../../lib/cli/framework.js';
import { runCli } from '../../lib/cli/run-cli.js';
import { Broker } from '../../lib/use-cases/broker.js';
import { MemoryKeyStore, MemoryPoolStore } from '../support/memory-key-store.js';
import { FakeSealer } from '../support/fake-sealer.js';

function capture(): CliIo & { stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    isTTY: false,
    stdout: () => out.join('\n'),
    stderr: () => err.join('\n'),
  };
}

/**
 * Services a usage error must never reach. Loading the sealing key reaches no store (a command
 * that seals or opens reads its key file before it checks its flags' values), so it is allowed.
 */
const untouchable = (): CliServices => {
  const fail = (): never => {
    throw new Error('a service was built for a command line that should have been refused');
  };
  return {
    broker: fail,
    maintenance: fail,
    migration: fail,
    sealing: fail,
    sharding: fail,
    loadSealing: () => Promise.resolve(),
    console: fail,
  };
};

/** A broker (and the reshard's stores) over the in-memory stores; maintenance and migration must not be reached. */
function memoryServices(): {
  services: () => CliServices;
  broker: Broker;
  store: MemoryKeyStore;
  poolStore: MemoryPoolStore;
} {
  const store = new MemoryKeyStore();
  const poolStore = new MemoryPoolStore();
  const broker = new Broker({ store, poolStore, sealer: new FakeSealer() });
  const fail = (): never => {
    throw new Error('only the broker is expected here');
  };
  return {
    broker,
    store,
    poolStore,
    services: () => ({
      broker: () => broker,
      maintenance: fail,
      migration: fail,
      sealing: fail,
      sharding: () => ({ store, pools: poolStore }),
      loadSealing: () => Promise.resolve(),
      console: fail,
    }),
  };
}

const SECRET = 'sk-test-0123456789abcdef0123';

describe('keypool CLI arguments', () => {
  it.each([
    [['lease', '--max-uses', 'three'], '--max-uses: must be a number'],
    [['lease', '--max-uses', '1001'], '--max-uses: must be at most 1000'],
    [['lease', '--max-uses', '2.5'], '--max-uses: must be a whole number'],
    [['lease', '--ttl', '0'], '--ttl: must be at least 1'],
    [['lease', '--ttl', '3601'], '--ttl: must be at most 3600'],
    [['lease', '--pool', 'no spaces'], '--pool: a pool is'],
    [['lease', '--bogus'], 'bogus'],
    [['complete'], 'usage: keypool complete'],
    [['complete', 'x', '--outcome', 'great'], '--outcome: must be one of success,'],
    [['complete', 'x', '--retry-after', '5'], '--retry-after goes with --outcome rate_limited'],
    [['complete', 'x', '--outcome', 'rate_limited', '--retry-after', '0'], '--retry-after: must be at least 1'],
    [['complete', 'x', '--outcome', 'rate_limited', '--retry-after', '3601'], '--retry-after: must be at most 3600'],
    [['complete', 'x', '--pool', 'a/b'], '--pool: a pool is'],
    [['increment'], 'usage: keypool increment'],
    [['increment', 'k', '--pool', ''], '--pool: a pool is'],
    [['enable', 'k', '--pool', 'a b'], '--pool: a pool is'],
    [['disable'], 'usage: keypool disable'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['add'], 'give at least one key'],
    [['add', 'short'], 'key #1: an API key is'],
    [['add', 'sk-test-valid-key-000', '--label', 'bad\u0007label'], '--label: a label is visible text: no control'],
    [['add', 'sk-test-valid-key-000', '--pool', 'x'.repeat(65)], '--pool: a pool is'],
    [['list', '--status', 'gone'], '--status: must be one of active, cooling, exhausted, disabled, suspect'],
    [['list', '--pool', 'a b'], '--pool: a pool is'],
    [['reset'], 'usage: keypool reset'],
    [['reset', 'k', '--to=-1'], '--to: must be at least 0'],
    [['reset', 'k', '--to', '1.5'], '--to: must be a whole number'],
    [['reset', 'k', '--to', '0x10'], '--to: must be a number'],
    [['reset', 'k', '--pool', 'a b'], '--pool: a pool is'],
    [['maintain', '--min-credits', '-1'], "use '--min-credits=-XYZ'"],
    [['add', `--${SECRET}`], 'unknown option (not an option name)'],
    [['add', `--${SECRET}=x`], 'unknown option (not an option name)'],
    [['list', '--bogus'], 'unknown option "--bogus"'],
    [['maintain', '--min-credits=-1'], '--min-credits: must be at least 0'],
    [['maintain', '--max-checks', 'all'], '--max-checks: must be a number'],
    [['maintain', '--max-checks', '1.5'], '--max-checks: must be a whole number'],
    [['maintain', '--pool', 'a b'], '--pool: a pool is'],
    [['status', 'extra'], 'usage: keypool status'],
    [['migrate'], 'give exactly one of'],
    [['migrate', '--from-table', 'x'], '--from-table: a DynamoDB table name'],
    [['pool', 'bogus'], 'keypool pool: unknown subcommand "bogus"'],
    [['pool', SECRET], 'unknown subcommand (not a command name)'],
    [['sk-test-abcdefghijklmnop'], 'unknown command (not a command name)'],
    [['add', '--sk-test-abcdefghijklmnop'], 'unknown option (not an option name)'],
    [['pool', 'set'], 'usage: keypool pool set <pool>'],
    [['pool', 'set', 'a', 'b'], 'usage: keypool pool set <pool>'],
    [['pool', 'set', 'no spaces'], 'pool: a pool is'],
    [['pool', 'set', 'p', '--max-uses', '1001'], 'keypool pool set: --max-uses: must be at most 1000'],
    [['pool', 'set', 'p', '--max-uses=-1'], '--max-uses: must be at least 0'],
    [['pool', 'set', 'p', '--max-uses', '2.5'], '--max-uses: must be a whole number'],
    [['pool', 'set', 'p', '--lease-ttl', '0'], '--lease-ttl: must be at least 1'],
    [['pool', 'set', 'p', '--lease-ttl', '3601'], '--lease-ttl: must be at most 3600'],
    [['pool', 'set', 'p', '--cooldown', '0'], '--cooldown: must be at least 1'],
    [['pool', 'set', 'p', '--cooldown', '86401'], '--cooldown: must be at most 86400'],
    [['pool', 'set', 'p', '--cooldown', '1e3'], '--cooldown: must be a number'],
    [['pool', 'set', 'p', '--provider', 'openai'], '--provider: must be one of stability, none'],
    [['pool', 'set', 'p', '--min-credits=-0.5'], '--min-credits: must be at least 0'],
    [['pool', 'set', 'p', '--min-credits', 'lots'], '--min-credits: must be a number'],
    [['pool', 'set', 'p', '--min-credits', '1000001'], '--min-credits: must be at most 1000000'],
    [['pool', 'set', 'p', '--bogus', '1'], 'bogus'],
    [['pool', 'show'], 'usage: keypool pool show <pool>'],
    [['pool', 'show', 'a', 'b'], 'usage: keypool pool show <pool>'],
    [['pool', 'show', 'a/b'], 'pool: a pool is'],
    [['pool', 'list', 'extra'], 'usage: keypool pool list'],
  ])('exits 2 with one line on stderr for %j', async (args, says) => {
    // Prepare
    const io = capture();
    // Act
    const code = await runCli(args, io, untouchable);
    // Assess
    expect(code).toBe(2);
    expect(io.stderr().trim().split('\n')).toHaveLength(1);
    expect(io.stderr()).toMatch(/^keypool[ :]/);
    expect(io.stderr()).toContain(says);
    expect(io.stderr()).not.toContain(SECRET);
    expect(io.stdout()).toBe('');
  });

  it('names the file and line of a key it refuses, counting comments and blank lines, never the key', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'keypool-add-'));
    const file = join(dir, 'keys.txt');
    writeFileSync(file, `# keys\n${SECRET}\n\n${SECRET}x y\n`);
    const io = capture();
    try {
      // Act
      const code = await runCli(['add', 'sk-test-valid-key-000', '--file', file], io, untouchable);
      // Assess
      expect(code).toBe(2);
      expect(io.stderr().trim()).toBe(
        `keypool add: ${file} line 4: an API key is 8-512 printable ASCII characters without spaces`,
      );
      expect(io.stdout()).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a --file with no key in it is exit 2 saying so, not asking for --file', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'keypool-add-'));
    const file = join(dir, 'keys.txt');
    writeFileSync(file, '# the keys go here\n\n');
    const io = capture();
    try {
      // Act
      const code = await runCli(['add', '--file', file], io, untouchable);
      // Assess
      expect(code).toBe(2);
      expect(io.stderr().trim()).toBe(
        `keypool add: ${file} holds no key (only blank lines and # comments, if anything): nothing was imported`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a file named relative to where `npm run keypool` was typed', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    /** The environment npm gives `npm run keypool` typed in `dir` (npm runs the script in the project directory). */
    function typedIn(dir: string): void {
      vi.stubEnv('npm_lifecycle_event', 'keypool');
      vi.stubEnv('npm_package_name', 'keypool');
      vi.stubEnv('INIT_CWD', dir);
    }

    it('add --file reads it from that directory, not the project directory', async () => {
      // Prepare
      const dir = mkdtempSync(join(tmpdir(), 'keypool-typed-'));
      writeFileSync(join(dir, 'keys.txt'), `${SECRET}\n`);
      typedIn(dir);
      const { services } = memoryServices();
      const io = capture();
      try {
        // Act
        const code = await runCli(['add', '--file', 'keys.txt', '--pool', 'typed', '--json'], io, services);
        // Assess
        expect(code, io.stderr()).toBe(0);
        expect(JSON.parse(io.stdout())).toMatchObject({ imported: 1, keys: [{ pool: 'typed' }] });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a file that is not there is exit 2 naming the path it was looked for at', async () => {
      // Prepare
      const dir = mkdtempSync(join(tmpdir(), 'keypool-typed-'));
      typedIn(dir);
      const io = capture();
      try {
        // Act
        const code = await runCli(['add', '--file', 'missing.txt'], io, untouchable);
        // Assess
        expect(code).toBe(2);
        expect(io.stderr().trim()).toBe(`keypool add: cannot read missing.txt (${join(dir, 'missing.txt')}): ENOENT`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it("complete's help says unknown keeps the use counted, as success does", async () => {
    // Prepare
    const main = capture();
    const own = capture();
    // Act
    await runCli(['--help'], main, untouchable);
    await runCli(['complete', '--help'], own, untouchable);
    // Assess
    for (const help of [main.stdout(), own.stdout()]) {
      const line = help.split('\n').find((l) => l.includes('report how a lease went')) ?? '';
      expect(line).toContain('success and unknown keep its use counted');
      expect(line).not.toContain('anything else returns it');
    }
  });

  it('prints help for the CLI, every command and every subcommand, exit 0', async () => {
    // Prepare
    const io = capture();
    // Act
    const code = await runCli(['--help'], io, untouchable);
    // Assess
    expect(code).toBe(0);
    const commands = [...io.stdout().matchAll(/^ {2}([a-z]+) {2}/gm)].map((m) => m[1] ?? '');
    expect(commands).toEqual([
      'pool',
      'account',
      'add',
      'list',
      'lease',
      'complete',
      'increment',
      'reset',
      'disable',
      'enable',
      'retire',
      'migrate',
      'reseal',
      'maintain',
      'status',
      'console',
    ]);
    for (const command of commands.filter((c) => c !== 'pool' && c !== 'account')) {
      const own = capture();
      expect(await runCli([command, '--help'], own, untouchable), command).toBe(0);
      expect(own.stdout(), command).toContain(`usage: keypool ${command} `);
    }
    const group = capture();
    expect(await runCli(['pool', '--help'], group, untouchable)).toBe(0);
    expect(group.stdout()).toContain('usage: keypool pool <subcommand>');
    const subcommands = [...group.stdout().matchAll(/^ {2}([a-z]+) {2}/gm)].map((m) => m[1] ?? '');
    expect(subcommands).toEqual(['set', 'list', 'show', 'reshard', 'delete']);
    for (const sub of subcommands) {
      const own = capture();
      expect(await runCli(['pool', sub, '--help'], own, untouchable), sub).toBe(0);
      expect(own.stdout(), sub).toContain(`usage: keypool pool ${sub} `);
    }
    const accounts = capture();
    expect(await runCli(['account', '--help'], accounts, untouchable)).toBe(0);
    const accountSubcommands = [...accounts.stdout().matchAll(/^ {2}([a-z]+) {2}/gm)].map((m) => m[1] ?? '');
    expect(accountSubcommands).toEqual(['list', 'set']);
    for (const sub of accountSubcommands) {
      const own = capture();
      expect(await runCli(['account', sub, '--help'], own, untouchable), sub).toBe(0);
      expect(own.stdout(), sub).toContain(`usage: keypool account ${sub} `);
    }
  });

  it('names every flag of the issue in its command help', async () => {
    // Prepare
    const flags: [string[], string[]][] = [
      [
        ['pool', 'set'],
        ['--max-uses N', '--lease-ttl S', '--cooldown S', '--provider', '--min-credits N', '--shards N', '--json'],
      ],
      [['pool', 'list'], ['--json']],
      [['pool', 'show'], ['--json']],
      [
        ['pool', 'reshard'],
        ['--wait', '--concurrency N', '--json'],
      ],
      [['reset'], ['--pool P', '--to N', '--json']],
      [['complete'], ['--pool P', '--outcome O', '--retry-after S', '--json']],
      [['increment'], ['--pool P', '--json']],
      [['enable'], ['--pool P', '--json']],
      [['disable'], ['--pool P', '--json']],
      [['lease'], ['--pool P', '--max-uses N', '--ttl S', '--json']],
      [['list'], ['--pool P', '--status S', '--json']],
      [['maintain'], ['--pool P', '--min-credits N', '--max-checks N', '--json']],
      [['status'], ['--json']],
      [['retire'], ['--pool P', '--json']],
      [
        ['pool', 'delete'],
        ['--retire-keys', '--json'],
      ],
      [['add'], ['--revive', '--json']],
    ];
    for (const [command, names] of flags) {
      const io = capture();
      // Act
      const code = await runCli([...command, '--help'], io, untouchable);
      // Assess
      expect(code, command.join(' ')).toBe(0);
      for (const name of names) expect(io.stdout(), `${command.join(' ')} ${name}`).toContain(name);
    }
  });

  it('without a command, or a group without its subcommand, prints the help and exits 2', async () => {
    // Prepare
    const bare = capture();
    const group = capture();
    // Act
    const bareCode = await runCli([], bare, untouchable);
    const groupCode = await runCli(['pool'], group, untouchable);
    // Assess
    expect(bareCode).toBe(2);
    expect(bare.stdout()).toContain('usage: keypool <command>');
    expect(groupCode).toBe(2);
    expect(group.stdout()).toContain('usage: keypool pool <subcommand>');
  });
});

describe('keypool CLI flags reach the use cases', () => {
  it('pool set creates with the defaults for what is absent, then changes only what is given; show and list print the PoolView', async () => {
    // Prepare
    const { services, broker } = memoryServices();
    const created = capture();
    const changed = capture();
    const shown = capture();
    const listed = capture();
    // Act
    expect(
      await runCli(['pool', 'set', 'images', '--max-uses', '5', '--min-credits', '2.5', '--json'], created, services),
    ).toBe(0);
    expect(
      await runCli(['pool', 'set', 'images', '--provider', 'none', '--cooldown', '120', '--json'], changed, services),
    ).toBe(0);
    expect(await runCli(['pool', 'show', 'images', '--json'], shown, services)).toBe(0);
    expect(await runCli(['pool', 'list', '--json'], listed, services)).toBe(0);
    // Assess
    expect(JSON.parse(created.stdout())).toMatchObject({
      pool: 'images',
      maxUses: 5,
      leaseTtlSeconds: 300,
      cooldownSeconds: 60,
      provider: 'stability',
      minCredits: 2.5,
    });
    const policy = await broker.getPool('images');
    expect(policy).toMatchObject({
      maxUses: 5,
      leaseTtlSeconds: 300,
      cooldownSeconds: 120,
      provider: 'none',
      minCredits: 2.5,
    });
    expect(JSON.parse(changed.stdout())).toEqual(policy);
    expect(JSON.parse(shown.stdout())).toEqual(policy);
    expect(JSON.parse(listed.stdout())).toEqual({ pools: [policy] });
  });

  it('pool set --shards changes the shard count (1..64) and show names the layout being left; pool reshard moves keys home and ends it', async () => {
    // Prepare
    const { services, broker, poolStore } = memoryServices();
    const keys = [{ apiKey: SECRET }, { apiKey: `${SECRET}-2` }, { apiKey: `${SECRET}-3` }];
    await broker.importKeys('images', keys);
    await broker.importKeys(
      'older',
      keys.map((k) => ({ apiKey: `${k.apiKey}-old` })),
    );
    // A change made a minute ago: past the settle time, its keys may move.
    await poolStore.put('older', { shards: 4 }, new Date(Date.now() - 61_000).toISOString());
    const set = capture();
    const tooMany = capture();
    const shown = capture();
    const early = capture();
    const done = capture();
    // Act
    expect(await runCli(['pool', 'set', 'images', '--shards', '8', '--json'], set, services)).toBe(0);
    const tooManyCode = await runCli(['pool', 'set', 'images', '--shards', '65'], tooMany, services);
    expect(await runCli(['pool', 'show', 'images'], shown, services)).toBe(0);
    expect(await runCli(['pool', 'reshard', 'images'], early, services)).toBe(0);
    expect(await runCli(['pool', 'reshard', 'older', '--json'], done, services)).toBe(0);
    // Assess
    expect(JSON.parse(set.stdout())).toMatchObject({ pool: 'images', shards: 8, previousShards: 1 });
    expect(tooManyCode).toBe(2);
    expect(tooMany.stderr()).toMatch(/--shards/);
    expect(shown.stdout()).toContain('1 -> 8 (resharding)');
    expect(early.stdout()).toMatch(/keys move from /);
    expect(JSON.parse(done.stdout())).toMatchObject({
      pool: 'older',
      shards: 4,
      previousShards: 1,
      keys: 3,
      changedMeanwhile: 0,
      finished: true,
      notBefore: null,
    });
    expect(await poolStore.get('older')).not.toHaveProperty('previousShards');
  });

  it('pool show of a pool that does not exist exits 1 with one line saying so', async () => {
    // Prepare
    const { services } = memoryServices();
    const io = capture();
    // Act
    const code = await runCli(['pool', 'show', 'nowhere'], io, services);
    // Assess
    expect(code).toBe(1);
    expect(io.stderr().trim().split('\n')).toHaveLength(1);
    expect(io.stderr()).toMatch(/^keypool pool show: no pool "nowhere"/);
  });

  it('a not-found refusal of a command run without --pool says it looked in stability and how to name the pool', async () => {
    // Prepare
    const { services, broker, poolStore } = memoryServices();
    const [added] = (await broker.importKeys('demo', [{ apiKey: SECRET }])).keys;
    const keyId = added?.keyId ?? '';
    const lease = await broker.lease('demo', {});
    const [complete, reset, named] = [capture(), capture(), capture()];
    // Act
    const codes = [await runCli(['complete', lease.leaseId], complete, services)];
    await poolStore.ensure('stability', new Date().toISOString());
    codes.push(await runCli(['reset', keyId], reset, services));
    codes.push(await runCli(['complete', lease.leaseId, '--pool', 'nowhere'], named, services));
    // Assess
    expect(codes).toEqual([1, 1, 1]);
    expect(complete.stderr().trim()).toMatch(
      /^keypool complete: no pool "stability"; .* \(no --pool given, so pool "stability": give the pool with --pool P\)$/,
    );
    expect(reset.stderr().trim()).toMatch(
      /^keypool reset: no key with id .* \(no --pool given, so pool "stability": give the pool with --pool P\)$/,
    );
    expect(named.stderr().trim()).toMatch(/^keypool complete: no pool "nowhere"; /);
    expect(named.stderr()).not.toContain('--pool P');
  });

  it("list's table shows who set a key's status and until when a reported key rests", async () => {
    // Prepare: one key the operator disabled, one a client reported invalid (suspect, resting).
    const { services, broker } = memoryServices();
    const [disabled, reported] = (
      await broker.importKeys('shown', [{ apiKey: SECRET }, { apiKey: `${SECRET}1` }])
    ).keys.map((k) => k.keyId);
    await runCli(['disable', disabled ?? '', '--pool', 'shown'], capture(), services);
    const lease = await broker.lease('shown', {});
    await broker.complete('shown', lease.leaseId, { outcome: 'invalid_key' });
    const [suspect] = await broker.listAll('shown', { status: 'suspect' });
    const io = capture();
    // Act
    const code = await runCli(['list', '--pool', 'shown'], io, services);
    // Assess
    expect(code).toBe(0);
    const [head, ...rows] = io.stdout().split('\n');
    expect(head?.split(/ +/).slice(4, 7)).toEqual(['status', 'statusBy', 'cooldownUntil']);
    const row = (id: string | undefined): string[] => rows.find((r) => r.startsWith(id ?? '?'))?.split(/ +/) ?? [];
    expect(row(disabled).slice(4, 7)).toEqual(['disabled', 'operator', '-']);
    expect(suspect?.keyId).toBe(reported);
    expect(row(reported).slice(4, 7)).toEqual(['suspect', 'client', suspect?.cooldownUntil]);
  });

  it('commands without --pool work on the stability pool; reset defaults to 0; lease above the cap exits 2 naming it', async () => {
    // Prepare
    const { services, broker } = memoryServices();
    const [added] = (await broker.importKeys('stability', [{ apiKey: SECRET }])).keys;
    const keyId = added?.keyId ?? '';
    await broker.increment('stability', keyId);
    await broker.increment('stability', keyId);
    const reset = capture();
    const disabled = capture();
    const above = capture();
    // Act
    const resetCode = await runCli(['reset', keyId, '--json'], reset, services);
    const disableCode = await runCli(['disable', keyId, '--json'], disabled, services);
    const aboveCode = await runCli(['lease', '--max-uses', '4'], above, services);
    // Assess
    expect(resetCode).toBe(0);
    expect(JSON.parse(reset.stdout())).toMatchObject({ keyId, pool: 'stability', usageCount: 0, status: 'active' });
    expect(disableCode).toBe(0);
    expect(JSON.parse(disabled.stdout())).toMatchObject({ keyId, status: 'disabled' });
    expect(aboveCode).toBe(2);
    expect(above.stderr().trim().split('\n')).toHaveLength(1);
    expect(above.stderr()).toMatch(/^keypool lease: maxUses 4 is above pool "stability"'s cap of 3$/m);
  });
});
