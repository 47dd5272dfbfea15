/**
 * pool.proxy(path, init): the request keypool's proxy mode gets (its URL, method, body, headers,
 * Idempotency-Key and a SigV4 signature for the proxy's own service, over the exact bytes sent),
 * and the answer the caller gets (a standard Response that streams, keypool's own refusals
 * thrown). Recording servers on loopback stand in for the API and for the proxy's endpoint.
 */
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AccessDenied, Keypool, KeypoolApiError, KeypoolUnavailable, NoUsableKey } from '../src/index.js';
import { regionFor, serviceFor } from '../src/transport.js';
import { type Recorder, startRecorder } from './support/recorder.js';
import { checkSignature } from './support/sigv4.js';

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const IMAGE = { status: 200, headers: { 'content-type': 'image/png' }, chunks: [{ text: 'png bytes' }] };

let api: Recorder;
let proxy: Recorder;
beforeAll(async () => {
  api = await startRecorder({ status: 500, body: { message: 'the API was called' } });
  proxy = await startRecorder(IMAGE);
});
afterAll(async () => {
  await api.close();
  await proxy.close();
});
beforeEach(() => {
  for (const server of [api, proxy]) {
    server.seen.length = 0;
    server.replies.length = 0;
  }
});

const client = (): Keypool =>
  new Keypool({ url: api.url, proxyUrl: proxy.url, proxyService: 'lambda', region: 'eu-west-1', credentials });

