#!/usr/bin/env node
// CI's dependency audit: `npm audit --omit=dev` (what the Lambdas and the CLI ship), read as
// JSON and turned into one line and an exit code.
//
// - A high or critical advisory in a production dependency fails CI (exit 1): those are the
//   ones worth stopping a merge for; low and moderate ones are counted in the line and pass.
// - A registry that refuses or does not answer the audit endpoint (mirrors and proxies often
//   answer the bulk-advisory POST with 404 or 405; an offline runner cannot connect) skips
//   the audit with one line saying why (exit 0): an audit that could not run is no finding,
//   and CI must not depend on one registry feature.
import { spawn } from 'node:child_process';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

const TIMEOUT_MS = 120_000;
const FAILING = ['critical', 'high'];
const SEVERITIES = ['critical', 'high', 'moderate', 'low', 'info'];

/** `npm audit --omit=dev --json`: its stdout, or why it gave none. */
function audit() {
  return new Promise((done) => {
    let child;
    try {
      child = spawn('npm', ['audit', '--omit=dev', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (error) {
      done({ problem: `could not run npm (${error.code ?? error.message})` });
      return;
    }
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill();
      done({ problem: `no answer within ${TIMEOUT_MS / 1000} s` });
    }, TIMEOUT_MS);
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.once('error', (error) => {
      clearTimeout(timer);
      done({ problem: `could not run npm (${error.code ?? error.message})` });
    });
    child.once('close', () => {
      clearTimeout(timer);
      done({ stdout });
    });
  });
}

/** One line of npm's error message, without any user:password a registry URL may carry. */
function why(message) {
  const line = String(message)
    .split('\n')[0]
    .replace(/:\/\/[^/@\s]+@/g, '://***@')
    .trim();
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** The line to print and the exit code, for what `npm audit --json` printed. */
function verdict(stdout) {
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    return { line: 'ci: npm audit skipped: npm printed no audit report', code: 0 };
  }
  const counts = report?.metadata?.vulnerabilities;
  if (report?.auditReportVersion !== 2 || typeof counts !== 'object' || counts === null) {
    const message = report?.message ?? report?.error?.summary ?? report?.error?.code ?? 'no audit report';
    return { line: `ci: npm audit skipped: the registry did not answer the audit endpoint (${why(message)})`, code: 0 };
  }
  const tally = SEVERITIES.map((s) => `${s} ${Number(counts[s] ?? 0)}`).join(', ');
  const failing = FAILING.reduce((sum, s) => sum + Number(counts[s] ?? 0), 0);
  if (failing === 0)
    return { line: `ci: npm audit: no high or critical advisory in production dependencies (${tally})`, code: 0 };
  const names = Object.values(report.vulnerabilities ?? {})
    .filter((v) => FAILING.includes(v?.severity))
    .map((v) => v.name)
    .sort();
  return {
    line: `ci: npm audit: high or critical advisories in production dependencies (${tally}: ${names.join(', ')}); run npm audit --omit=dev for details`,
    code: 1,
  };
}

const result = await audit();
const { line, code } = result.problem
  ? { line: `ci: npm audit skipped: ${result.problem}`, code: 0 }
  : verdict(result.stdout);
process.stdout.write(`${line}\n`);
process.exitCode = code;
