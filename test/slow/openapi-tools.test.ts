/**
 * The OpenAPI document through the tools its readers use: Redocly's linter with its recommended
 * rules, and openapi-typescript's types under a small openapi-fetch client compiled by tsc. In
 * the slow project: the linter and the compiler take a few seconds.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../../lib/http/openapi.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Under node_modules, so that the client's `import 'openapi-fetch'` resolves as in a project
// that installed it.
let dir: string;

beforeAll(() => {
  mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
  dir = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'keypool-openapi-'));
  writeFileSync(join(dir, 'openapi.json'), JSON.stringify(openApiDocument(), null, 2));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface RedoclyReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string }[];
}

describe('the OpenAPI document under its tools', () => {
  it("passes Redocly's recommended rules with no error and no warning", () => {
    // Prepare
    writeFileSync(join(dir, 'redocly.yaml'), 'extends:\n  - recommended\n');
    // Act
    const run = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js'),
        'lint',
        'openapi.json',
        '--config',
        'redocly.yaml',
        '--format',
        'json',
      ],
      {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        // No network here or in CI: no usage report, no check for a newer version.
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
    );
    // Assess
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as RedoclyReport;
    expect(report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message}`)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    expect(run.status).toBe(0);
  });

  it('generates types that a typed client compiles against, and that refuse a wrong field', async () => {
    // Prepare
    const types = astToString(await openapiTS(openApiDocument() as unknown as OpenAPI3));
    writeFileSync(join(dir, 'schema.d.ts'), types);
    const files = Object.entries({ client: CLIENT, ...WRONG }).map(([name, source]) => {
      const file = join(dir, `${name}.ts`);
      writeFileSync(file, source);
      return [name, file] as const;
    });
    // Act
    const program = ts.createProgram(
      files.map(([, file]) => file),
      {
        strict: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
        types: [],
        skipLibCheck: true,
      },
    );
    const errorsOf = (file: string): string[] =>
      ts
        .getPreEmitDiagnostics(program, program.getSourceFile(file))
        .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    // Assess
    expect(types).toContain('LeaseGrant: {');
    const [[, client], ...wrong] = files as [readonly [string, string], ...(readonly [string, string])[]];
    expect(errorsOf(client)).toEqual([]);
    for (const [name, file] of wrong) expect(errorsOf(file).join('\n'), name).toMatch(WRONG_BECAUSE[name] ?? /never/);
  });
});

/** A client of the generated types: leases a key, completes the lease, lists the pool. */
const CLIENT = `
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

type LeaseGrant = components['schemas']['LeaseGrant'];

export async function leaseCompleteList(baseUrl: string, pool: string): Promise<string[]> {
  const keypool = createClient<paths>({ baseUrl });
  const leased = await keypool.POST('/pools/{pool}/leases', { params: { path: { pool } }, body: { maxUses: 3 } });
  if (leased.error) {
    const wait = 'error' in leased.error && leased.error.error === 'no_usable_key' ? leased.error.retryAfterSeconds : 0;
    throw new Error(\`\${leased.error.message} (retry after \${wait ?? '?'} s)\`);
  }
  const grant: LeaseGrant = leased.data;
  const done = await keypool.POST('/pools/{pool}/leases/{leaseId}/complete', {
    params: { path: { pool, leaseId: grant.leaseId } },
    body: { outcome: 'success' },
  });
  if (done.error) throw new Error(done.error.message);
  const page = await keypool.GET('/pools/{pool}/keys', { params: { path: { pool }, query: { limit: 100, status: 'active' } } });
  if (page.error) throw new Error(page.error.message);
  const counted: number = done.data.usageCount;
  return page.data.keys.map((key) => \`\${key.keyId} \${key.maskedKey} \${key.usageCount} (\${counted})\`);
}
`;

/** The client with one mistake each, which the generated types must refuse. */
const WRONG: Record<string, string> = {
  misspelledField: CLIENT.replace('grant.leaseId', 'grant.leaseID'),
  unknownOutcome: CLIENT.replace("outcome: 'success'", "outcome: 'succeeded'"),
  limitAsText: CLIENT.replace('limit: 100', "limit: '100'"),
  unknownErrorCode: CLIENT.replace("=== 'no_usable_key'", "=== 'no_key_left'"),
  countAsText: CLIENT.replace('const counted: number', 'const counted: string'),
  noSuchRoute: CLIENT.replace("GET('/pools/{pool}/keys'", "GET('/pools/{pool}/key'"),
};

const WRONG_BECAUSE: Record<string, RegExp> = {
  misspelledField: /Property 'leaseID' does not exist/,
  unknownOutcome: /'"succeeded"' is not assignable/,
  limitAsText: /'string' is not assignable to type 'number'/,
  unknownErrorCode: /no overlap/,
  countAsText: /'number' is not assignable to type 'string'/,
  noSuchRoute: /'"\/pools\/\{pool\}\/key"' is not assignable/,
};
