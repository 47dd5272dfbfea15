/**
 * Kept answers' references (AnswerStore): a digest of the pool and the idempotency id and a
 * random suffix, in lower-case hex only, so a reference read back from the table can name a file
 * or an object and never a path of its own choosing. A request draws its reference when it begins
 * (ProxyRequestRecord.answerRef), before any answer: the record names where its answer will be,
 * and two answers kept for one request (a takeover) never overwrite each other.
 */
import { randomBytes } from 'node:crypto';
import { idempotencyId } from './idempotency.js';

const REF = /^[0-9a-f]{32}-[0-9a-f]{16}$/;

/** A new reference for an answer of `id` in `pool`. */
export function answerRef(pool: string, id: string): string {
  const digest = idempotencyId(pool, id).slice(0, 32);
  return `${digest}-${randomBytes(8).toString('hex')}`;
}

/** Whether `ref` is one answerRef made (anything else names no answer). */
export function isAnswerRef(ref: string): boolean {
  return REF.test(ref);
}
