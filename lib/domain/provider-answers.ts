/**
 * Proxy mode's one outcome table (issue 21): what a provider's answer to a proxied call means
 * for the key that made it, the use it took, and whether another key may be tried. The proxy
 * use case, the settling of a taken use (lib/use-cases/leasing.ts) and the docs all read it
 * from here; nothing else restates it.
 *
 * | provider answer                                   | outcome              | use       | failover |
 * | ------------------------------------------------- | -------------------- | --------- | -------- |
 * | 2xx                                               | success              | counted   | —        |
 * | 401 in the documented error shape                 | invalid_key          | given back| yes      |
 * | 402 in the documented error shape                 | out_of_credits       | given back| yes      |
 * | 429 in the documented error shape                 | rate_limited         | given back| yes      |
 * | 401/402/403/429 not in the documented shape       | provider_unavailable | given back| yes      |
 * | 403 in the documented shape (moderation)          | failure              | given back| no       |
 * | any other 4xx (400, 404, 413, 415, 422, ...)      | failure              | given back| no       |
 * | 5xx                                               | failure              | given back| yes      |
 * | no connection before the request went out         | failure              | given back| yes      |
 * | timeout or reset after the request went out       | unknown              | counted   | never    |
 * | anything else (1xx, 3xx: redirects are refused)   | provider_unavailable | given back| no       |
 *
 * "Documented" is Stability's error shape (lib/domain/stability-errors.ts isDocumentedError),
 * decided where the body is read: a firewall's or proxy's page says nothing about the key.
 */
import type { Outcome } from './types.js';

/**
 * What a proxied call came to: a lease outcome, or `provider_unavailable` (the provider could
 * not be asked: an answer not in its documented shape; the key is left as it is).
 */
export type ProxyOutcome = Outcome | 'provider_unavailable';

export interface AnswerVerdict {
  /** the outcome's name (the answer's `x-keypool-outcome`) */
  outcome: ProxyOutcome;
  /** the use taken for the call is given back */
  givesBack: boolean;
  /** another key may be tried (only before the first byte went back to the caller) */
  failover: boolean;
  /** rate_limited: the provider's Retry-After, when it sent one */
  retryAfterSeconds?: number;
}

/** A provider's answer as the table reads it, or a call that failed before one. */
export type ProviderAnswerFacts =
  | {
      status: number;
      /** the body is in the provider's documented error shape (read only where needsErrorBody) */
      documented: boolean;
      retryAfterSeconds?: number;
    }
  | { failed: { sent: boolean } };

/** Statuses whose meaning for the key depends on the body's shape. */
const SHAPE_DEPENDENT = new Set([401, 402, 403, 429]);
/** What a documented 401, 402 or 429 says about the key. */
const KEY_VERDICTS: Readonly<Record<number, Outcome>> = {
  401: 'invalid_key',
  402: 'out_of_credits',
  429: 'rate_limited',
};

const verdict = (outcome: ProxyOutcome, givesBack: boolean, failover: boolean): AnswerVerdict => ({
  outcome,
  givesBack,
  failover,
});

/** The one outcome table (issue 21; the table above). */
export function classifyProviderAnswer(answer: ProviderAnswerFacts): AnswerVerdict {
  // After the request went out the provider probably generated (and billed): the use stays
  // counted, and no other key is tried, so one request never bills twice.
  if ('failed' in answer) return answer.failed.sent ? verdict('unknown', false, false) : verdict('failure', true, true);
  const { status, documented } = answer;
  if (status >= 200 && status <= 299) return verdict('success', false, false);
  if (SHAPE_DEPENDENT.has(status) && !documented) return verdict('provider_unavailable', true, true);
  const keyVerdict = KEY_VERDICTS[status];
  if (keyVerdict === 'rate_limited' && answer.retryAfterSeconds !== undefined)
    return { ...verdict(keyVerdict, true, true), retryAfterSeconds: answer.retryAfterSeconds };
  if (keyVerdict) return verdict(keyVerdict, true, true);
  // The caller's own request (403 documented: moderation): another key would be refused too.
  if (status >= 400 && status <= 499) return verdict('failure', true, false);
  if (status >= 500 && status <= 599) return verdict('failure', true, true);
  // A redirect (refused, never followed) or a status no API answers: the provider was not
  // reached as documented; another key would meet the same answer.
  return verdict('provider_unavailable', true, false);
}

/** Which statuses need their body read (up to 64 KiB) to decide `documented`: 401, 402, 403, 429. */
export function needsErrorBody(status: number): boolean {
  return SHAPE_DEPENDENT.has(status);
}

/**
 * The outcome a settled use's lease slot records: a lease outcome; `provider_unavailable`
 * changes nothing about the key and is recorded as a `failure`.
 */
export function slotOutcome(outcome: ProxyOutcome): Outcome {
  return outcome === 'provider_unavailable' ? 'failure' : outcome;
}
