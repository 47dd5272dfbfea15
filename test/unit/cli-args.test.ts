/**
 * The CLI's argument handling, in process: runCli with captured output and services that
 * fail if touched, so every case here is decided before any store is reached.
 */
import { describe, expect, it } from 'vitest';
import type { CliIo, CliServices } from '../../lib/cli/framework.js';
import { runCli } from '../../lib/cli/main.js';

function capture(): CliIo & { stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { out: (t) => out.push(t), err: (t) => err.push(t), isTTY: false, stdout: () => out.join('\n'), stderr: () => err.join('\n') };
}

/** Services a usage error must never reach. */
const untouchable = (): CliServices => {
  const fail = (): never => {
    throw new Error('a service was built for a command line that should have been refused');
  };
  return { broker: fail, maintenance: fail, migration: fail };
};

describe('keypool CLI arguments', () => {
  it.each([
    [['lease', '--max-uses', 'three']],
    [['lease', '--bogus']],
    [['complete']],
    [['complete', 'x', '--outcome', 'great']],
    [['frobnicate']],
    [['add']],
    [['add', 'short']],
    [['add', 'sk-test-valid-key-000', '--label', 'bad\u0007label']],
    [['list', '--status', 'gone']],
    [['maintain', '--min-credits', '-1']],
    [['migrate']],
    [['migrate', '--from-table', 'x']],
  ])('exits 2 with one line on stderr for %j', async (args) => {
    // Prepare
    const io = capture();
    // Act
    const code = await runCli(args, io, untouchable);
    // Assess
    expect(code).toBe(2);
    expect(io.stderr().trim().split('\n')).toHaveLength(1);
    expect(io.stderr()).toMatch(/^keypool[ :]/);
  });

  it('prints help for the CLI and for every command, exit 0', async () => {
    // Prepare
    const io = capture();
    // Act
    const code = await runCli(['--help'], io, untouchable);
    // Assess
    expect(code).toBe(0);
    const commands = [...io.stdout().matchAll(/^ {2}([a-z]+) {2}/gm)].map((m) => m[1] ?? '');
    expect(commands).toEqual(expect.arrayContaining(['add', 'list', 'lease', 'complete', 'increment', 'disable', 'enable', 'migrate', 'maintain', 'status']));
    for (const command of commands) {
      const own = capture();
      expect(await runCli([command, '--help'], own, untouchable), command).toBe(0);
      expect(own.stdout(), command).toContain(`usage: keypool ${command}`);
    }
  });

  it('without a command prints the help and exits 2', async () => {
    const io = capture();
    expect(await runCli([], io, untouchable)).toBe(2);
    expect(io.stdout()).toContain('usage: keypool <command>');
  });
});
