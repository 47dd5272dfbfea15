/**
 * What an error answer leaves in the log, once for every edge (the HTTP handler's middleware and
 * the proxy route's): an unknown error as "internal error" with its name and a redacted message
 * (details a secret could hide in stay out of the answer), a known 5xx as "request failed" with
 * its code and reason (the operator's to fix: the message names key ids and wrapping keys, never
 * a secret). A 4xx is the caller's and logs nothing here.
 */
import { logger } from '../observability/logger.js';
import { redact } from '../shared/redact.js';
import type { errorAnswer } from './errors.js';

/** Logs `answer` (errorAnswer(error)) as its kind asks. */
export function logErrorAnswer(error: unknown, answer: ReturnType<typeof errorAnswer>): void {
  if (!answer.known) {
    const e = error as Error | undefined;
    logger.error('internal error', { errorName: e?.name ?? 'unknown', errorMessage: redact(e?.message ?? '') });
  } else if (answer.status >= 500) {
    logger.error('request failed', { error: answer.body.error, reason: answer.body.message });
  }
}
