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
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ANSWERS_PREFIX, KEPT_MS } from '../domain/proxy-names.js';
import type { AnswerStore, KeptAnswer } from '../ports/proxy.js';
import { decodeAnswerHead, encodeAnswerHead, MAX_ANSWER_HEAD_BYTES } from './answer-head.js';
import { isAnswerRef } from '../domain/answer-ref.js';

/** A multipart upload's part (S3's least is 5 MiB, but for the last part). */
export const PART_BYTES = 8 * 1024 * 1024;
/** The key prefix of kept answers in the bucket (the lifecycle rule may name it). */

export interface S3AnswerStoreOptions {
  client: S3Client;
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
    const target = { Bucket: this.options.bucket, Key: `${ANSWERS_PREFIX}${ref}` };
    let pending: Buffer[] = [headerFrame(answer)];
    let pendingBytes = pending[0]?.length ?? 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];
    // The SDK sends a CRC32 of every part by default; S3 accepts part checksums only for an
    // upload created with their algorithm, and then wants each part's back on completion.
    const checksum = { ChecksumAlgorithm: 'CRC32' } as const;
    const sendPart = async (body: Buffer): Promise<void> => {
      uploadId ??= (await this.options.client.send(new CreateMultipartUploadCommand({ ...target, ...checksum })))
        .UploadId;
      const PartNumber = parts.length + 1;
      const out = await this.options.client.send(
        new UploadPartCommand({
          ...target,
          ...checksum,
          UploadId: uploadId,
          PartNumber,
          Body: body,
          ContentLength: body.length,
        }),
      );
      parts.push({ PartNumber, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32 });
    };
    try {
      for await (const chunk of answer.body) {
        pending.push(Buffer.from(chunk));
        pendingBytes += chunk.byteLength;
        if (pendingBytes < this.options.partBytes) continue;
        const joined = Buffer.concat(pending);
        let offset = 0;
        for (; joined.length - offset >= this.options.partBytes; offset += this.options.partBytes)
          await sendPart(joined.subarray(offset, offset + this.options.partBytes));
        pending = [joined.subarray(offset)];
        pendingBytes = joined.length - offset;
      }
      const rest = Buffer.concat(pending);
      if (uploadId === undefined) {
        await this.options.client.send(new PutObjectCommand({ ...target, Body: rest, ContentLength: rest.length }));
        return;
      }
      if (rest.length > 0) await sendPart(rest);
      await this.options.client.send(
        new CompleteMultipartUploadCommand({ ...target, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (error) {
      if (uploadId !== undefined)
        await this.options.client
          .send(new AbortMultipartUploadCommand({ ...target, UploadId: uploadId }))
          .catch(() => undefined);
      throw error;
    }
  }

  async get(ref: string): Promise<KeptAnswer | undefined> {
    if (!isAnswerRef(ref)) return undefined;
    const out = await this.options.client
      .send(new GetObjectCommand({ Bucket: this.options.bucket, Key: `${ANSWERS_PREFIX}${ref}` }))
      .catch((error: unknown) => {
        if (error instanceof Error && error.name === 'NoSuchKey') return undefined;
        throw error;
      });
    const stream = out?.Body as AsyncIterable<Uint8Array> | undefined;
    if (!out || !stream) return undefined;
    const abandon = (): undefined => {
      (out.Body as { destroy?: () => void }).destroy?.();
      return undefined;
    };
    if (out.LastModified && this.options.clock() - out.LastModified.getTime() >= KEPT_MS) return abandon();
    const chunks = stream[Symbol.asyncIterator]();
    let held = Buffer.alloc(0);
    let headLength: number | undefined;
    while (headLength === undefined || held.length < 4 + headLength) {
      const next = await chunks.next();
      if (next.done) return abandon();
      held = Buffer.concat([held, next.value]);
      if (headLength === undefined && held.length >= 4) {
        headLength = held.readUInt32BE(0);
        if (headLength > MAX_ANSWER_HEAD_BYTES) return abandon();
      }
    }
    const head = decodeAnswerHead(held.subarray(4, 4 + headLength));
    const first = held.subarray(4 + headLength);
    async function* body(): AsyncIterable<Uint8Array> {
      if (first.length > 0) yield first;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    }
    return { ...head, body: body() };
  }
}
