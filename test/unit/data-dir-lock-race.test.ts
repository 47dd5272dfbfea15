/**
 * Two starts that find the same stale lock at the same instant (lib/local/data-dir-lock.ts): the
 * second start's takeover runs between the first one's last look at the stale lock and its
 * removal, played in one process by a read of the lock file that lets the other start in.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { DATA_DIR_LOCK, type DataDirLock, lockDataDir } from '../../lib/local/data-dir-lock.js';

/** Called on each read of a file; set by the test. */
const reads: { hook?: (path: string) => void } = {};

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof fs>();
  return {
    ...actual,
    readFileSync: ((...args: Parameters<typeof actual.readFileSync>) => {
      const text = actual.readFileSync(...args);
      reads.hook?.(String(args[0]));
      return text;
    }) as typeof actual.readFileSync,
  };
});

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((done) => child.once('exit', done));
  return child.pid ?? 0;
}

/** The lock `take` gets, or undefined when it was refused. */
function attempt(take: () => DataDirLock): DataDirLock | undefined {
  try {
    return take();
  } catch {
    return undefined;
  }
}

describe('the data dir lock, taken over by two starts at once', () => {
  it('goes to one of them: neither removes the lock the other took', async () => {
    // Prepare: a lock left by a start killed outright; the other start comes in as the first
    // looks at that lock the second time, just before it would remove it.
    const dir = fs.mkdtempSync(join(tmpdir(), 'keypool-lock-race-'));
    const path = join(dir, DATA_DIR_LOCK);
    fs.writeFileSync(path, JSON.stringify({ pid: await deadPid(), ports: {} }));
    let lockReads = 0;
    let other: DataDirLock | undefined;
    reads.hook = (read) => {
      if (read !== path || ++lockReads !== 2) return;
      reads.hook = undefined;
      other = attempt(() => lockDataDir(dir, { API: 2 }));
    };
    // Act
    const first = attempt(() => lockDataDir(dir, { API: 1 }));
    // Assess
    expect([first, other].filter((lock) => lock !== undefined)).toHaveLength(1);
    first?.release();
    other?.release();
  });
});
