/**
 * STABILITY_API_BASE_URL decides where maintenance sends every key: only https to an allowed
 * host, or a loopback address, passes. Checked through readMaintenanceConfig, the one reader.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, readMaintenanceConfig } from '../../lib/config.js';

function baseUrl(url: string, hosts?: string): string {
  return readMaintenanceConfig({
    STABILITY_API_BASE_URL: url,
    ...(hosts === undefined ? {} : { KEYPOOL_PROVIDER_HOSTS: hosts }),
  }).providerBaseUrl;
}

function refusal(url: string, hosts?: string): string {
  try {
    baseUrl(url, hosts);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(url)} to be refused`);
}

describe('provider base URL: accepted', () => {
  it.each([
    ['the default host', 'https://api.stability.ai', 'https://api.stability.ai'],
    ['a trailing slash', 'https://api.stability.ai/', 'https://api.stability.ai'],
    ['upper case (hosts are case-insensitive)', 'HTTPS://API.Stability.AI/', 'https://api.stability.ai'],
    ['an explicit port', 'https://api.stability.ai:8443', 'https://api.stability.ai:8443'],
    ['http to 127.0.0.1', 'http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http to elsewhere in 127.0.0.0/8', 'http://127.5.6.7:9', 'http://127.5.6.7:9'],
    ['http to localhost', 'http://localhost:3000/', 'http://localhost:3000'],
    ['http to [::1]', 'http://[::1]:9000', 'http://[::1]:9000'],
    ['https to loopback', 'https://localhost:8443', 'https://localhost:8443'],
    [
      'a path prefix (a proxy mounting the API)',
      'https://api.stability.ai/proxy/stability/',
      'https://api.stability.ai/proxy/stability',
    ],
  ])('%s: %s', (_why, url, expected) => {
    // Act
    const base = baseUrl(url);
    // Assess
    expect(base).toBe(expected);
  });

  it('accepts a host the operator lists in KEYPOOL_PROVIDER_HOSTS, and only that one', () => {
    // Act
    const listed = baseUrl('https://stability-proxy.corp.example/v', ' stability-proxy.corp.example , other.example ,');
    const unlisted = refusal('https://evil.example', 'stability-proxy.corp.example');
    // Assess
    expect(listed).toBe('https://stability-proxy.corp.example/v');
    expect(unlisted).toBe(
      'STABILITY_API_BASE_URL host evil.example is not allowed (allowed: api.stability.ai, stability-proxy.corp.example); list it in KEYPOOL_PROVIDER_HOSTS if it may see every key',
    );
  });
});

describe('provider base URL: refused, with one line naming the problem', () => {
  it.each([
    [
      'user info naming the allowed host (the host is evil.example)',
      'https://api.stability.ai@evil.example',
      /must not hold a user name or password/,
    ],
    ['a user and password', 'https://user:hunter2@api.stability.ai', /must not hold a user name or password/],
    ['an empty user info', 'https://@api.stability.ai', /must not hold a user name or password/],
    ['an empty fragment', 'https://evil.example/#', /must not have a query or fragment/],
    [
      'a fragment hiding the allowed host',
      'https://evil.example/#api.stability.ai',
      /must not have a query or fragment/,
    ],
    ['an empty query', 'https://api.stability.ai/?', /must not have a query or fragment/],
    ['a query', 'https://api.stability.ai/?next=https://evil.example', /must not have a query or fragment/],
    [
      'plain http off loopback',
      'http://api.stability.ai',
      /must use https for api\.stability\.ai \(plain http only to a loopback address\)/,
    ],
    ['a host not allowed', 'https://evil.example', /host evil\.example is not allowed/],
    [
      'a look-alike of the allowed host',
      'https://api.stability.ai.evil.example',
      /host api\.stability\.ai\.evil\.example is not allowed/,
    ],
    ['a loopback look-alike', 'http://127.0.0.1.evil.example', /must use https for 127\.0\.0\.1\.evil\.example/],
    ['an IPv4-mapped IPv6 address', 'http://[::ffff:127.0.0.1]', /must use https/],
    ['another scheme', 'ftp://api.stability.ai', /must be https \(or http to a loopback address\), got ftp:/],
    ['a file URL', 'file:///etc/passwd', /must be https .*got file:/],
    [
      'no scheme',
      'api.stability.ai',
      /must be an absolute URL like https:\/\/api\.stability\.ai, got "api\.stability\.ai"/,
    ],
    ['a space', 'https://api.stability.ai /', /has a space, control or non-ASCII character/],
    [
      'a newline the parser would drop',
      'https://api.stability.ai\n.evil.example',
      /has a space, control or non-ASCII character/,
    ],
    ['a percent-escaped path', 'https://api.stability.ai/a%2fb', /path must be plain segments/],
    ['a dot-segment path', 'https://api.stability.ai/.hidden', /path must be plain segments/],
  ])('%s: %j', (_why, url, expected) => {
    // Act
    const message = refusal(url);
    // Assess
    expect(message).toMatch(expected);
    expect(message).toMatch(/^STABILITY_API_BASE_URL /);
    expect(message).not.toContain('\n');
    expect(message).not.toContain('hunter2');
  });

  it('refuses a KEYPOOL_PROVIDER_HOSTS entry that is not a bare host name', () => {
    for (const entry of ['https://proxy.example', 'proxy.example:8443', '*.example', 'proxy.example/v1']) {
      // Act
      const message = refusal('https://api.stability.ai', entry);
      // Assess
      expect(message, entry).toMatch(/^KEYPOOL_PROVIDER_HOSTS lists ".*", which is not a bare host name/);
    }
  });
});