describe('pool.proxy: the request', () => {
  it("POSTs the multipart body fetch encodes to proxyUrl's /pools/{pool}/proxy/{path}, with an Idempotency-Key, signed for the proxy's service over the bytes sent", async () => {
    // Prepare
    const form = new FormData();
    form.append('prompt', 'a lighthouse at dusk');
    form.append('output_format', 'png');
    // Act
    const response = await client()
      .pool('images')
      .proxy('/v2beta/stable-image/generate/core', { body: form, headers: { accept: 'image/*' } });
    // Assess
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('png bytes');
    expect(api.seen).toEqual([]);
    const request = proxy.seen[0];
    if (!request) throw new Error('nothing arrived');
    expect([request.method, request.path]).toEqual(['POST', '/pools/images/proxy/v2beta/stable-image/generate/core']);
    expect(request.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(request.body.toString()).toContain('name="prompt"\r\n\r\na lighthouse at dusk\r\n');
    expect(request.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(request.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(request.body).digest('hex'));
    const check = checkSignature(request, credentials.secretAccessKey);
    expect(check).toMatchObject({ accessKeyId: 'AKIDEXAMPLE', region: 'eu-west-1', service: 'lambda' });
    expect(check.signedHeaders).toEqual(expect.arrayContaining(['content-type', 'idempotency-key', 'accept', 'host']));
    expect(check.signature).toBe(check.expected);
  });

  it("a GET with a query and the caller's Idempotency-Key: the query is encoded as signed (a space is %20) and in the signature", async () => {
    // Act
    await client().pool('images').proxy('v1/engines/list?limit=5&name=a b', { method: 'GET', idempotencyKey: 'job-7' });
    // Assess
    const request = proxy.seen[0];
    if (!request) throw new Error('nothing arrived');
    expect([request.method, request.path, request.body.length]).toEqual([
      'GET',
      '/pools/images/proxy/v1/engines/list?limit=5&name=a%20b',
      0,
    ]);
    expect(request.headers['idempotency-key']).toBe('job-7');
    const check = checkSignature(request, credentials.secretAccessKey);
    expect(check.signature).toBe(check.expected);
  });

  it('without proxyUrl the proxy is at the API URL, signed for execute-api', async () => {
    // Prepare
    api.replies.push({ status: 200, body: 'ok' });
    // Act
    await new Keypool({ url: api.url, region: 'eu-west-1', credentials }).pool('p').proxy('v1/user/balance');
    // Assess
    expect(api.seen.map((r) => r.path)).toEqual(['/pools/p/proxy/v1/user/balance']);
    expect(checkSignature(api.seen[0] ?? ({} as never), credentials.secretAccessKey).service).toBe('execute-api');
  });

  it('a function URL signs for lambda in its own region; any other URL for execute-api', () => {
    // Act / Assess
    const functionUrl = new URL('https://abcdefghij.lambda-url.eu-central-1.on.aws/');
    expect([serviceFor(functionUrl), regionFor(functionUrl, undefined)]).toEqual(['lambda', 'eu-central-1']);
    expect(serviceFor(new URL('https://abc123.execute-api.eu-west-1.amazonaws.com'))).toBe('execute-api');
  });

  it('a proxied call is never sent twice: an answer lost on the way is KeypoolUnavailable after one request', async () => {
    // Prepare
    proxy.replies.push({ status: 200, drop: true });
    // Act
    const error = await client()
      .pool('images')
      .proxy('v2beta/stable-image/generate/core', { body: 'x' })
      .catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(KeypoolUnavailable);
    expect(proxy.seen).toHaveLength(1);
  });
});

describe('pool.proxy: how long it waits', () => {
  it("waits by default as long as keypool may take to answer: the pool's default proxyTimeoutSeconds (120 s) and its 30 s margin", async () => {
    // Prepare: every timer the call sets, with its delay
    const timers = vi.spyOn(globalThis, 'setTimeout');
    try {
      // Act
      const answer = await client().pool('images').proxy('v2beta/stable-image/generate/core', { body: 'x' });
      await answer.arrayBuffer();
      // Assess: the call's own bound is 150 s, and a caller's timeoutMs replaces it
      expect(timers.mock.calls.map(([, ms]) => ms)).toContain(150_000);
      timers.mockClear();
      await (await client().pool('images').proxy('v2beta/x', { body: 'x', timeoutMs: 700_000 })).arrayBuffer();
      expect(timers.mock.calls.map(([, ms]) => ms)).toContain(700_000);
    } finally {
      timers.mockRestore();
    }
  });
});

describe('pool.proxy: the answer', () => {
  it('resolves as soon as the answer starts: its first bytes are readable before the rest is sent', async () => {
    // Prepare
    let sendRest = (): void => undefined;
    const rest = new Promise<void>((open) => (sendRest = open));
    proxy.replies.push({
      status: 200,
      headers: { 'content-type': 'text/plain' },
      chunks: [{ text: 'first;' }, { text: 'rest', after: rest }],
    });
    const stalled = new Promise<never>((_, fail) =>
      setTimeout(() => fail(new Error('the answer was buffered')), 3_000),
    );
    // Act
    const response = await Promise.race([client().pool('images').proxy('v1/stream', { body: 'x' }), stalled]);
    const reader = response.body?.getReader() as ReadableStreamDefaultReader<Uint8Array> | undefined;
    const first = await Promise.race([reader?.read(), stalled]);
    sendRest();
    let text = new TextDecoder().decode(first?.value);
    for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader?.read())
      text += new TextDecoder().decode(chunk.value);
    // Assess
    expect(new TextDecoder().decode(first?.value)).toBe('first;');
    expect(text).toBe('first;rest');
  });

  it("keypool's own refusal is thrown as its class; the provider's refusal is the Response, as the provider sent it", async () => {
    // Prepare
    proxy.replies.push(
      {
        status: 409,
        headers: { 'retry-after': '5' },
        body: { error: 'no_usable_key', message: 'dry', retryAfterSeconds: 5 },
      },
      {
        status: 403,
        headers: { 'x-keypool-outcome': 'failure' },
        body: { id: 'x', name: 'content_moderation', errors: ['refused'] },
      },
    );
    const pool = client().pool('images');
    // Act
    const dry = await pool.proxy('v2beta/stable-image/generate/core', { body: 'x' }).catch((e: unknown) => e);
    const refused = await pool.proxy('v2beta/stable-image/generate/core', { body: 'x' });
    // Assess
    expect(dry).toBeInstanceOf(NoUsableKey);
    expect(dry).toMatchObject({ status: 409, retryAfterSeconds: 5, message: 'dry' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ id: 'x', name: 'content_moderation', errors: ['refused'] });
  });

  it("the gateway's own answer (IAM's 403, its throttling's 429, a failed function's 503) is thrown, never passed off as the provider's", async () => {
    // Prepare: API Gateway answers before keypool runs: a message only, none of keypool's headers
    proxy.replies.push(
      { status: 403, body: { message: 'Forbidden' } },
      { status: 429, body: { message: 'Too Many Requests' } },
      { status: 503, headers: { 'content-type': 'text/html' }, chunks: [{ text: '<html>Service Unavailable</html>' }] },
    );
    const pool = client().pool('images');
    // Act
    const answers = [];
    for (let call = 0; call < 3; call++)
      answers.push(await pool.proxy('v2beta/stable-image/generate/core', { body: 'x' }).catch((e: unknown) => e));
    // Assess
    expect(answers[0]).toBeInstanceOf(AccessDenied);
    expect(answers[0]).toMatchObject({ status: 403, message: 'Forbidden' });
    expect(answers[1]).toBeInstanceOf(KeypoolApiError);
    expect(answers[1]).toMatchObject({ status: 429, message: 'Too Many Requests' });
    expect(answers[2]).toBeInstanceOf(KeypoolApiError);
    expect(answers[2]).toMatchObject({ status: 503 });
    expect(proxy.seen).toHaveLength(3);
  });

  it('an answer whose headers do not come within timeoutMs is given up: KeypoolUnavailable, the cause a TimeoutError', async () => {
    // Prepare
    proxy.replies.push({ status: 200, chunks: [{ text: 'late', after: new Promise(() => undefined) }] });
    // Act
    const error = await client()
      .pool('images')
      .proxy('v1/slow', { body: 'x', timeoutMs: 200 })
      .catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(KeypoolUnavailable);
    expect(((error as Error).cause as Error).name).toBe('TimeoutError');
  });

  it("a caller's signal shared by many calls keeps no listener of a call whose answer was read, cancelled or refused", async () => {
    // Prepare: one application-wide shutdown signal, passed to every call
    const shutdown = new AbortController();
    const pool = client().pool('images');
    proxy.replies.push(
      { status: 200, headers: { 'content-type': 'text/plain' }, chunks: [{ text: 'unread' }] },
      { status: 409, body: { error: 'no_usable_key', message: 'dry' } },
    );
    // Act: one answer cancelled, one refusal, twelve answers read to their end
    await (await pool.proxy('v1/x', { body: 'x', signal: shutdown.signal })).body?.cancel();
    await pool.proxy('v1/x', { body: 'x', signal: shutdown.signal }).catch(() => undefined);
    for (let call = 0; call < 12; call++)
      expect(await (await pool.proxy('v1/x', { body: 'x', signal: shutdown.signal })).text()).toBe('png bytes');
    // Assess
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });

  it("the caller's abort after the headers stops the answer's body with the caller's reason", async () => {
    // Prepare
    proxy.replies.push({
      status: 200,
      headers: { 'content-type': 'text/plain' },
      chunks: [{ text: 'first;' }, { text: 'never', after: new Promise(() => undefined) }],
    });
    const controller = new AbortController();
    const reason = new Error('the user went away');
    const response = await client().pool('images').proxy('v1/stream', { body: 'x', signal: controller.signal });
    const reader = response.body?.getReader();
    await reader?.read();
    // Act
    controller.abort(reason);
    const error = await reader?.read().catch((e: unknown) => e);
    // Assess
    expect(error).toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it("the caller's abort is the caller's: its reason is what the call rejects with", async () => {
    // Prepare
    proxy.replies.push({ status: 200, chunks: [{ text: 'late', after: new Promise(() => undefined) }] });
    const controller = new AbortController();
    const reason = new Error('the user went away');
    setTimeout(() => controller.abort(reason), 100);
    // Act
    const error = await client()
      .pool('images')
      .proxy('v1/slow', { body: 'x', signal: controller.signal })
      .catch((e: unknown) => e);
    // Assess
    expect(error).toBe(reason);
  });
});
