/**
 * One DynamoDB Local per data dir. Two of them over one database file (two `npm start`s on other
 * ports) would each keep their own view of it and lose each other's writes, so the data dir
 * holds a lock file, created exclusively, naming the process that started DynamoDB Local there,
 * the DynamoDB Local process itself and the ports they listen on. A lock whose processes no
 * longer run (a start killed outright) is taken over.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStackError } from './local-stack-error.js';

/** The lock's name in the data dir. */
export const DATA_DIR_LOCK = 'keypool.lock';

/** What the lock file holds. */
export interface LockHolder {
  /** the process that started DynamoDB Local */
  pid: number;
  /** DynamoDB Local itself, once spawned: while it runs the database file is in use, whoever started it */
  dynamoPid?: number;
  /** what the holder listens on, by name ("API", "console", "DynamoDB Local"), for the refusal's message */
  ports: Record<string, number>;
}

export interface DataDirLock {
  /** Records the DynamoDB Local process: the lock is held while it runs, even if its starter is gone. */
  holdFor(dynamoPid: number): void;
  /** Removes the lock file while it is still this one's; synchronous (an exit hook may call it) and idempotent. */
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): { text: string; holder: LockHolder | undefined } | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number') return { text, holder: undefined };
    return {
      text,
      holder: {
        pid: parsed.pid,
        ports: parsed.ports ?? {},
        ...(typeof parsed.dynamoPid === 'number' ? { dynamoPid: parsed.dynamoPid } : {}),
      },
    };
  } catch {
    return { text, holder: undefined };
  }
}

/** Whether the lock's DynamoDB Local runs (or, before it was spawned, its starter). */
function held(holder: LockHolder): boolean {
  return alive(holder.dynamoPid ?? holder.pid);
}

function refusal(dir: string, holder: LockHolder): LocalStackError {
  const pids = `pid ${holder.pid}${holder.dynamoPid === undefined ? '' : `, DynamoDB Local pid ${holder.dynamoPid}`}`;
  const ports = Object.entries(holder.ports)
    .map(([what, port]) => `${what} ${port}`)
    .join(', ');
  return new LocalStackError(
    `data dir ${dir} is in use by another keypool (${pids}${ports ? `; ${ports}` : ''}): stop it first, or set KEYPOOL_DATA_DIR to another directory`,
  );
}

/**
 * Throws the refusal a start on `dir` would meet, without taking anything: for a caller that
 * would rather say so before its other checks.
 */
export function assertDataDirFree(dir: string): void {
  const found = readHolder(join(dir, DATA_DIR_LOCK));
  if (found?.holder && held(found.holder)) throw refusal(dir, found.holder);
}

/**
 * Writes `holder` to `path` whole: through a file of its own, linked (exclusive) or renamed
 * (replacing) into place. On a file system without hard links the exclusive write is a plain
 * `wx` create, still exclusive, only not whole at every instant.
 */
function place(path: string, holder: LockHolder, exclusive: boolean): void {
  const text = `${JSON.stringify(holder)}\n`;
  const draft = `${path}.${process.pid}`;
  writeFileSync(draft, text, { mode: 0o644 });
  if (!exclusive) {
    renameSync(draft, path);
    return;
  }
  try {
    linkSync(draft, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error;
    writeFileSync(path, text, { flag: 'wx', mode: 0o644 });
  } finally {
    unlinkSync(draft);
  }
}

/**
 * Removes the stale lock whose text is `stale`, unless another start is removing it (then nothing:
 * the caller looks again). Removals go one at a time, each under a guard file created
 * exclusively, and a lock is only ever created where none is: so the lock looked at is the lock
 * removed, never one another start took over meanwhile. A guard whose start is gone (killed while
 * it held it) is removed for the next look.
 */
function removeStale(path: string, stale: string): void {
  const guard = `${path}.takeover`;
  try {
    writeFileSync(guard, String(process.pid), { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number(readText(guard));
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) unlinkIfThere(guard);
    return;
  }
  try {
    if (readText(path) === stale) unlinkSync(path);
  } finally {
    unlinkIfThere(guard);
  }
}

/** A file's text; undefined when there is no such file. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Takes the data dir's lock for this process, or throws a LocalStackError of one line naming the
 * dir and the running holder's pids and ports. A lock whose processes are gone is taken over, by
 * one start only when several find it at once (removeStale). The lock appears whole or not at all
 * where the file system has hard links (a reader never sees a half-written one).
 */
export function lockDataDir(dir: string, ports: Record<string, number>): DataDirLock {
  const path = join(dir, DATA_DIR_LOCK);
  let mine: LockHolder = { pid: process.pid, ports };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      place(path, mine, true);
      let released = false;
      return {
        holdFor(dynamoPid) {
          if (released) return;
          mine = { ...mine, dynamoPid };
          place(path, mine, false);
        },
        release() {
          if (released) return;
          released = true;
          try {
            const found = readHolder(path);
            if (found?.holder?.pid === mine.pid && found.holder.dynamoPid === mine.dynamoPid) unlinkSync(path);
          } catch {
            // Left in place, its processes gone: the next start takes it over.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const found = readHolder(path);
    if (!found) continue;
    if (found.holder && held(found.holder)) throw refusal(dir, found.holder);
    // Stale (or unreadable): removed only if it is still the lock just read.
    removeStale(path, found.text);
  }
  throw new LocalStackError(`could not take ${path}: other starts keep taking it; try again`);
}
