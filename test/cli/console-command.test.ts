/** `keypool console`: the real bin serves the page over the table the CLI reads, until Ctrl-C. */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createTestTable, fakeKey } from '../support/dynamo.js';
import { startKeypool } from '../support/cli.js';

describe('keypool console', () => {
  it("serves a pool's keys, masked, on the port it prints, and exits 0 on Ctrl-C", async () => {
    // Prepare
    const table = await createTestTable('console-cli');
    const secret = fakeKey();
    await table.broker().importKeys('stability', [{ apiKey: secret, label: 'from-the-cli' }]);
    const child = startKeypool(['console', '--port', '0'], {
      KEYPOOL_DYNAMODB_ENDPOINT: table.endpoint,
      KEYPOOL_TABLE: table.tableName,
    });
    let stdout = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr?.resume();
    const exited = once(child, 'exit');
    const deadline = Date.now() + 30_000;
    while (!/http:\/\/127\.0\.0\.1:\d+/.test(stdout) && Date.now() < deadline && child.exitCode === null)
      await new Promise((done) => setTimeout(done, 100));
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(stdout)?.[0] ?? '';
    // Act
    const page = await fetch(`${url}/pools/stability`);
    const html = await page.text();
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    // Assess
    expect(stdout).toMatch(/^keypool console at http:\/\/127\.0\.0\.1:\d+ {3}\(read-only; Ctrl-C stops it\)$/m);
    expect(page.status).toBe(200);
    expect(html).toContain('from-the-cli');
    expect(html).not.toContain(secret);
    expect(code).toBe(0);
  });
});
