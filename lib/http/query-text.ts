/**
 * A request's text that is not text: what an edge refuses, with one answer for every edge.
 * API Gateway hands a function the query decoded, so a query whose percent-escapes do not
 * decode to UTF-8 never reaches a route as the bytes that were sent; the local server reads
 * the query as sent and refuses such a one itself (400 invalid_request naming its place, as
 * the proxy Lambda's edge names a lone surrogate's), on every route, the proxy route's included.
 */
import { InvalidRequest } from '../domain/errors.js';
import { redact } from '../shared/redact.js';

/** The 400 for what an edge refuses at `where` (`query`, `query.<name>`, `path.pool`, `path`): `why`, and in short. */
export function notText(where: string, why: string, short: string): InvalidRequest {
  return new InvalidRequest(`invalid ${where}: ${why}`, [{ path: where, message: short }]);
}

/** A `%` not followed by two hex digits stands for itself (as WHATWG URL reads a query): only bytes are checked. */
const BARE_PERCENT = /%(?![0-9a-f]{2})/gi;

/**
 * `part` (a name or a value as sent) percent-decoded, `+` read as a space, as a form query is
 * read; undefined when its bytes are not UTF-8 (decodeURIComponent throws on those).
 */
function decoded(part: string): string | undefined {
  try {
    return decodeURIComponent(part.replaceAll('+', ' ').replace(BARE_PERCENT, '%25'));
  } catch {
    return undefined;
  }
}

const NOT_UTF8 = 'its percent-encoded bytes are not UTF-8 text';

/**
 * Throws InvalidRequest (400) for the first name or value of `rawQuery` (as sent, without `?`)
 * whose percent-escapes decode to bytes that are not UTF-8 (`%FF`, a lone surrogate's
 * `%ED%A0%80`): a name is named `query`, a value `query.<name>`. Returns otherwise; the
 * query itself is left as sent.
 */
export function assertQueryText(rawQuery: string): void {
  if (!rawQuery.includes('%')) return;
  for (const pair of rawQuery.split('&')) {
    const equals = pair.indexOf('=');
    const name = decoded(equals < 0 ? pair : pair.slice(0, equals));
    if (name === undefined) throw notText('query', NOT_UTF8, 'not UTF-8');
    if (equals >= 0 && decoded(pair.slice(equals + 1)) === undefined) {
      throw notText(`query.${redact(name.slice(0, 64))}`, NOT_UTF8, 'not UTF-8');
    }
  }
}
