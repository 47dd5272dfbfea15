/**
 * `keypool reseal` (the real bin) on DynamoDB Local with local key files: a rotation moves every
 * secret to the new wrapping key and leases keep working on both sides of it; a second run
 * writes nothing; a run killed with SIGKILL is finished by the next one; a run without the key the
 * secrets were sealed under changes nothing and says so, and keys marked undecryptable by an
 * earlier version are revived once their key is configured.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoCalls } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { DynamoKeyAdminStore } from '../../lib/adapters/dynamo-key-admin-store.js';
import { inspectSealed } from '../../lib/adapters/esdk-sealer.js';
import { localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { type CliRun, runKeypool, startKeypool } from '../support/cli.js';
import { dynamoEndpoint, scanTable, uniqueName } from '../support/dynamo.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { seedKeys } from '../support/seed.js';
import type { LeaseGrantBody } from '../support/pool-api.js';
import { randomKeySealer } from '../support/sealing.js';

let client: DynamoCalls;
const dir = mkdtempSync(join(tmpdir(), 'keypool-reseal-'));

beforeAll(() => {
  client = documentClient({ endpoint: dynamoEndpoint(), region: undefined });
});

interface WrappingKey {
  key: Buffer;
  file: string;
  name: string;
}

/** A fresh 256-bit wrapping key in its own file (mode 0600, as keypool requires). */
function wrappingKey(): WrappingKey {
  const key = randomBytes(32);
  const file = join(dir, `${uniqueName('key')}.bin`);
  writeFileSync(file, key, { mode: 0o600 });
  return { key, file, name: localKeyName(key) };
}

/** The CLI's environment for a table and the wrapping keys it holds (current first). */
function envFor(tableName: string, current: WrappingKey, previous: WrappingKey[] = []): Record<string, string> {
  return {
    KEYPOOL_DYNAMODB_ENDPOINT: dynamoEndpoint(),
    KEYPOOL_TABLE: tableName,
    KEYPOOL_SEALING_KEY_FILE: current.file,
    KEYPOOL_SEALING_PREVIOUS_KEY_FILES: previous.map((k) => k.file).join(','),
  };
}

/** A table with `count` keys in `pool`, sealed under `under`; answers the table name and the secrets. */
async function seeded(
  pool: string,
  count: number,
  under: WrappingKey,
): Promise<{ tableName: string; secrets: string[]; ids: string[] }> {
  const tableName = uniqueName('reseal');
  await ensureTable(dynamoEndpoint(), tableName);
  const secrets: string[] = [];
  const ids = await seedKeys({
    client,
    tableName,
    pool,
    count,
    sealer: randomKeySealer(under.key),
    onSecret: (s) => secrets.push(s),
  });
  return { tableName, secrets, ids };
}

/** Which wrapping key sealed each key item, by key id. */
async function wrappedBy(tableName: string): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const item of await scanTable(client, tableName)) {
    const info = inspectSealed(String(item.sealedKey));
    names.set(String(item.keyId), info.sealed ? info.wrappedBy.map((ref) => ref.key).join(',') : 'not sealed');
  }
  return names;
}

/** The key items without their ciphertexts: counts, slots, statuses, index attributes, all the rest. */
async function withoutCiphertexts(tableName: string): Promise<Record<string, unknown>[]> {
  return (await scanTable(client, tableName)).map(({ sealedKey: _sealed, ...rest }) => rest);
}

const RESEAL_FIELDS = [
  'keys',
  'resealed',
  'sealed',
  'revived',
  'unchanged',
  'undecryptable',
  'keyNotHeld',
  'changedMeanwhile',
];
const ID_LISTS = new Set(['undecryptable', 'keyNotHeld']);

/** The --json report of a run that must succeed. */
function report(run: CliRun): Record<string, unknown> & { undecryptable: string[] } {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Record<string, unknown> & { undecryptable: string[] };
}

