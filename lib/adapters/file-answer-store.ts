/**
 * Kept answers in the local data dir (AnswerStore for `npm start`): one file per answer,
 * encrypted with AES-256-GCM under a key derived (HKDF-SHA-256) from the local sealing key, a
 * random salt of the file's own and the answer's reference, streamed in and out a frame at a
 * time so a 50 MiB answer never sits in memory whole.
 *
 * The file: `KPA1`, 32 bytes of salt, then frames. A frame is a 4-byte big-endian length (its
 * high bit marks the last frame), the ciphertext and its 16-byte tag. Frame 0 holds the status
 * and headers (JSON); the body follows in frames of FRAME_BYTES, the last one shorter (or empty)
 * and marked. Each frame's nonce is its index and its last-frame mark, under a key no other file
 * shares, so frames cannot be reordered, dropped, swapped between files or cut at a frame's end
 * without a tag failing. Every frame is authenticated before any of its bytes is released:
 * a tampered or truncated file answers undefined when its head is broken, and otherwise its
 * body ends with KeptAnswerBroken where the damage starts — never with wrong bytes.
 *
 * Files are written under a temporary name and renamed into place once whole; a file older than
 * KEPT_MS is not read, and put() deletes such files (best effort, at most once a minute).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnswerStore, KeptAnswer } from '../ports/proxy.js';
import { decodeAnswerHead, encodeAnswerHead, MAX_ANSWER_HEAD_BYTES } from './answer-head.js';
import { KEPT_MS } from '../domain/proxy-names.js';
import { isAnswerRef } from '../domain/answer-ref.js';

/** The data dir's folder of kept answers. */
export const ANSWERS_DIR = 'answers';
/** The HKDF info that makes the answers' keys distinct from every other use of the sealing key. */
const KEY_INFO = 'keypool kept answer v1\n';
const MAGIC = Buffer.from('KPA1', 'latin1');
const SALT_BYTES = 32;
const HEAD_BYTES = MAGIC.length + SALT_BYTES;
const TAG_BYTES = 16;
/** A body frame's plaintext: what a reader or writer holds at a time besides one incoming chunk. */
export const FRAME_BYTES = 64 * 1024;
const LAST = 0x8000_0000;
/** How often put() looks for expired files. */
const SWEEP_EVERY_MS = 60_000;
const SUFFIX = '.answer';

/** A kept answer whose file was tampered with or cut: its body ends with this, never with wrong bytes. */
export class KeptAnswerBroken extends Error {
  override readonly name = 'KeptAnswerBroken';
}

function frameKey(master: Buffer, salt: Buffer, ref: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, salt, `${KEY_INFO}${ref}`, 32));
}

function nonce(index: number, last: boolean): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUIntBE(index, 0, 6);
  iv[6] = last ? 1 : 0;
  return iv;
}

function seal(key: Buffer, index: number, last: boolean, plain: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce(index, last));
  const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(((body.length - TAG_BYTES) | (last ? LAST : 0)) >>> 0);
  return Buffer.concat([length, body]);
}

/** Reads and opens the frame at `position`; throws KeptAnswerBroken when it is cut or fails its tag. */
async function readFrame(
  handle: FileHandle,
  key: Buffer,
  index: number,
  position: number,
  maxBytes: number,
): Promise<{ plain: Buffer; last: boolean; next: number } | undefined> {
  const length = Buffer.alloc(4);
  const { bytesRead } = await handle.read(length, 0, 4, position);
  if (bytesRead === 0) return undefined;
  if (bytesRead < 4) throw new KeptAnswerBroken('the kept answer is cut short');
  const word = length.readUInt32BE(0);
  const last = (word & LAST) !== 0;
  const size = word & ~LAST;
  if (size > maxBytes) throw new KeptAnswerBroken('the kept answer has a frame out of bounds');
  const sealed = Buffer.alloc(size + TAG_BYTES);
  const got = await handle.read(sealed, 0, sealed.length, position + 4);
  if (got.bytesRead < sealed.length) throw new KeptAnswerBroken('the kept answer is cut short');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce(index, last));
    decipher.setAuthTag(sealed.subarray(size));
    const plain = Buffer.concat([decipher.update(sealed.subarray(0, size)), decipher.final()]);
    return { plain, last, next: position + 4 + sealed.length };
  } catch {
    throw new KeptAnswerBroken('the kept answer does not open: it was changed or is not this store’s');
  }
}

export interface FileAnswerStoreOptions {
  /** the folder the answers are kept in (created, mode 0700) */
  dir: string;
  /** the local sealing key (32 bytes); the answers' keys are derived from it */
  sealingKey: Buffer;
  clock?: () => number;
}

