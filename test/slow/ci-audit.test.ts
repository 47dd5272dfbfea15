/**
 * CI's dependency audit (.ci/audit.js) against a fake `npm` on PATH: a refused audit endpoint
 * skips with one line, a high or critical advisory in production dependencies fails, lesser
 * ones pass with their counts.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AUDIT = join(ROOT, '.ci', 'audit.js');

/** Runs .ci/audit.js with an `npm` that prints `stdout` and exits `code`; answers its exit, output and npm's arguments. */
function auditWith(stdout: string, code: number): { code: number | null; lines: string[]; npmArgs: string } {
  const dir = mkdtempSync(join(tmpdir(), 'keypool-fake-npm-'));
  writeFileSync(join(dir, 'answer.json'), stdout);
  const npm = join(dir, 'npm');
  writeFileSync(npm, `#!/bin/sh\necho "$@" > "${dir}/args"\ncat "${dir}/answer.json"\nexit ${code}\n`);
  chmodSync(npm, 0o755);
  const run = spawnSync(process.execPath, [AUDIT], {
    env: { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` },
    encoding: 'utf8',
  });
  return {
    code: run.status,
    lines: run.stdout.trim().split('\n'),
    npmArgs: readFileSync(join(dir, 'args'), 'utf8').trim(),
  };
}

function report(
  counts: Partial<Record<'info' | 'low' | 'moderate' | 'high' | 'critical', number>>,
  vulnerable: Record<string, string> = {},
): string {
  const all = { info: 0, low: 0, moderate: 0, high: 0, critical: 0, ...counts };
  const vulnerabilities = Object.fromEntries(
    Object.entries(vulnerable).map(([name, severity]) => [
      name,
      { name, severity, isDirect: false, via: [], effects: [], range: '*', nodes: [], fixAvailable: true },
    ]),
  );
  return JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities,
    metadata: { vulnerabilities: { ...all, total: Object.values(all).reduce((a, b) => a + b, 0) } },
  });
}

// What npm 11 printed here when the registry refused the bulk advisory endpoint.
const REFUSED = JSON.stringify({
  message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
  method: 'POST',
  uri: 'https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
  statusCode: 405,
  body: '',
  error: { summary: '', detail: '' },
});

describe('CI dependency audit', () => {
  it('a registry that refuses the audit endpoint does not fail CI: one line says the audit was skipped and why', () => {
    // Act
    const run = auditWith(REFUSED, 1);
    // Assess
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([
      'ci: npm audit skipped: the registry did not answer the audit endpoint (405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk)',
    ]);
    expect(run.npmArgs).toBe('audit --omit=dev --json');
  });

  it('an unreachable registry or no report at all skips too, never echoing a password in a registry URL', () => {
    // Act
    const offline = auditWith(
      JSON.stringify({
        message:
          'request to https://ci:hunter2@npm.corp.example/-/npm/v1/security/advisories/bulk failed, reason: getaddrinfo ENOTFOUND npm.corp.example',
        error: { summary: '', detail: '' },
      }),
      1,
    );
    const garbage = auditWith('npm ERR! something else', 1);
    // Assess
    expect(offline.code).toBe(0);
    expect(offline.lines).toHaveLength(1);
    expect(offline.lines[0]).toMatch(/^ci: npm audit skipped: .*ENOTFOUND/);
    expect(offline.lines[0]).not.toContain('hunter2');
    expect(garbage).toMatchObject({ code: 0, lines: ['ci: npm audit skipped: npm printed no audit report'] });
  });

  it('a high or critical advisory in a production dependency fails CI, naming the packages', () => {
    // Act
    const run = auditWith(
      report({ critical: 1, high: 1, moderate: 1 }, { handlebars: 'critical', minimist: 'high', debug: 'moderate' }),
      1,
    );
    // Assess
    expect(run.code).toBe(1);
    expect(run.lines).toEqual([
      'ci: npm audit: high or critical advisories in production dependencies (critical 1, high 1, moderate 1, low 0, info 0: handlebars, minimist); run npm audit --omit=dev for details',
    ]);
  });

  it('low and moderate advisories pass with their counts; a clean report passes', () => {
    // Act
    const lesser = auditWith(report({ moderate: 2, low: 1 }, { debug: 'moderate', ms: 'moderate', qs: 'low' }), 1);
    const clean = auditWith(report({}), 0);
    // Assess
    expect(lesser).toMatchObject({
      code: 0,
      lines: [
        'ci: npm audit: no high or critical advisory in production dependencies (critical 0, high 0, moderate 2, low 1, info 0)',
      ],
    });
    expect(clean).toMatchObject({
      code: 0,
      lines: [
        'ci: npm audit: no high or critical advisory in production dependencies (critical 0, high 0, moderate 0, low 0, info 0)',
      ],
    });
  });

  it('CI runs the audit after installing and before the tests', () => {
    // Prepare
    const steps = readFileSync(join(ROOT, '.ci', 'run'), 'utf8')
      .split('\n')
      .filter((line) => !line.startsWith('#'));
    // Act
    const install = steps.indexOf('npm ci --no-audit --no-fund');
    const auditStep = steps.indexOf('node .ci/audit.js');
    const tests = steps.indexOf('npm test');
    // Assess
    expect(install).toBeGreaterThanOrEqual(0);
    expect(auditStep).toBeGreaterThan(install);
    expect(tests).toBeGreaterThan(auditStep);
  });
});
