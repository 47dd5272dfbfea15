/**
 * The local wrapping key (for `npm start` and tests; AWS uses KMS): 32 random bytes in a file
 * in the data dir, created on first start with mode 0600. A key file that others can read is
 * refused rather than used, since whoever reads it reads every secret sealed under it.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCAL_SEALING_KEY_FILE = 'sealing-key';
export const LOCAL_SEALING_KEY_BYTES = 32;

/** The key file a data dir holds. */
export function dataDirKeyFile(dataDir: string): string {
  return join(dataDir, LOCAL_SEALING_KEY_FILE);
}

export class UnsafeSealingKeyFile extends Error {
  override readonly name = 'UnsafeSealingKeyFile';
}

export interface LocalSealingKey {
  /** the 256-bit key; never log it */
  key: Buffer;
  path: string;
  /** true when this call generated the key */
  created: boolean;
}

// Windows has no group/other permission bits to check.
const CHECK_MODE = process.platform !== 'win32';

/**
 * Reads the key at `path`, refusing (UnsafeSealingKeyFile) a file that is not a regular file,
 * is readable or writable by group or others, or is not exactly 32 bytes. The message says
 * what to do and never contains key material.
 */
export async function readLocalSealingKey(path: string): Promise<Buffer> {
  // O_NOFOLLOW: a symbolic link could point the key anywhere; refuse it like a loose mode.
  // (Windows has no O_NOFOLLOW: undefined there, and `| undefined` adds nothing.)
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP')
      throw new UnsafeSealingKeyFile(`${path} is a symbolic link; the sealing key must be a regular file`);
    throw error;
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UnsafeSealingKeyFile(`${path} is not a regular file; the sealing key must be one`);
    if (CHECK_MODE && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
      throw new UnsafeSealingKeyFile(
        `${path} has mode ${mode}: group or others can read or write the sealing key. Run \`chmod 600 ${path}\` if only you have read it; otherwise treat it as leaked, replace it and reseal.`,
      );
    }
    if (info.size !== LOCAL_SEALING_KEY_BYTES) {
      throw new UnsafeSealingKeyFile(
        `${path} is ${info.size} bytes; a sealing key is exactly ${LOCAL_SEALING_KEY_BYTES} bytes (256 bits)`,
      );
    }
    const key = Buffer.alloc(LOCAL_SEALING_KEY_BYTES);
    const { bytesRead } = await handle.read(key, 0, LOCAL_SEALING_KEY_BYTES, 0);
    if (bytesRead !== LOCAL_SEALING_KEY_BYTES)
      throw new UnsafeSealingKeyFile(`${path} changed while it was read; try again`);
    return key;
  } finally {
    await handle.close();
  }
}

/**
 * The data dir's sealing key, generated on first use. Creation is race-free: the key is
 * written in full to a private temporary file (opened with `wx`, mode 0600) and then linked
 * to its name, which fails if another process got there first — so no process ever reads a
 * half-written key, and two first starts end with one key.
 */
export async function loadOrCreateLocalSealingKey(dataDir: string): Promise<LocalSealingKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = dataDirKeyFile(dataDir);
  const existing = await readIfPresent(path);
  if (existing) return { key: existing, path, created: false };

  const key = randomBytes(LOCAL_SEALING_KEY_BYTES);
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    // The umask can only remove bits, but say 0600 explicitly in case the file system ignored the mode.
    await handle.chmod(0o600);
    await handle.writeFile(key);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, path);
    return { key, path, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    key.fill(0);
    return { key: await readLocalSealingKey(path), path, created: false };
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return readLocalSealingKey(path);
}
