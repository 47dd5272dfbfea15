/**
 * The console in a real browser: Debian's Chromium driven by playwright-core, over the local
 * server and a table on DynamoDB Local. A pool created through the API shows; a key completed
 * rate_limited shows as cooling with its return time; the histogram's bars match the counts;
 * paging follows the API's cursor over a pool of 10,000 keys, whose first page's load time is
 * measured by the browser; a request addressed to another Host is refused; no seeded secret is
 * in any answer. Screenshots of each view go to test-output/console/ (KEYPOOL_DOCS_SCREENSHOTS=1
 * also writes the README's two to docs/images/).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Dialog, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoMaintenanceRunStore } from '../../lib/adapters/dynamo-maintenance-run-store.js';
import { type RunningConsole, startConsole } from '../../lib/console/server.js';
import type { LeaseGrant } from '../../lib/domain/types.js';
import type { LocalServer } from '../../lib/local/server.js';
import { overview } from '../../lib/wiring.js';
import { createTestTable, fakeKey, type TestTable } from '../support/dynamo.js';
import { testSealer } from '../support/sealing.js';
import { seedKeys } from '../support/seed.js';
import { call, startTestServer } from '../support/server.js';

/** Debian's Chromium (apt-get install chromium); KEYPOOL_CHROMIUM names another. Never downloaded. */
const CHROMIUM = process.env.KEYPOOL_CHROMIUM || '/usr/bin/chromium';
const HAS_BROWSER = existsSync(CHROMIUM);
if (!HAS_BROWSER) {
  process.stderr.write(
    `SKIPPED: the console's browser tests need Chromium at ${CHROMIUM} (apt-get install chromium, or set KEYPOOL_CHROMIUM)\n`,
  );
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHOTS = join(ROOT, 'test-output', 'console');
const DOCS_IMAGES = join(ROOT, 'docs', 'images');
const BULK_KEYS = 10_000;

let table: TestTable;
let api: LocalServer;
let consoleServer: RunningConsole;
/** A console over a table of its own holding the 10,000-key pool, so the other views stay small. */
let bulkConsole: RunningConsole;
let browser: BrowserContext;
/**
 * The 10,000 keys of the pool `bulk`, sealed and written straight to the table in bulk: begun by
 * the setup and awaited by the paging test, so the other tests run while DynamoDB Local writes.
 * Resolves to the seconds it took.
 */
let seeded: Promise<number>;
/** Every secret this file stored, for the scan of every answer. */
const secrets: string[] = [];
/** Every answer the browser received: url and body. */
const answers: { url: string; body: string }[] = [];

async function api200(method: string, path: string, body?: unknown): Promise<unknown> {
  const answer = await call(api.url, method, path, body);
  expect(answer.status, `${method} ${path}: ${answer.text}`).toBeLessThan(300);
  return answer.body;
}

/** Imports `count` keys through the API (labelled), returning their ids in import order. */
async function importKeys(pool: string, count: number, label: string): Promise<string[]> {
  const fresh = Array.from({ length: count }, () => fakeKey());
  secrets.push(...fresh);
  const body = (await api200('POST', `/pools/${pool}/keys`, {
    keys: fresh.map((apiKey, i) => ({ apiKey, label: `${label}-${i + 1}` })),
  })) as { keys: { keyId: string }[] };
  return body.keys.map((k) => k.keyId);
}

async function open(path: string, width = 1280, base = consoleServer.url): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  page.on('response', (response) => {
    void response.text().then(
      (body) => answers.push({ url: response.url(), body }),
      () => undefined,
    );
  });
  const response = await page.goto(`${base}${path}`);
  expect(response?.status(), path).toBe(200);
  return page;
}

/**
 * An expression evaluated in the page. A string, not a function: the test's own TypeScript
 * has no DOM types, so a function over the page's elements would not check.
 */
function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate<T>(expression);
}

/** The key ids of the keys table's rows, in order. */
const ROW_IDS = "[...document.querySelectorAll('table.keys tbody tr')].map((row) => row.getAttribute('data-key-id'))";

async function screenshot(page: Page, name: string, docs = false): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  if (docs && process.env.KEYPOOL_DOCS_SCREENSHOTS === '1') {
    await page.screenshot({ path: join(DOCS_IMAGES, `console-${name}.png`), fullPage: false });
  }
}

