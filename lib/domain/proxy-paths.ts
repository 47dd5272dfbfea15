/**
 * Which provider paths proxy mode may reach (issue 21): for Stability, paths under `v1/`,
 * `v2beta/` and `v2alpha/`, except the account and balance endpoints (`v1/user/...`). A path is
 * read once, segment by segment, as the caller sent it (percent-encoded): a segment that does not
 * decode, that decodes to a separator, a dot segment, a `%` (encoded twice) or anything outside
 * the letters, digits and `-._~` provider paths are made of is refused, so no encoding trick can
 * reach a path the rule refuses or climb out of the allowed prefixes.
 */
import type { Provider } from './types.js';

/** The first segment of every path a Stability pool may reach. */
const STABILITY_PREFIXES = new Set(['v1', 'v2beta', 'v2alpha']);

/** What one decoded segment of a provider path may hold. */
const SEGMENT = /^[A-Za-z0-9._~-]{1,200}$/;

/** The longest provider path proxy mode forwards. */
export const MAX_PROVIDER_PATH = 1024;

/**
 * The path to call at the provider (canonical: decoded, nothing left to decode), or undefined
 * when the pool's provider may not be reached there. A pool whose provider is `none` has no path.
 */
export function providerPath(provider: Provider, rawPath: string): string | undefined {
  if (provider !== 'stability' || rawPath.length > MAX_PROVIDER_PATH) return undefined;
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') return undefined;
    segments.push(segment);
  }
  const [prefix, second] = segments;
  if (prefix === undefined || second === undefined || !STABILITY_PREFIXES.has(prefix)) return undefined;
  // The account and balance endpoints: what a key holds is the operator's to read (maintenance), not a caller's.
  if (prefix === 'v1' && second.toLowerCase() === 'user') return undefined;
  return segments.join('/');
}

/**
 * The poll of an async job's result, and its id: Stability's `v2beta/results/{id}`, and the
 * per-endpoint result paths its async endpoints documented before it (and still answer), such as
 * `v2beta/image-to-video/result/{id}` or `v2beta/stable-image/upscale/creative/result/{id}`. A
 * job is started by one account's key and polled only with it, so each of these must be known
 * as a poll: taken for a generation it would take a use with any key of the pool.
 */
const RESULT_PATH = /^(?:v2beta\/results|v2(?:alpha|beta)\/(?:[a-z0-9-]+\/){1,4}result)\/([A-Za-z0-9_-]{1,128})$/;

/** The job id a canonical provider path polls, or undefined when it is not a result poll. */
export function polledJobId(path: string): string | undefined {
  return RESULT_PATH.exec(path)?.[1];
}

/**
 * The job id an async endpoint's answer carries (Stability: a 2xx JSON object with a string
 * `id`), or undefined. Read from an answer's first bytes only (the caller's answer waits for it).
 */
export function startedJobId(status: number, contentType: string | undefined, text: string): string | undefined {
  if (status < 200 || status > 299 || !/^application\/json\b/i.test(contentType ?? '')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const id = typeof parsed === 'object' && parsed !== null ? (parsed as { id?: unknown }).id : undefined;
  return typeof id === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(id) ? id : undefined;
}
