/**
 * The headers proxy mode lets through, exactly as issue 21 lists them: to the provider only
 * what describes the body and Stability's client headers (the adapter adds the key's
 * authorization itself); back to the caller only what describes the answer, and keypool's own
 * three. Everything else (the caller's authorization, cookies, `x-amz-*`, host, forwarding
 * headers; the provider's cookies and its own routing headers) stays where it came from.
 */

/** The caller's headers the provider gets. */
export const FORWARDED_REQUEST_HEADERS = [
  'content-type',
  'content-length',
  'accept',
  'stability-client-id',
  'stability-client-user-id',
  'stability-client-version',
] as const;

/** The provider's headers the caller gets. */
export const RETURNED_HEADERS = [
  'content-type',
  'content-length',
  'finish-reason',
  'seed',
  'x-request-id',
  'retry-after',
] as const;

/** keypool's own answer headers: which key served, after how many keys tried, with which outcome. */
export const KEYPOOL_HEADERS = {
  keyId: 'x-keypool-key-id',
  attempts: 'x-keypool-attempts',
  outcome: 'x-keypool-outcome',
} as const;

function pick(headers: Readonly<Record<string, string>>, names: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (value !== undefined) picked[name] = value;
  }
  return picked;
}

/**
 * What an HTTP field value may hold (RFC 9110 field-value: visible ASCII, space, tab, and
 * obs-text as Latin-1): the characters node:http sends, and refuses to send any other with.
 */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The first forwarded header (lower-case name) whose value no HTTP request can carry, or
 * undefined. An edge that hands header values over as text (API Gateway) may pass characters
 * past Latin-1; such a request is the caller's to fix, refused before any use is taken.
 */
export function unsendableHeader(headers: Readonly<Record<string, string>>): string | undefined {
  return FORWARDED_REQUEST_HEADERS.find((name) => {
    const value = headers[name];
    return value !== undefined && !FIELD_VALUE.test(value);
  });
}

/** The caller's headers (lower-case names) the provider may see. */
export function forwardedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return pick(headers, FORWARDED_REQUEST_HEADERS);
}

/** The provider's headers (lower-case names) the caller may see. */
export function returnedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return pick(headers, RETURNED_HEADERS);
}

/** keypool's own headers on a proxied answer. */
export function keypoolHeaders(keyId: string, attempts: number, outcome: string): Record<string, string> {
  return {
    [KEYPOOL_HEADERS.keyId]: keyId,
    [KEYPOOL_HEADERS.attempts]: String(attempts),
    [KEYPOOL_HEADERS.outcome]: outcome,
  };
}

/** The longest wait a provider's Retry-After is read as (a day): a wilder value is clamped. */
const MAX_RETRY_AFTER_SECONDS = 86_400;

/**
 * A Retry-After header in seconds (delta-seconds, or an HTTP date from `nowMs`), or undefined
 * when absent or unreadable.
 */
export function retryAfterSeconds(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d{1,10}$/.test(trimmed)) return Math.min(Number(trimmed), MAX_RETRY_AFTER_SECONDS);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, Math.ceil((at - nowMs) / 1000)), MAX_RETRY_AFTER_SECONDS);
}
