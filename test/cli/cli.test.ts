import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runKeypool } from '../support/cli.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';

let env: Record<string, string>;

beforeAll(async () => {
  const table = await createTestTable('cli');
  env = { KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint, KEYPOOL_TABLE: table.tableName };
});

interface ImportJson {
  imported: number;
  duplicates: number;
  keys: { keyId: string; maskedKey: string }[];
}

describe('keypool CLI', () => {
  it('add from arguments and a file, list, lease, complete, increment, disable, enable — with --json bodies as the API', async () => {
    // Prepare
    const pool = uniqueName('cli');
    const secrets = [fakeKey('a'), fakeKey('b'), fakeKey('c')];
    const file = join(mkdtempSync(join(tmpdir(), 'keypool-')), 'keys.txt');
    writeFileSync(file, `# operator keys\n${secrets[1] ?? ''}\n\n  ${secrets[2] ?? ''}  \n`);
    // Act + Assess: add
    const add = await runKeypool(['add', secrets[0] ?? '', '--file', file, '--pool', pool, '--label', 'ops', '--json'], env);
    expect(add.code).toBe(0);
    const imported = JSON.parse(add.stdout) as ImportJson;
    expect(imported).toMatchObject({ imported: 3, duplicates: 0 });
    expect(add.stdout).not.toContain(secrets[0]);
    // lease (the old --find --max-uses=3)
    const lease = await runKeypool(['lease', '--pool', pool, '--max-uses', '3', '--ttl', '60', '--json'], env);
    expect(lease.code).toBe(0);
    const grant = JSON.parse(lease.stdout) as { leaseId: string; keyId: string; apiKey: string; usageCount: number };
    expect(Object.keys(grant).sort()).toEqual(['apiKey', 'expiresAt', 'keyId', 'leaseId', 'pool', 'usageCount']);
    expect(grant.apiKey).toBe(secrets[0]);
    // complete
    const complete = await runKeypool(['complete', grant.leaseId, '--outcome', 'success', '--json'], env);
    expect(JSON.parse(complete.stdout)).toEqual({ keyId: grant.keyId, usageCount: 1, status: 'active' });
    // increment
    const increment = await runKeypool(['increment', grant.keyId, '--json'], env);
    expect(JSON.parse(increment.stdout)).toEqual({ keyId: grant.keyId, usageCount: 2 });
    // disable / enable
    const disable = await runKeypool(['disable', grant.keyId], env);
    expect(disable).toMatchObject({ code: 0, stdout: `${grant.keyId} is disabled\n` });
    const listed = await runKeypool(['list', '--pool', pool, '--status', 'disabled', '--json'], env);
    expect(JSON.parse(listed.stdout)).toMatchObject({ keys: [{ keyId: grant.keyId, usageCount: 2, status: 'disabled' }], cursor: null });
    const enable = await runKeypool(['enable', grant.keyId], env);
    expect(enable.code).toBe(0);
    // readable list
    const table = await runKeypool(['list', '--pool', pool], env);
    expect(table.stdout).toMatch(/^keyId\s+pool\s+maskedKey\s+usageCount\s+status/);
    expect(table.stdout).toContain('3 key(s)');
    for (const secret of secrets) expect(table.stdout + listed.stdout + complete.stdout).not.toContain(secret);
  });

  it('reads keys from stdin with --file -, and a second add reports duplicates', async () => {
    const pool = uniqueName('stdin');
    const secret = fakeKey();
    const first = await runKeypool(['add', '--file', '-', '--pool', pool, '--json'], env, `${secret}\n`);
    const again = await runKeypool(['add', '--file', '-', '--pool', pool, '--json'], env, `${secret}\n`);
    expect(JSON.parse(first.stdout)).toMatchObject({ imported: 1, duplicates: 0 });
    expect(JSON.parse(again.stdout)).toMatchObject({ imported: 0, duplicates: 1 });
  });

  it('exits 1 with one line on stderr for a domain refusal', async () => {
    const none = await runKeypool(['lease', '--pool', uniqueName('empty')], env);
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toContain('has no active key');
    const missing = await runKeypool(['complete', 'k_000000000000000000000000.0.zzzzzzz.0000000000000000'], env);
    expect(missing.code).toBe(1);
  });

  it('maintain refuses an unsafe STABILITY_API_BASE_URL before any request: exit 2, one line naming the problem', async () => {
    // Prepare: an empty pool, so a run that wrongly starts checks nothing and exits 0.
    const pool = uniqueName('badurl');
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
    const run = await runKeypool(['list'], { KEYPOOL_DYNAMODB_ENDPOINT: 'http://127.0.0.1:9', KEYPOOL_TABLE: 'keypool' });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(/^keypool list: cannot reach DynamoDB at http:\/\/127\.0\.0\.1:9$/);
  });
});
