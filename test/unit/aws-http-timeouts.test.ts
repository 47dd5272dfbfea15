/**
 * AwsHttp's timeouts (lib/adapters/aws-http.ts): a call to a service that took the request and
 * never answers ends in a TimeoutError, which is tried again, rather than holding the function
 * until Lambda ends it.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { AwsHttp } from '../../lib/adapters/aws-http.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

it('ends a call whose answer never comes within the request timeout (60 s) as a TimeoutError', async () => {
  // Prepare: a service that reads the request and never answers.
  const arrived: IncomingMessage[] = [];
  const server = createServer((request) => arrived.push(request));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const aws = new AwsHttp({
    service: 'kms',
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
    maxAttempts: 1,
  });
  try {
    // Act
    const outcome = aws
      .exchange({
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        path: '/',
        body: Buffer.from('{}'),
      })
      .then(
        () => 'answered',
        (error: unknown) => (error as Error).name,
      );
    while (arrived.length === 0) await new Promise((resolve) => setImmediate(resolve));
    await vi.advanceTimersByTimeAsync(61_000);
    vi.useRealTimers();
    const settled = await Promise.race([
      outcome,
      new Promise((resolve) => setTimeout(() => resolve('pending'), 2_000)),
    ]);
    // Assess: NodeHttpHandler only logs a warning past requestTimeout unless throwOnRequestTimeout is set.
    expect(warn.mock.calls.flat().join(' ')).not.toContain('throwOnRequestTimeout');
    expect(settled).toBe('TimeoutError');
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
