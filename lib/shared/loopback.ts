/**
 * Loopback host names as a WHATWG URL gives them (lower case; `127.1` already expanded to
 * 127.0.0.1): localhost, 127.0.0.0/8 and [::1]. Plain http, unsigned requests and the local
 * servers' Host check are allowed only for these.
 */

/** The alternatives, unanchored, for patterns that add to them (a port, a case-insensitive Host header). */
export const LOOPBACK_HOSTNAME_SOURCE = String.raw`localhost|127(?:\.\d{1,3}){3}|\[::1\]`;

const LOOPBACK_HOSTNAME = new RegExp(`^(?:${LOOPBACK_HOSTNAME_SOURCE})$`);

/** True for a loopback host name (URL.hostname form). */
export function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK_HOSTNAME.test(hostname);
}

/** A Host header that names this machine: a loopback name, any case, with or without a port. */
const LOOPBACK_HOST = new RegExp(`^(?:${LOOPBACK_HOSTNAME_SOURCE})(:\\d{1,5})?$`, 'i');

/** Sec-Fetch-Site values a browser sends for a server's own pages or a URL the user typed. */
const OWN_FETCH_SITES = new Set(['same-origin', 'none']);

/** The headers the rule reads, as Node gives them (lower-case names). */
export interface RequestOrigin {
  host?: string | undefined;
  origin?: string | undefined;
  'sec-fetch-site'?: string | undefined;
}

/**
 * Why a request to a server that listens on loopback only (the local API, the console) comes
 * from somewhere it must not, if it does; one rule for both servers:
 *  - `host`: the Host is not a loopback name, so the page that sent it reached this machine
 *    under its own name (DNS rebinding: a name resolved to 127.0.0.1);
 *  - `origin`: an Origin other than the server's own (`http://` and the Host it was addressed
 *    to; `null` included), or a Sec-Fetch-Site other than same-origin or none (cross-site, or
 *    same-site: a page on another port of this machine), is a page of another origin. Browsers
 *    send Sec-Fetch-Site with every request and Origin with every POST; curl and the clients
 *    send neither, and are served.
 */
export function foreignRequest(headers: RequestOrigin): 'host' | 'origin' | undefined {
  const host = headers.host ?? '';
  if (!LOOPBACK_HOST.test(host)) return 'host';
  const { origin } = headers;
  const site = headers['sec-fetch-site'];
  if (
    (origin !== undefined && origin.toLowerCase() !== `http://${host.toLowerCase()}`) ||
    (site !== undefined && !OWN_FETCH_SITES.has(site.toLowerCase()))
  ) {
    return 'origin';
  }
  return undefined;
}
