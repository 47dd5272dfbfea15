/**
 * Loopback host names as a WHATWG URL gives them (lower case; `127.1` already expanded to
 * 127.0.0.1): localhost, 127.0.0.0/8 and [::1]. Plain http, unsigned requests and the local
 * server's Host check are allowed only for these.
 */

/** The alternatives, unanchored, for patterns that add to them (a port, a case-insensitive Host header). */
export const LOOPBACK_HOSTNAME_SOURCE = String.raw`localhost|127(?:\.\d{1,3}){3}|\[::1\]`;

const LOOPBACK_HOSTNAME = new RegExp(`^(?:${LOOPBACK_HOSTNAME_SOURCE})$`);

/** True for a loopback host name (URL.hostname form). */
export function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK_HOSTNAME.test(hostname);
}
