/**
 * The Python client (clients/python) as a user gets it: its wheel built offline, installed into
 * a venv of Debian's python3 (not the source folder), against `npm start` over this run's
 * DynamoDB Local. Its pytest suite (clients/python/tests) runs there; the example program runs
 * from a fresh venv. Everything stays on loopback.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/dynamo.js';
import { type RunningStack, startLocalStack } from '../support/local-stack.js';
import { assertPythonTooling, buildWheel, copyPackage, makeVenv, pip, run } from '../support/python.js';
import { call } from '../support/server.js';

const PACKAGE = fileURLToPath(new URL('../../clients/python', import.meta.url));

describe('the Python client, installed from its wheel', () => {
  let work: string;
  let source: string;
  let wheel: string;
  let python: string;
  let stack: RunningStack | undefined;

  beforeAll(async () => {
    await assertPythonTooling();
    work = mkdtempSync(join(tmpdir(), 'keypool-python-'));
    source = copyPackage(PACKAGE, join(work, 'source'));
    python = await makeVenv(join(work, 'venv'));
    wheel = await buildWheel(python, source, join(work, 'dist'));
    await pip(python, ['install', wheel]);
    stack = await startLocalStack();
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('builds offline into a small wheel of the package, its type marker and its two dependencies', async () => {
    // Act
    const listing = await run(python, [
      '-c',
      [
        'import sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1])',
        'print("\\n".join(sorted(n for n in z.namelist() if not n.endswith("RECORD"))))',
        'print([l for l in z.read("keypool_client-0.1.0.dist-info/METADATA").decode().splitlines() if l.startswith("Requires")])',
      ].join('\n'),
      wheel,
    ]);
    const installedFrom = await run(python, ['-c', 'import keypool_client; print(keypool_client.__file__)']);
    // Assess
    expect(listing.code, listing.stderr).toBe(0);
    const names = listing.stdout.trim().split('\n');
    expect(names.filter((name) => name.startsWith('keypool_client/'))).toEqual([
      'keypool_client/__init__.py',
      'keypool_client/__main__.py',
      'keypool_client/_http.py',
      'keypool_client/cli.py',
      'keypool_client/client.py',
      'keypool_client/compat.py',
      'keypool_client/errors.py',
      'keypool_client/keys.py',
      'keypool_client/lease.py',
      'keypool_client/py.typed',
    ]);
    expect(names.at(-1)).toBe(
      "['Requires-Python: >=3.9', 'Requires-Dist: botocore (>=1.20)', 'Requires-Dist: requests (>=2.25)']",
    );
    expect(statSync(wheel).size).toBeLessThan(50_000);
    // The suite below imports this copy, not the source folder.
    expect(installedFrom.stdout.trim()).toContain(`${join(work, 'venv', 'lib')}/`);
    expect(installedFrom.stdout.trim()).toMatch(/\/site-packages\/keypool_client\/__init__\.py$/);
  });

  it('passes its pytest suite against npm start', async () => {
    // Prepare
    const report = join(work, 'pytest.xml');
    // Act
    const tests = await run(
      python,
      ['-m', 'pytest', '-p', 'no:cacheprovider', '-q', `--junitxml=${report}`, join(source, 'tests')],
      { KEYPOOL_URL: stack?.url ?? '' },
      300_000,
    );
    // Assess: every test ran and passed; none skipped
    const suite = /<testsuite [^>]*>/.exec(readFileSync(report, 'utf8'))?.[0] ?? '';
    const count = (name: string): number => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite)?.[1] ?? NaN);
    expect(tests.code, `${tests.stdout}\n${tests.stderr}`).toBe(0);
    expect({ failures: count('failures'), errors: count('errors'), skipped: count('skipped') }).toEqual({
      failures: 0,
      errors: 0,
      skipped: 0,
    });
    expect(count('tests')).toBeGreaterThanOrEqual(30);
  }, 300_000);

  it('runs the example program from a fresh venv: it leases, completes and prints the count', async () => {
    // Prepare
    const api = stack?.url ?? '';
    const pool = uniqueName('example');
    const apiKey = 'sk-test-example-0123456789abcdef';
    const imported = await call(api, 'POST', `/pools/${pool}/keys`, { keys: [{ apiKey }] });
    const fresh = await makeVenv(join(work, 'example-venv'));
    await pip(fresh, ['install', wheel]);
    // Act
    const example = await run(fresh, [join(source, 'examples', 'lease_and_count.py')], {
      KEYPOOL_URL: api,
      KEYPOOL_POOL: pool,
    });
    const listed = await call(api, 'GET', `/pools/${pool}/keys`);
    // Assess
    const keyId = (imported.body as { keys: { keyId: string }[] }).keys[0]?.keyId ?? '';
    expect(example.code, example.stderr).toBe(0);
    expect(example.stdout).toBe(
      `leased ${keyId} (used 0 times before)\ncompleted as success: ${keyId} has now been used 1 times\n`,
    );
    expect((listed.body as { keys: { usageCount: number }[] }).keys.map((key) => key.usageCount)).toEqual([1]);
    expect(example.stdout + example.stderr).not.toContain(apiKey);
    expect(
      readFileSync(join(PACKAGE, 'examples', 'lease_and_count.py'), 'utf8')
        .trimEnd()
        .split('\n').length,
    ).toBeLessThanOrEqual(20);
  }, 120_000);

  it('installs offline from the source folder with --no-build-isolation', async () => {
    // Prepare
    const target = join(work, 'from-source');
    // Act
    await pip(python, [
      'install',
      '--no-build-isolation',
      '--no-deps',
      '--target',
      target,
      copyPackage(PACKAGE, join(work, 'source-again')),
    ]);
    const imported = await run(python, ['-c', 'import keypool_client.compat, keypool_client.cli; print("ok")'], {
      PYTHONPATH: target,
    });
    // Assess
    expect(imported.stdout.trim()).toBe('ok');
    expect(statSync(join(target, 'keypool_client', 'py.typed')).isFile()).toBe(true);
  }, 120_000);
});
