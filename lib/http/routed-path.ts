/**
 * A check at the Lambda edges, before any route runs: the path a request was authorized on is
 * the path it was routed on. IAM authorizes the path as sent against client policies that end
 * in `*` (which spans slashes), so `/pools/a/proxy/../../b/proxy/...` matches pool a's policy;
 * were API Gateway to route it on the resolved path, it would act on pool b. Whatever API
 * Gateway does with such a path, a function refuses it when its event still shows it.
 */
import { notText } from './query-text.js';

/**
 * A `.` or `..` segment, its dots raw or percent-encoded (`%2e`, any case, mixed), between
 * separators or at either end; a backslash and an encoded slash or backslash count as
 * separators too, as some URL parsers read them so. A normal path never holds one.
 */
const DOT_SEGMENT = /(?:^|[/\\]|%2f|%5c)(?:\.|%2e){1,2}(?:$|[/\\]|%2f|%5c)/i;

/** Each segment after a `pools` segment (a stage or base path, which may itself be `pools`, may come before the route's). */
const POOL_SEGMENTS = /(?:^|\/)pools(?=\/([^/]*))/g;

function refuse(message: string): never {
  throw notText('path', message, message);
}

/** Whether `segment`, as sent or percent-decoded once, is `pool`. */
function names(segment: string, pool: string): boolean {
  if (segment === pool) return true;
  try {
    return decodeURIComponent(segment) === pool;
  } catch {
    return false;
  }
}

/**
 * Throws InvalidRequest (400, naming `path`) when any of `paths` (each field of the event that
 * carries the request's path; absent ones are skipped) holds a `.` or `..` segment, or names in
 * no `pools/<pool>` segment pair naming `pool`, the path parameter API Gateway matched.
 */
export function assertRoutedPath(paths: readonly (string | undefined)[], pool: string | undefined): void {
  for (const path of paths) {
    if (path === undefined) continue;
    if (DOT_SEGMENT.test(path)) refuse('a "." or ".." segment, raw or percent-encoded, is never routed');
    if (pool === undefined) continue;
    // Some `pools/<pool>` of the path must name the matched pool: a stage or base path named
    // `pools` before the route's own is no mismatch.
    const segments = [...path.matchAll(POOL_SEGMENTS)].map((match) => match[1] ?? '');
    if (segments.length > 0 && !segments.some((segment) => names(segment, pool))) {
      refuse('the pool in the path is not the pool the route matched');
    }
  }
}
