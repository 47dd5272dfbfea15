/** The data dir's lock (lib/local/data-dir-lock.ts) on a real file system, without DynamoDB Local. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertDataDirFree, DATA_DIR_LOCK, lockDataDir } from '../../lib/local/data-dir-lock.js';

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((done) => child.once('exit', done));
  return child.pid ?? 0;
}

const freshDir = (): string => mkdtempSync(join(tmpdir(), 'keypool-lock-'));

describe('the data dir lock', () => {
  it('refuses a second holder while the first runs, naming its pids and ports, and frees the dir on release', () => {
    // Prepare
    const dir = freshDir();
    const first = lockDataDir(dir, { API: 3000, 'DynamoDB Local': 8000 });
    first.holdFor(process.pid);
    // Act
    const refused = (() => {
      try {
        lockDataDir(dir, { API: 3100 });
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    })();
    first.release();
    const second = lockDataDir(dir, { API: 3100 });
    // Assess
    expect(refused).toBe(
      `data dir ${dir} is in use by another keypool (pid ${process.pid}, DynamoDB Local pid ${process.pid}; API 3000, DynamoDB Local 8000): stop it first, or set KEYPOOL_DATA_DIR to another directory`,
    );
    expect(JSON.parse(readFileSync(join(dir, DATA_DIR_LOCK), 'utf8'))).toEqual({
      pid: process.pid,
      ports: { API: 3100 },
    });
    second.release();
    expect(existsSync(join(dir, DATA_DIR_LOCK))).toBe(false);
  });

  it('takes over a lock whose DynamoDB Local is gone, and one that is not a lock at all', async () => {
    // Prepare
    const gone = freshDir();
    writeFileSync(
      join(gone, DATA_DIR_LOCK),
      JSON.stringify({ pid: process.pid, dynamoPid: await deadPid(), ports: {} }),
    );
    const garbled = freshDir();
    writeFileSync(join(garbled, DATA_DIR_LOCK), '{"pid":');
    // Act
    const checked = [gone, garbled].map((dir) => {
      assertDataDirFree(dir);
      return lockDataDir(dir, { API: 1 });
    });
    // Assess
    for (const dir of [gone, garbled])
      expect(JSON.parse(readFileSync(join(dir, DATA_DIR_LOCK), 'utf8'))).toEqual({
        pid: process.pid,
        ports: { API: 1 },
      });
    for (const lock of checked) lock.release();
  });

  it('never removes a lock another holder took since', async () => {
    // Prepare: this holder's DynamoDB Local ended and another start took the stale lock over.
    const dir = freshDir();
    const mine = lockDataDir(dir, {});
    mine.holdFor(await deadPid());
    const theirs = lockDataDir(dir, { API: 2 });
    theirs.holdFor(process.pid);
    // Act
    mine.release();
    // Assess
    expect(JSON.parse(readFileSync(join(dir, DATA_DIR_LOCK), 'utf8'))).toMatchObject({ ports: { API: 2 } });
    theirs.release();
  });
});