/** A raw request, so the Host and Origin headers are exactly what the test says. */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const { port } = new URL(consoleServer.url);
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe.skipIf(!HAS_BROWSER)('the console in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    table = await createTestTable('console');
    api = await startTestServer(table.tableName);
    const bulk = await createTestTable('console-bulk');
    const seeding = Date.now();
    seeded = seedKeys({
      client: bulk.store.client,
      tableName: bulk.tableName,
      pool: 'bulk',
      count: BULK_KEYS,
      sealer: testSealer(),
      concurrency: 8,
      onSecret: (secret) => secrets.push(secret),
    }).then(() => (Date.now() - seeding) / 1000);
    // Awaited by the paging test; a failure here fails that test, never as an unhandled rejection.
    seeded.catch(() => undefined);
    consoleServer = await startConsole({
      source: overview({ endpoint: table.endpoint, region: undefined, tableName: table.tableName }),
      tableName: table.tableName,
      port: 0,
    });
    bulkConsole = await startConsole({
      source: overview({ endpoint: bulk.endpoint, region: undefined, tableName: bulk.tableName }),
      tableName: bulk.tableName,
      port: 0,
    });
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'keypool-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    // Each may be missing when the setup failed part-way (the file's real failure is reported then).
    const [opened, served, apiServer] = [browser, consoleServer, api] as ({ close(): Promise<void> } | undefined)[];
    await opened?.close();
    await served?.close();
    await apiServer?.close();
  });

  it('shows a pool created through the API, with its policy, its keys by status and a histogram whose bars match the counts', async () => {
    // Prepare: a pool with cap 3; counts 0, 0, 1, 2, 3, 5 (over the cap) set through the API.
    await api200('PUT', '/pools/stability', { maxUses: 3, cooldownSeconds: 60 });
    const ids = await importKeys('stability', 6, 'studio');
    const counts = [0, 0, 1, 2, 3, 5];
    for (const [i, keyId] of ids.entries())
      if (counts[i]) await api200('PATCH', `/pools/stability/keys/${keyId}`, { usageCount: counts[i] });
    await api200('PATCH', `/pools/stability/keys/${ids[1]}`, { status: 'disabled' });
    // Act
    const page = await open('/');
    const section = page.locator('section.pool', { has: page.locator('h2', { hasText: 'stability' }) });
    const bars = await inPage<{ label: string; keys: number; width: number }[]>(
      page,
      `[...document.querySelectorAll('#pool-stability ~ .columns table.histogram tbody tr')].map((row) => ({
        label: row.querySelector('th').textContent,
        keys: Number(row.querySelector('td.count').textContent),
        width: Number(row.querySelector('rect').getAttribute('width')),
      }))`,
    );
    const byStatus = await section.locator('table.by-status tbody tr').allTextContents();
    const headline = await section.locator('.headline').textContent();
    await screenshot(page, 'pools', true);
    // Assess
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.locator('h1').textContent()).toBe('Pools');
    expect((await section.locator('.policy').textContent())?.replace(/\s+/g, ' ')).toContain('Cap (maxUses) 3');
    expect(bars).toEqual([
      { label: '0', keys: 2, width: 100 },
      { label: '1', keys: 1, width: 50 },
      { label: '2', keys: 1, width: 50 },
      { label: '3', keys: 1, width: 50 },
      { label: 'over the cap (4+)', keys: 1, width: 50 },
    ]);
    expect(byStatus.map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([
      'active 5',
      'cooling 0',
      'suspect 0',
      'exhausted 0',
      'disabled 1',
      'undecryptable 0',
      'retired 0',
    ]);
    expect(headline?.replace(/\s+/g, ' ').trim()).toMatch(/^4 usable of 6 keys/);
    expect(await page.locator('.read time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    await page.close();
  });

  it("a key completed rate_limited shows as cooling, with the time it comes back, on its pool's page", async () => {
    // Prepare
    await api200('PUT', '/pools/images', { maxUses: 10, cooldownSeconds: 30 });
    const [keyId] = await importKeys('images', 1, 'render');
    const grant = (await api200('POST', '/pools/images/leases', {})) as LeaseGrant;
    const before = Date.now();
    await api200('POST', `/pools/images/leases/${grant.leaseId}/complete`, {
      outcome: 'rate_limited',
      retryAfterSeconds: 120,
    });
    const after = Date.now();
    await importKeys('images', 2, 'render-more');
    // Act
    const page = await open('/pools/images');
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    const status = await row.locator('td[data-label="Status"]').textContent();
    const until = await row.locator('td[data-label="Cooling until"] time').getAttribute('datetime');
    const words = await row.locator('td[data-label="Cooling until"]').textContent();
    const uses = await row.locator('td[data-label="Uses"]').textContent();
    await screenshot(page, 'keys', true);
    // Assess
    expect(status).toContain('cooling');
    expect(Date.parse(until ?? '')).toBeGreaterThanOrEqual(before + 119_000);
    expect(Date.parse(until ?? '')).toBeLessThanOrEqual(after + 121_000);
    expect(words).toMatch(/\(in (1\d\d s|2 min)\)/);
    // rate_limited gives the use back: the count is 0 again, of the cap's 11 uses.
    expect(uses?.replace(/\s+/g, ' ').trim()).toBe('0 of 11');
    expect(await page.locator('h1').textContent()).toBe('Pool images');
    await page.close();
  });

  it('lists the last maintenance runs, newest first, with what each checked, changed and failed', async () => {
    // Prepare
    const runs = new DynamoMaintenanceRunStore({ client: table.store.client, tableName: table.tableName });
    const now = Date.now();
    await runs.record({
      startedAt: new Date(now - 3_600_000).toISOString(),
      finishedAt: new Date(now - 3_590_000).toISOString(),
      pool: null,
      checked: 10_007,
      changed: 3,
      errors: 1,
      firstErrors: [{ keyId: 'k_00000000000000000000abcd', reason: 'provider answered 500 server_error' }],
    });
    await runs.record({
      startedAt: new Date(now - 60_000).toISOString(),
      finishedAt: new Date(now - 55_000).toISOString(),
      pool: 'stability',
      checked: 6,
      changed: 0,
      errors: 0,
      firstErrors: [],
    });
    // Act
    const page = await open('/runs');
    const rows = await page.locator('table.runs tbody tr').allTextContents();
    await screenshot(page, 'runs');
    // Assess
    expect(rows).toHaveLength(2);
    expect(rows[0]?.replace(/\s+/g, ' ')).toMatch(/stability 6 0 0 none/);
    expect(rows[1]?.replace(/\s+/g, ' ')).toMatch(
      /every pool 10,007 3 1 k_00000000000000000000abcd: provider answered 500/,
    );
    await page.close();
  });

  it('shows hostile labels and maintenance reasons as text: no element of theirs, no script of theirs runs', async () => {
    // Prepare: labels through the API (its rule lets every markup character through), and a run
    // record written straight to the table, as if a reason or key id carried markup.
    const labels = [
      '"><img src=x onerror=alert(1)>',
      '</script><script>alert(2)</script>',
      'javascript:alert(3)',
      "<svg onload=alert(4)> & &amp; ' {{7*7}}",
    ];
    await api200('PUT', '/pools/hostile', { maxUses: 3 });
    const fresh = labels.map(() => fakeKey());
    secrets.push(...fresh);
    const { keys } = (await api200('POST', '/pools/hostile/keys', {
      keys: fresh.map((apiKey, i) => ({ apiKey, label: labels[i] })),
    })) as { keys: { keyId: string; label: string }[] };
    const runs = new DynamoMaintenanceRunStore({ client: table.store.client, tableName: table.tableName });
    const reason = '<img src=x onerror=alert(5)></td></tr></table><script>alert(6)</script>';
    await runs.record({
      startedAt: new Date(Date.now() - 30_000).toISOString(),
      finishedAt: new Date(Date.now() - 29_000).toISOString(),
      pool: '"><b>hostile</b>',
      checked: 1,
      changed: 0,
      errors: 1,
      firstErrors: [{ keyId: '"><i>k</i>', reason }],
    });
    // Every page of the context, from its first byte: an onerror fires while the page loads.
    const dialogs: string[] = [];
    const onDialog = (dialog: Dialog): void => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    };
    browser.on('dialog', onDialog);
    // Act
    const markup = async (page: Page) => ({
      injected: await inPage<number>(
        page,
        "document.querySelectorAll('main img, main svg, main script, main b, main i').length",
      ),
      scripts: await inPage<string[]>(page, "[...document.scripts].map((script) => script.getAttribute('src'))"),
    });
    const keysPage = await open('/pools/hostile');
    const shown = await inPage<Record<string, string>>(
      keysPage,
      "Object.fromEntries([...document.querySelectorAll('table.keys tbody tr')].map((row) => [row.getAttribute('data-key-id'), row.querySelector('td[data-label=\"Label\"]').textContent]))",
    );
    const onKeys = await markup(keysPage);
    await keysPage.close();
    const runsPage = await open('/runs');
    const runRow = await inPage<{ pool: string; error: string }>(
      runsPage,
      "(([row]) => ({ pool: row.querySelector('td[data-label=\"Pool\"]').textContent, error: row.querySelector('td[data-label=\"First errors\"] li').textContent }))(document.querySelectorAll('table.runs tbody tr'))",
    );
    const onRuns = await markup(runsPage);
    await runsPage.close();
    browser.off('dialog', onDialog);
    // Assess
    expect(shown).toEqual(Object.fromEntries(keys.map((key, i) => [key.keyId, labels[i]])));
    expect(runRow).toEqual({ pool: '"><b>hostile</b>', error: `"><i>k</i>: ${reason}` });
    for (const seen of [onKeys, onRuns]) expect(seen).toEqual({ injected: 0, scripts: ['/console.js'] });
    expect(dialogs).toEqual([]);
  });

  it('a pause holds as the operator moves between views, and a resume ends it everywhere', async () => {
    // Prepare
    await api200('PUT', '/pools/watched', { maxUses: 3 });
    const page = await open('/?refresh=off');
    const refresh = () => page.locator('html').getAttribute('data-refresh');
    const seen: (string | null)[] = [await refresh()];
    // Act: a pool's page, the runs, the pools again, by the page's own links; then resume.
    for (const link of [
      page.locator('section.pool h2 a', { hasText: 'watched' }),
      page.locator('nav[aria-label="Views"] a', { hasText: 'Maintenance runs' }),
      page.locator('nav[aria-label="Views"] a', { hasText: 'Pools' }),
      // The pause/resume toggle: "Resume auto-refresh" while the pause holds.
      page.locator('.read a'),
      page.locator('section.pool h2 a', { hasText: 'watched' }),
    ]) {
      const href = await link.getAttribute('href');
      await link.click();
      await page.waitForURL((url) => `${url.pathname}${url.search}` === href);
      seen.push(await refresh());
    }
    // Assess
    expect(seen).toEqual(['0', '0', '0', '0', '10', '10']);
    expect(new URL(page.url()).pathname).toBe('/pools/watched');
    await page.close();
  });

  it('a page with no key says so in words, not with a table of headings alone', async () => {
    const EMPTY_WORDS = "document.querySelector('main p.empty')?.textContent ?? null";
    // Prepare: a pool with none, and one with a single key read a key at a time (its cursor
    // leads to a page with none).
    await api200('PUT', '/pools/vacant', { maxUses: 3 });
    await importKeys('single', 1, 'only');
    // Act
    const vacant = await open('/pools/vacant');
    const first = {
      tables: await vacant.locator('table.keys').count(),
      words: await inPage<string | null>(vacant, EMPTY_WORDS),
    };
    await vacant.close();
    const single = await open('/pools/single?limit=1');
    await single.locator('a[rel="next"]').click();
    await single.waitForURL(/cursor=/);
    const later = {
      tables: await single.locator('table.keys').count(),
      words: await inPage<string | null>(single, EMPTY_WORDS),
    };
    await single.close();
    // Assess
    expect(first).toEqual({
      tables: 0,
      words: 'No key in this pool yet: import some (keypool import --pool vacant ...).',
    });
    expect(later).toEqual({ tables: 0, words: 'No more keys: the page before this one was the last.' });
  });

  it('is usable 390 px wide: nothing wider than the screen', async () => {
    for (const [path, name] of [
      ['/', 'pools-390'],
      ['/pools/images', 'keys-390'],
      ['/runs', 'runs-390'],
    ] as const) {
      // Act
      const page = await open(path, 390);
      const wide = await inPage<number>(page, 'document.documentElement.scrollWidth');
      await screenshot(page, name);
      // Assess
      expect(wide, path).toBeLessThanOrEqual(390);
      await page.close();
    }
  });

  it('refuses a request addressed to another Host, sent by a page of another origin, or not GET/HEAD; answers with the strict headers', async () => {
    // Act
    const rebound = await raw('GET', '/', { host: 'keypool.attacker.example' });
    const foreign = await raw('GET', '/', { host: '127.0.0.1', 'sec-fetch-site': 'cross-site' });
    const posted = await raw('POST', '/', { host: '127.0.0.1' });
    const head = await raw('HEAD', '/pools/stability', { host: 'localhost' });
    const served = await raw('GET', '/pools/stability', { host: 'localhost' });
    // Assess
    expect(rebound.status).toBe(403);
    expect(foreign.status).toBe(403);
    expect(posted.status).toBe(405);
    expect(posted.headers.allow).toBe('GET, HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(served.status).toBe(200);
    for (const answer of [rebound, posted, served]) {
      expect(answer.headers['content-security-policy']).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      );
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['referrer-policy']).toBe('no-referrer');
      expect(answer.headers['cache-control']).toBe('no-store');
    }
  });

  it('pages through a pool of 10,000 keys by the API cursor; the first page loads in under a second', async () => {
    // Prepare: the keys the setup began writing (sealed, straight to the table, in bulk).
    const seconds = await seeded;
    // Act: the first page, timed by the browser's own navigation timing.
    const page = await open('/pools/bulk', 1280, bulkConsole.url);
    const timing = await inPage<{ response: number; loaded: number }>(
      page,
      "(([nav]) => ({ response: nav.responseEnd, loaded: nav.loadEventEnd }))(performance.getEntriesByType('navigation'))",
    );
    const first = await inPage<string[]>(page, ROW_IDS);
    await page.locator('a[rel="next"]').click();
    await page.waitForURL(/cursor=/);
    const second = await inPage<string[]>(page, ROW_IDS);
    const firstLink = await page.locator('nav.pages a', { hasText: 'First page' }).count();
    await screenshot(page, 'keys-page-2');
    // The pools view reads every key of every pool: its figure, for the docs (not a limit).
    const pools = await open('/', 1280, bulkConsole.url);
    const poolsTiming = await inPage<number>(pools, "performance.getEntriesByType('navigation')[0].loadEventEnd");
    await pools.close();
    process.stdout.write(
      `console: a ${BULK_KEYS}-key pool (seeded in ${seconds.toFixed(1)} s): its first page of keys loads in ${timing.loaded.toFixed(0)} ms (response ${timing.response.toFixed(0)} ms); the pools view in ${poolsTiming.toFixed(0)} ms (navigation timing)\n`,
    );
    // Assess
    expect(timing.loaded).toBeLessThan(1000);
    expect(first).toHaveLength(100);
    expect(second).toHaveLength(100);
    expect([...first].sort()).toEqual(first);
    expect((second[0] ?? '') > (first.at(-1) ?? '')).toBe(true);
    expect(firstLink).toBe(1);
    await page.close();
  }, 180_000);

  it('no seeded secret is in any answer: every page, stylesheet and script the browser got, and every view fetched again', async () => {
    // Prepare: every view once more, and the assets, outside the browser too.
    // (The views of the 10,000-key pool are among the browser's answers already: they cost seconds to read again.)
    const paths = ['/', '/pools/stability', '/pools/images', '/runs', '/console.css', '/console.js'];
    const fetched = await Promise.all(paths.map((path) => raw('GET', path, { host: '127.0.0.1' })));
    const bodies = [...answers.map((a) => a.body), ...fetched.map((a) => a.body)];
    // Act
    const joined = bodies.join('\n');
    const leaked = secrets.filter((secret) => joined.includes(secret));
    // Assess
    expect(answers.some((a) => a.url.endsWith('/console.css'))).toBe(true);
    expect(answers.some((a) => a.url.endsWith('/console.js'))).toBe(true);
    expect(secrets.length).toBeGreaterThan(BULK_KEYS);
    expect(leaked).toEqual([]);
    expect(joined).not.toMatch(/sk-test-/);
  });
});
