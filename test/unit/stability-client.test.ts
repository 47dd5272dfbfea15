/**
 * The Stability balance client (lib/adapters/stability-client.ts): answers classified,
 * redirects refused, bodies capped and never passed on.
 */
import { describe, expect, it } from 'vitest';
import { StabilityClient } from '../../lib/adapters/stability-client.js';

describe('StabilityClient', () => {
  const secret = 'sk-test-0123456789abcdef0123456789abcdef';
  const answering =
    (status: number, body: string): typeof fetch =>
    () =>
      Promise.resolve(new Response(body, { status }));

  it('classifies 200/401/429/5xx and an unreadable body', async () => {
    const ask = (status: number, body: string) =>
      new StabilityClient({ baseUrl: 'http://x', fetch: answering(status, body) }).balance(secret);
    expect(await ask(200, '{"credits":12.5}')).toEqual({ kind: 'balance', credits: 12.5 });
    expect(await ask(401, '{"id":"x","name":"unauthorized","errors":["Incorrect API key provided"]}')).toEqual({
      kind: 'invalid_key',
    });
    expect(await ask(429, '{}')).toEqual({ kind: 'rate_limited' });
    expect(await ask(500, '{"name":"server_error","message":"x"}')).toEqual({
      kind: 'error',
      reason: 'provider answered 500 server_error',
    });
    expect(await ask(200, '{"balance":1}')).toEqual({ kind: 'error', reason: 'unreadable balance answer (200)' });
  });

  it('a 401/403 is the provider refusing the key only in its documented error shape; any other page is provider_unavailable', async () => {
    // Prepare
    const ask = (status: number, body: string, type = 'application/json') =>
      new StabilityClient({
        baseUrl: 'http://x',
        fetch: () => Promise.resolve(new Response(body, { status, headers: { 'content-type': type } })),
      }).balance(secret);
    // Act / Assess: v2beta (`errors`) and v1 (`message`) shapes, with a string `id` and `name`.
    expect(await ask(403, '{"id":"a1","name":"forbidden","errors":["This key may not be used"]}')).toEqual({
      kind: 'invalid_key',
    });
    expect(
      await ask(
        401,
        '{"id":"9160aa70222f4a369eb7475e2668362a","name":"unauthorized","message":"missing authorization header"}',
      ),
    ).toEqual({ kind: 'invalid_key' });
    for (const [status, body, type] of [
      [403, '<html><body>Access denied (WAF)</body></html>', 'text/html'],
      [403, 'Access denied (WAF)', 'text/plain'],
      [401, '{"message":"Unauthorized"}', 'application/json'],
      [403, '{"name":"forbidden"}', 'application/json'],
      [403, '{"name":"forbidden","errors":[42]}', 'application/json'],
      [401, '{"name":7,"message":"x"}', 'application/json'],
      // A gateway's own JSON: an authorization middleware's error (express-jwt's UnauthorizedError)
      // and a serialized JavaScript Error carry a name and a message, but no error id.
      [
        401,
        '{"name":"UnauthorizedError","message":"No authorization token was found","code":"credentials_required","status":401}',
        'application/json',
      ],
      [403, '{"name":"Error","message":"Forbidden"}', 'application/json'],
      [401, '{"name":"unauthorized","errors":["bad key"]}', 'application/json'],
      [401, '{"id":"","name":"unauthorized","message":"x"}', 'application/json'],
      [403, '{"id":7,"name":"forbidden","errors":["x"]}', 'application/json'],
      [401, '', 'application/json'],
    ] as const) {
      expect(await ask(status, body, type)).toEqual({
        kind: 'provider_unavailable',
        reason: `provider answered ${status} outside its documented error shape`,
      });
    }
  });

  it('refuses a redirect without following it, and asks fetch not to follow one', async () => {
    // Prepare
    const seen: RequestInit[] = [];
    const redirecting: typeof fetch = (_url, init) => {
      seen.push(init ?? {});
      return Promise.resolve(
        new Response(null, { status: 302, headers: { location: 'http://127.0.0.1:1/v1/user/balance' } }),
      );
    };
    const client = new StabilityClient({ baseUrl: 'http://x', fetch: redirecting });
    // Act
    const answer = await client.balance(secret);
    // Assess
    expect(answer).toEqual({ kind: 'error', reason: 'provider answered 302 (redirects are refused)' });
    expect(seen.map((init) => init.redirect)).toEqual(['manual']);
  });

  it('stops reading a huge body past the cap and answers an error instead of buffering it', async () => {
    // Prepare: a 200 of 32 MiB of blanks, streamed in 16 KiB chunks, with no declared length.
    const chunk = 16 * 1024;
    let sent = 0;
    const huge: typeof fetch = () =>
      Promise.resolve(
        new Response(
          new ReadableStream<Uint8Array>({
            async pull(controller) {
              await new Promise((next) => setImmediate(next));
              if (sent >= 32 * 1024 * 1024) return controller.close();
              sent += chunk;
              controller.enqueue(new Uint8Array(chunk).fill(0x20));
            },
          }),
          { status: 200 },
        ),
      );
    const client = new StabilityClient({ baseUrl: 'http://x', fetch: huge });
    // Act
    const answer = await client.balance(secret);
    // Assess
    expect(answer).toEqual({ kind: 'error', reason: 'provider answer too large (over 65536 bytes)' });
    expect(sent).toBeLessThan(256 * 1024);
  });

  it('refuses a body whose declared length is past the cap before reading it', async () => {
    // Prepare
    const declared: typeof fetch = () =>
      Promise.resolve(
        new Response('{"credits":99}', { status: 200, headers: { 'content-length': String(10 * 1024 * 1024) } }),
      );
    // Act
    const answer = await new StabilityClient({ baseUrl: 'http://x', fetch: declared }).balance(secret);
    // Assess
    expect(answer).toEqual({ kind: 'error', reason: 'provider answer too large (over 65536 bytes)' });
  });

  it('never passes a provider body on: a body quoting the key reaches neither the reason nor the warnings', async () => {
    // Prepare
    const warnings: unknown[] = [];
    const echo = JSON.stringify({ name: 'server_error', message: `key ${secret.slice(0, 14)} / ${secret} failed` });
    const client = new StabilityClient({
      baseUrl: 'http://x',
      fetch: answering(500, echo),
      warn: (m, a) => warnings.push(m, a),
    });
    // Act
    const answer = await client.balance(secret);
    // Assess
    const text = JSON.stringify([answer, warnings]);
    expect(warnings.length).toBeGreaterThan(0);
    expect(text).not.toContain(secret.slice(0, 14));
  });
});