describe('keypool reseal', () => {
  it('moves every key to the new wrapping key; leases work before and after; its --json is the documented shape', async () => {
    // Prepare
    const [oldKey, newKey] = [wrappingKey(), wrappingKey()];
    const pool = uniqueName('rot');
    const { tableName, secrets, ids } = await seeded(pool, 20, oldKey);
    const before = await keypool(['lease', '--pool', pool, '--json'], envFor(tableName, oldKey));
    const leasedBefore = JSON.parse(before.stdout) as LeaseGrantBody;
    const untouched = await withoutCiphertexts(tableName);
    // Act
    const run = report(await keypool(['reseal', '--json'], envFor(tableName, newKey, [oldKey])));
    const sealedBy = await wrappedBy(tableName);
    const rest = await withoutCiphertexts(tableName);
    const after = await keypool(['lease', '--pool', pool, '--json'], envFor(tableName, newKey));
    const help = await keypool(['reseal', '--help'], envFor(tableName, newKey));
    // Assess
    expect(before.code, before.stderr).toBe(0);
    expect(secrets).toContain(leasedBefore.apiKey);
    expect(Object.keys(run)).toEqual(RESEAL_FIELDS);
    expect(run).toEqual({
      keys: 20,
      resealed: 20,
      sealed: 0,
      revived: 0,
      unchanged: 0,
      undecryptable: [],
      keyNotHeld: [],
      changedMeanwhile: 0,
    });
    expect(help.stdout).toContain(
      `--json             print {${RESEAL_FIELDS.map((f) => (ID_LISTS.has(f) ? `"${f}":[keyId]` : `"${f}"`)).join(',')}}`,
    );
    expect([...sealedBy.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(sealedBy.values())).toEqual(new Set([newKey.name]));
    expect(rest).toEqual(untouched);
    // The new key alone opens every secret now: a lease with no previous key configured works.
    expect(after.code, after.stderr).toBe(0);
    expect(secrets).toContain((JSON.parse(after.stdout) as LeaseGrantBody).apiKey);
  });

  it('a second run reports everything unchanged and writes nothing: the raw table is byte-for-byte the same', async () => {
    // Prepare
    const [oldKey, newKey] = [wrappingKey(), wrappingKey()];
    const pool = uniqueName('twice');
    const { tableName } = await seeded(pool, 12, oldKey);
    report(await keypool(['reseal', '--json'], envFor(tableName, newKey, [oldKey])));
    const first = JSON.stringify(await scanTable(client, tableName));
    // Act
    const second = report(await keypool(['reseal', '--json'], envFor(tableName, newKey, [oldKey])));
    const text = await keypool(['reseal'], envFor(tableName, newKey, [oldKey]));
    // Assess
    expect(second).toEqual({
      keys: 12,
      resealed: 0,
      sealed: 0,
      revived: 0,
      unchanged: 12,
      undecryptable: [],
      keyNotHeld: [],
      changedMeanwhile: 0,
    });
    expect(JSON.stringify(await scanTable(client, tableName))).toBe(first);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^looked at 12 key\(s\)$/m);
    expect(text.stdout).toMatch(/^ {2}unchanged {6}12$/m);
  });

  it('killed with SIGKILL mid-run, a second run finishes: every key under the new key, counts, slots and statuses untouched, none undecryptable', async () => {
    // Prepare: enough keys that a run with --concurrency 1 takes seconds.
    const keys = 1000;
    const [oldKey, newKey] = [wrappingKey(), wrappingKey()];
    const pool = uniqueName('kill');
    const { tableName, ids } = await seeded(pool, keys, oldKey);
    // A few keys with a use, an open slot and another status, to see that none of it moves.
    const env = envFor(tableName, newKey, [oldKey]);
    for (let i = 0; i < 3; i++)
      expect((await keypool(['lease', '--pool', pool], envFor(tableName, oldKey))).code).toBe(0);
    expect((await keypool(['disable', ids[keys - 1] ?? '', '--pool', pool], env)).code).toBe(0);
    const untouched = await withoutCiphertexts(tableName);
    const underNew = async (): Promise<number> =>
      [...(await wrappedBy(tableName)).values()].filter((name) => name === newKey.name).length;
    // Act: SIGKILL the CLI once some, but not all, keys are under the new key.
    const child = startKeypool(['reseal', '--concurrency', '1', '--json'], env);
    const exit = exited(child);
    let moved = 0;
    while (moved === 0) {
      await new Promise((r) => setTimeout(r, 100));
      moved = await underNew();
    }
    child.kill('SIGKILL');
    const killed = await exit;
    // A write already sent still lands after the client dies: let DynamoDB Local finish it.
    await new Promise((r) => setTimeout(r, 500));
    const atKill = await underNew();
    const resumed = report(await keypool(['reseal', '--json'], env));
    // Assess
    expect(killed.signal).toBe('SIGKILL');
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(keys);
    expect(resumed).toMatchObject({
      keys,
      sealed: 0,
      revived: 0,
      undecryptable: [],
      keyNotHeld: [],
      changedMeanwhile: 0,
    });
    // What the killed run wrote is left as it is; the second run reseals only the rest (a write
    // sent just before the kill may land after the count above, hence the inequalities).
    expect(resumed.unchanged).toBeGreaterThanOrEqual(atKill);
    expect(resumed.resealed).toBeLessThanOrEqual(keys - atKill);
    expect(Number(resumed.unchanged) + Number(resumed.resealed)).toBe(keys);
    expect(new Set((await wrappedBy(tableName)).values())).toEqual(new Set([newKey.name]));
    expect(await withoutCiphertexts(tableName)).toEqual(untouched);
  }, 120_000);

  it('without the previous key, reseal and lease change nothing and name the key the secrets were sealed under (exit 1); configured back, reseal moves them and they lease', async () => {
    // Prepare
    const [oldKey, newKey] = [wrappingKey(), wrappingKey()];
    const pool = uniqueName('lost');
    const { tableName, secrets } = await seeded(pool, 3, oldKey);
    const newOnly = envFor(tableName, newKey);
    const both = envFor(tableName, newKey, [oldKey]);
    const before = JSON.stringify(await scanTable(client, tableName));
    // Act
    const stopped = await keypool(['reseal', '--json'], newOnly);
    const afterStop = JSON.stringify(await scanTable(client, tableName));
    const refused = await keypool(['lease', '--pool', pool], newOnly);
    const listed = report(await keypool(['list', '--pool', pool, '--json'], newOnly)) as unknown as {
      keys: { status: string; usageCount: number }[];
    };
    const moved = report(await keypool(['reseal', '--json'], both));
    const leased = await keypool(['lease', '--pool', pool, '--json'], newOnly);
    // Assess: nothing written by the stopped run, every key still active and uncounted.
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toBe('');
    expect(stopped.stderr.trim().split('\n')).toHaveLength(1);
    expect(stopped.stderr).toContain(`sealed under ${oldKey.name}, which this process does not hold`);
    expect(stopped.stderr).toContain(`key file ${newKey.file} (${newKey.name})`);
    expect(afterStop).toBe(before);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(oldKey.name);
    expect(listed.keys.map((k) => `${k.status}/${k.usageCount}`)).toEqual(['active/0', 'active/0', 'active/0']);
    expect(moved).toMatchObject({ keys: 3, resealed: 3, undecryptable: [], keyNotHeld: [] });
    expect(new Set((await wrappedBy(tableName)).values())).toEqual(new Set([newKey.name]));
    expect(leased.code, leased.stderr).toBe(0);
    expect(secrets).toContain((JSON.parse(leased.stdout) as LeaseGrantBody).apiKey);
  });

  it('keys an earlier version marked undecryptable for a key it did not hold are revived by a reseal that holds it', async () => {
    // Prepare: what a run without the old key did before a missing key stopped being a verdict.
    const [oldKey, newKey] = [wrappingKey(), wrappingKey()];
    const pool = uniqueName('revive');
    const { tableName, ids, secrets } = await seeded(pool, 3, oldKey);
    const store = new DynamoKeyAdminStore({ client, tableName });
    for (const item of await scanTable(client, tableName))
      await store.markUndecryptable({ keyId: String(item.keyId), pool, sealed: String(item.sealedKey) });
    // Act
    const revived = report(await keypool(['reseal', '--json'], envFor(tableName, newKey, [oldKey])));
    const listed = report(await keypool(['list', '--pool', pool, '--json'], envFor(tableName, newKey))) as unknown as {
      keys: { status: string }[];
    };
    const leased = await keypool(['lease', '--pool', pool, '--json'], envFor(tableName, newKey));
    // Assess
    expect(revived).toMatchObject({ keys: 3, revived: 3, undecryptable: [], keyNotHeld: [] });
    expect(listed.keys.map((k) => k.status)).toEqual(ids.map(() => 'active'));
    expect(leased.code, leased.stderr).toBe(0);
    expect(secrets).toContain((JSON.parse(leased.stdout) as LeaseGrantBody).apiKey);
  });
});

/** Runs keypool and waits for it. */
function keypool(args: string[], env: Record<string, string>): Promise<CliRun> {
  return runKeypool(args, env);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  child.stdout?.resume();
  child.stderr?.resume();
  return new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
}
