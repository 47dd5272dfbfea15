/**
 * Last line of defence for logs and error messages: keypool never writes a secret on purpose;
 * this catches what a library might echo (a provider's error body, an SDK message, an event).
 * It masks
 *  - every secret this process has handled (remembered when a key is imported, migrated or
 *    read from the table), whatever its length or shape;
 *  - anything shaped like a provider key: `sk-` and 8 or more token characters;
 *  - any run of 32 or more token characters (other credentials, tokens) — except inside an
 *    AWS ARN, whose role paths run long and are what an audit line is for, and a run that is
 *    exactly a UUID (Lambda's and API Gateway's request ids) or an X-Ray trace id: public
 *    correlation ids, which a log line must carry whole to be joined to its invocation. A
 *    secret of that shape the process handled is still masked (by the first rule).
 */
/** A UUID, or an X-Ray trace id (`1-<8 hex>-<24 hex>`), standing alone (not part of a longer token). */
const CORRELATION_ID =
  '(?<![\\w\\-+/=])((?:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})|(?:1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}))(?![\\w\\-+/=])';
const SECRET_LIKE = new RegExp(
  `(arn:aws[a-z-]*:[^\\s"',]*)|${CORRELATION_ID}|sk-[A-Za-z0-9_-]{8,}|[A-Za-z0-9_\\-+/=]{32,}`,
  'g',
);
/** Secrets remembered at most: the most recent ones (a warm Lambda handles a few thousand keys). */
const KNOWN_SECRETS_MAX = 20_000;
/** Secrets are found by their first characters (API keys are 8 or more): one map lookup per position. */
const PREFIX = 8;

/** Insertion order, for forgetting the oldest. */
const known = new Set<string>();
const byPrefix = new Map<string, Set<string>>();

/** Remembers a secret this process holds, so redact() masks it wherever it shows up. */
export function rememberSecret(secret: string): void {
  if (secret.length < PREFIX || known.has(secret)) return;
  known.add(secret);
  const prefix = secret.slice(0, PREFIX);
  let bucket = byPrefix.get(prefix);
  if (!bucket) byPrefix.set(prefix, (bucket = new Set()));
  bucket.add(secret);
  if (known.size > KNOWN_SECRETS_MAX) {
    const oldest = known.values().next().value;
    if (oldest !== undefined) {
      known.delete(oldest);
      byPrefix.get(oldest.slice(0, PREFIX))?.delete(oldest);
    }
  }
}

const mask = (secret: string): string => `${secret.slice(0, 3)}...[redacted]`;

/** Masks every remembered secret in the text: linear in its length, whatever the number remembered. */
function maskKnown(text: string): string {
  if (known.size === 0 || text.length < PREFIX) return text;
  let out = '';
  let copied = 0;
  for (let at = 0; at + PREFIX <= text.length;) {
    let found: string | undefined;
    for (const secret of byPrefix.get(text.slice(at, at + PREFIX)) ?? []) {
      if ((found === undefined || secret.length > found.length) && text.startsWith(secret, at)) found = secret;
    }
    if (found === undefined) {
      at++;
      continue;
    }
    out += text.slice(copied, at) + mask(found);
    at += found.length;
    copied = at;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** The text with every remembered secret and every secret-shaped run masked. */
export function redact(text: string): string {
  return maskKnown(text).replace(SECRET_LIKE, (match: string, arn: string | undefined, id: string | undefined) =>
    arn === undefined && id === undefined ? mask(match) : match,
  );
}

/** The shortest start of a key maskSecretPrefix masks: `sk-` and 9 characters of the secret (shorter is shared by many keys). */
const SECRET_PREFIX_MIN = 12;

/**
 * The text with every run that starts like `secret` (its first `min` characters or more, up to
 * all of it) masked: what a provider's error body may echo of the key it was sent (a 401's
 * "Incorrect API key provided: sk-abc..."), before it goes to a caller.
 */
export function maskSecretPrefix(text: string, secret: string, min = SECRET_PREFIX_MIN): string {
  if (secret.length < min) return text;
  const start = secret.slice(0, min);
  let out = '';
  let copied = 0;
  for (let at = text.indexOf(start); at >= 0; at = text.indexOf(start, copied)) {
    let end = at + min;
    while (end < text.length && end - at < secret.length && text[end] === secret[end - at]) end++;
    out += text.slice(copied, at) + mask(text.slice(at, end));
    copied = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
