/**
 * Kept answers in S3 (AnswerStore on AWS): one object per answer, under the bucket's default
 * encryption (SSE-KMS with the bucket's key: no encryption header is sent, since naming
 * `aws:kms` without a key id would pick the account's aws/s3 key instead), deleted by the
 * bucket's one-day lifecycle rule; an object older than KEPT_MS is not read meanwhile.
 *
 * The object is a small header frame (a 4-byte big-endian length and the status and headers as
 * JSON: headers may hold what S3 metadata cannot spell) followed by the body as it came.
 * Uploads stream: an answer that fits in one part is one PutObject; a larger one is a multipart
 * upload of PART_BYTES parts sent one at a time, so memory holds about one part whatever the
 * answer's size, and a failed upload is aborted (the lifecycle rule also ends abandoned ones).
 * Every part goes up with its SHA-256 signed (S3Rest), which S3 checks against the body.
 */
import { ANSWERS_PREFIX, KEPT_MS } from '../domain/proxy-names.js';
import type { AnswerStore, KeptAnswer } from '../ports/proxy.js';
import { decodeAnswerHead, encodeAnswerHead, MAX_ANSWER_HEAD_BYTES } from './answer-head.js';
import { isAnswerRef } from '../domain/answer-ref.js';
import { completeUploadBody, type S3Rest, xmlValue } from './s3-rest.js';

/** A multipart upload's part (S3's least is 5 MiB, but for the last part). */
export const PART_BYTES = 8 * 1024 * 1024;
/** The key prefix of kept answers in the bucket (the lifecycle rule may name it). */

export interface S3AnswerStoreOptions {
  client: S3Rest;
  bucket: string;
  /** for tests: the multipart part size (at least 5 MiB on S3) */
  partBytes?: number;
  clock?: () => number;
}

function headerFrame(answer: KeptAnswer): Buffer {
  const head = encodeAnswerHead(answer);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.length);
  return Buffer.concat([length, head]);
}

export class S3AnswerStore implements AnswerStore {
  private readonly options: Required<S3AnswerStoreOptions>;

  constructor(options: S3AnswerStoreOptions) {
    this.options = { ...options, partBytes: options.partBytes ?? PART_BYTES, clock: options.clock ?? Date.now };
  }

  async put(ref: string, answer: KeptAnswer): Promise<void> {
    if (!isAnswerRef(ref)) throw new RangeError('an answer is kept only under a reference answerRef made');
    const { client, bucket, partBytes } = this.options;
    const key = `${ANSWERS_PREFIX}${ref}`;
    let pending: Buffer[] = [headerFrame(answer)];
    let pendingBytes = pending[0]?.length ?? 0;
    let uploadId: string | undefined;
    const parts: { number: number; etag: string }[] = [];
    const sendPart = async (body: Buffer): Promise<void> => {
      uploadId ??= await this.createUpload(key);
      const number = parts.length + 1;
      const query = { partNumber: String(number), uploadId };
      const { etag } = await client.sendForHeaders({ method: 'PUT', bucket, key, query, body });
      if (etag === undefined) throw new Error('S3 answered an uploaded part without its ETag');
      parts.push({ number, etag });
    };
    try {
      for await (const chunk of answer.body) {
        pending.push(Buffer.from(chunk));
        pendingBytes += chunk.byteLength;
        if (pendingBytes < partBytes) continue;
        const joined = Buffer.concat(pending);
        let offset = 0;
        for (; joined.length - offset >= partBytes; offset += partBytes)
          await sendPart(joined.subarray(offset, offset + partBytes));
        pending = [joined.subarray(offset)];
        pendingBytes = joined.length - offset;
      }
      const rest = Buffer.concat(pending);
      if (uploadId === undefined) {
        await client.sendForHeaders({ method: 'PUT', bucket, key, body: rest });
        return;
      }
      if (rest.length > 0) await sendPart(rest);
      await client.sendForXml({
        method: 'POST',
        bucket,
        key,
        query: { uploadId },
        headers: { 'content-type': 'application/xml' },
        body: completeUploadBody(parts),
      });
    } catch (error) {
      if (uploadId !== undefined)
        await client.sendForHeaders({ method: 'DELETE', bucket, key, query: { uploadId } }).catch(() => undefined);
      throw error;
    }
  }

  private async createUpload(key: string): Promise<string> {
    const document = await this.options.client.sendForXml({
      method: 'POST',
      bucket: this.options.bucket,
      key,
      query: { uploads: '' },
    });
    const uploadId = xmlValue(document, 'UploadId');
    if (!uploadId) throw new Error('S3 began a multipart upload without naming it');
    return uploadId;
  }

  async get(ref: string): Promise<KeptAnswer | undefined> {
    if (!isAnswerRef(ref)) return undefined;
    const out = await this.options.client
      .send({ method: 'GET', bucket: this.options.bucket, key: `${ANSWERS_PREFIX}${ref}` })
      .catch((error: unknown) => {
        if (error instanceof Error && error.name === 'NoSuchKey') return undefined;
        throw error;
      });
    if (!out) return undefined;
    const stream = out.body;
    const abandon = (): undefined => {
      stream.destroy();
      return undefined;
    };
    const modified = Date.parse(out.headers['last-modified'] ?? '');
    if (!Number.isFinite(modified) || this.options.clock() - modified >= KEPT_MS) return abandon();
    const chunks = stream[Symbol.asyncIterator]();
    let held = Buffer.alloc(0);
    let headLength: number | undefined;
    let head: ReturnType<typeof decodeAnswerHead>;
    try {
      while (headLength === undefined || held.length < 4 + headLength) {
        const next = await chunks.next();
        if (next.done) return abandon();
        held = Buffer.concat([held, next.value]);
        if (headLength === undefined && held.length >= 4) {
          headLength = held.readUInt32BE(0);
          if (headLength > MAX_ANSWER_HEAD_BYTES) return abandon();
        }
      }
      head = decodeAnswerHead(held.subarray(4, 4 + headLength));
    } catch (error) {
      // A head that does not parse (or a body that broke) lets the connection go, as an abandoned one does.
      stream.destroy();
      throw error;
    }
    const first = held.subarray(4 + headLength);
    async function* body(): AsyncIterable<Uint8Array> {
      try {
        if (first.length > 0) yield first;
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
      } finally {
        // A caller that stops early (it went away) must not leave the socket held; after the
        // last byte this is a no-op and the connection goes back to the pool.
        stream.destroy();
      }
    }
    return { ...head, body: body() };
  }
}
