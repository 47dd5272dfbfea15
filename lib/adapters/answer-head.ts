/**
 * A kept answer's head, as both answer stores write it: the status and headers as UTF-8 JSON
 * (headers may hold what S3 metadata cannot spell), bounded. Each store frames it its own way
 * (the file store seals it as frame 0, the S3 store writes its length before it); the bytes
 * inside the frame are these, so an answer kept by either reads back the same.
 */
import type { KeptAnswer } from '../ports/proxy.js';

/** What a kept answer's head holds. */
export type AnswerHead = Pick<KeptAnswer, 'status' | 'headers'>;

/** The head's bound: status and a handful of headers. */
export const MAX_ANSWER_HEAD_BYTES = 64 * 1024;

/** The head's bytes; a RangeError when they are over MAX_ANSWER_HEAD_BYTES (the answer is not kept). */
export function encodeAnswerHead(answer: AnswerHead): Buffer {
  const head = Buffer.from(JSON.stringify({ status: answer.status, headers: answer.headers }), 'utf8');
  if (head.length > MAX_ANSWER_HEAD_BYTES) throw new RangeError('the answer’s headers are too large to keep');
  return head;
}

/** The status and headers of a head's bytes, as encodeAnswerHead wrote them. */
export function decodeAnswerHead(bytes: Buffer): AnswerHead {
  const head = JSON.parse(bytes.toString('utf8')) as AnswerHead;
  return { status: head.status, headers: head.headers };
}
