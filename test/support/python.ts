/**
 * Debian's Python for the Python client's tests: a venv of /usr/bin/python3 made with
 * --system-site-packages (pytest, requests, botocore, setuptools and wheel come from apt: there
 * is no PyPI here), the wheel built offline, and commands run with nothing that reaches the
 * network (no package index, no pip version check, no instance-metadata credentials).
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Debian's interpreter: another python3 on PATH may lack the apt packages. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** What the tests need from apt, as .ci/run installs it. */
export const PYTHON_APT_PACKAGES = [
  'python3-pytest',
  'python3-requests',
  'python3-botocore',
  'python3-venv',
  'python3-setuptools',
  'python3-wheel',
];

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end without blocking the event loop; never throws for a non-zero exit. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<Run> {
  return new Promise((done) => {
    execFile(
      command,
      args,
      { env: { ...pythonEnv(), ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return done({ code: 0, stdout, stderr });
        // A number is the exit code; anything else (a timeout, a missing command) is said in stderr.
        if (typeof error.code === 'number') return done({ code: error.code, stdout, stderr });
        done({ code: 1, stdout, stderr: `${stderr}\n${error.message}` });
      },
    );
  });
}

/**
 * The environment every Python command gets: this process's, without AWS credentials or
 * settings, proxies and Python path overrides, and with everything that could reach the network
 * turned off.
 */
function pythonEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !name.startsWith('AWS_') &&
        !/^(https?|all)_proxy$/i.test(name) &&
        !['PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL'].includes(name),
    ),
  );
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    PIP_NO_INDEX: '1',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PIP_NO_INPUT: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

/** Fails with what to install when Debian's Python or one of the apt packages is missing (CI installs them). */
export async function assertPythonTooling(): Promise<void> {
  const install = `apt-get install -y ${PYTHON_APT_PACKAGES.join(' ')} (.ci/run installs them)`;
  if (!existsSync(SYSTEM_PYTHON)) throw new Error(`the Python client's tests need ${SYSTEM_PYTHON}: ${install}`);
  const probe = await run(SYSTEM_PYTHON, ['-c', 'import pytest, requests, botocore, setuptools, wheel, ensurepip']);
  if (probe.code !== 0)
    throw new Error(`the Python client's tests need Python packages from apt: ${install}\n${probe.stderr.trim()}`);
}

/** A venv at `dir` over Debian's Python, seeing its apt packages. */
export async function makeVenv(dir: string): Promise<string> {
  const made = await run(SYSTEM_PYTHON, ['-m', 'venv', '--system-site-packages', dir]);
  if (made.code !== 0) throw new Error(`python3 -m venv failed: ${made.stderr}`);
  return join(dir, 'bin', 'python');
}

/** Runs `python -m pip ...`, failing with pip's output. */
export async function pip(python: string, args: string[]): Promise<Run> {
  const result = await run(python, ['-m', 'pip', ...args]);
  if (result.code !== 0) throw new Error(`pip ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/**
 * Copies the package's source to `dir` (builds write build/ and *.egg-info into the source;
 * the tree stays clean) and answers the copy's path.
 */
export function copyPackage(source: string, dir: string): string {
  cpSync(source, dir, {
    recursive: true,
    filter: (path) =>
      !['__pycache__', 'build', '.pytest_cache'].includes(basename(path)) && !path.endsWith('.egg-info'),
  });
  return dir;
}

/** Builds the wheel of the package at `source` into `outDir` offline, with `python`'s pip; answers its path. */
export async function buildWheel(python: string, source: string, outDir: string): Promise<string> {
  await pip(python, ['wheel', '--no-build-isolation', '--no-deps', '--wheel-dir', outDir, source]);
  const wheel = readdirSync(outDir).find((name) => name.endsWith('.whl'));
  if (!wheel) throw new Error(`no wheel in ${outDir}`);
  return join(outDir, wheel);
}