export class FileAnswerStore implements AnswerStore {
  private readonly dir: string;
  private readonly master: Buffer;
  private readonly clock: () => number;
  private sweptAtMs = -Infinity;

  constructor(options: FileAnswerStoreOptions) {
    this.dir = options.dir;
    this.master = options.sealingKey;
    this.clock = options.clock ?? Date.now;
  }

  async put(ref: string, answer: KeptAnswer): Promise<void> {
    if (!isAnswerRef(ref)) throw new RangeError('an answer is kept only under a reference answerRef made');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.sweep().catch(() => 0);
    const path = this.path(ref);
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temporary, 'wx', 0o600);
    try {
      const salt = randomBytes(SALT_BYTES);
      const key = frameKey(this.master, salt, ref);
      await handle.write(Buffer.concat([MAGIC, salt]));
      await handle.write(seal(key, 0, false, encodeAnswerHead(answer)));
      let index = 1;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const chunk of answer.body) {
        pending.push(Buffer.from(chunk));
        pendingBytes += chunk.byteLength;
        // A frame goes out only once more bytes are known to follow it: the last frame is
        // always the one written after the body ended, and marked so.
        if (pendingBytes <= FRAME_BYTES) continue;
        const joined = Buffer.concat(pending);
        let offset = 0;
        for (; joined.length - offset > FRAME_BYTES; offset += FRAME_BYTES)
          await handle.write(seal(key, index++, false, joined.subarray(offset, offset + FRAME_BYTES)));
        pending = [joined.subarray(offset)];
        pendingBytes = joined.length - offset;
      }
      await handle.write(seal(key, index, true, Buffer.concat(pending)));
      // The file's time is the store's clock: what get() and the sweep measure its age by.
      const writtenAt = new Date(this.clock());
      await handle.utimes(writtenAt, writtenAt);
      await handle.close();
      await rename(temporary, path);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
  }

  async get(ref: string): Promise<KeptAnswer | undefined> {
    if (!isAnswerRef(ref)) return undefined;
    const path = this.path(ref);
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
    if (!handle) return undefined;
    try {
      const info = await handle.stat();
      if (!info.isFile() || this.expired(info.mtimeMs)) return undefined;
      const top = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await handle.read(top, 0, HEAD_BYTES, 0);
      if (bytesRead < HEAD_BYTES || !top.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
      const key = frameKey(this.master, top.subarray(MAGIC.length), ref);
      const frame = await readFrame(handle, key, 0, HEAD_BYTES, MAX_ANSWER_HEAD_BYTES).catch(() => undefined);
      if (!frame || frame.last) return undefined;
      return { ...decodeAnswerHead(frame.plain), body: this.body(path, key, frame.next) };
    } finally {
      await handle.close();
    }
  }

  /** The body's frames, each opened before its bytes are released; the file is opened for the reading. */
  private async *body(path: string, key: Buffer, start: number): AsyncIterable<Uint8Array> {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => {
      throw new KeptAnswerBroken('the kept answer is gone');
    });
    try {
      let position = start;
      for (let index = 1; ; index++) {
        const frame = await readFrame(handle, key, index, position, FRAME_BYTES);
        if (!frame) throw new KeptAnswerBroken('the kept answer is cut short');
        if (frame.plain.length > 0) yield frame.plain;
        if (frame.last) {
          const extra = await handle.read(Buffer.alloc(1), 0, 1, frame.next);
          if (extra.bytesRead > 0) throw new KeptAnswerBroken('the kept answer has bytes after its end');
          return;
        }
        position = frame.next;
      }
    } finally {
      await handle.close();
    }
  }

  /**
   * Deletes the answers older than KEPT_MS and temporary files left by a put that died;
   * at most once a minute, best effort (a file another process deletes first is skipped).
   */
  async sweep(): Promise<number> {
    const now = this.clock();
    if (now - this.sweptAtMs < SWEEP_EVERY_MS) return 0;
    this.sweptAtMs = now;
    let deleted = 0;
    for (const name of await readdir(this.dir).catch(() => [])) {
      if (!name.endsWith(SUFFIX) && !name.endsWith('.tmp')) continue;
      const path = join(this.dir, name);
      const info = await stat(path).catch(() => undefined);
      if (
        info &&
        this.expired(info.mtimeMs) &&
        (await unlink(path).then(
          () => true,
          () => false,
        ))
      )
        deleted++;
    }
    return deleted;
  }

  private expired(writtenAtMs: number): boolean {
    return this.clock() - writtenAtMs >= KEPT_MS;
  }

  private path(ref: string): string {
    return join(this.dir, `${ref}${SUFFIX}`);
  }
}
