/**
 * The proxy's provider call (lib/adapters/provider-http.ts) against loopback servers: the key
 * only in the authorization header, no redirect followed, one timeout over headers and body,
 * and a failure that says whether the request went out.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeProviderHttp } from '../../lib/adapters/provider-http.js';
import { ProviderCallFailed, type ProviderRequest } from '../../lib/ports/proxy.js';

const KEY = 'sk-test-provider-http-0001';

type Handler = (request: IncomingMessage, response: ServerResponse, body: Buffer) => void;
let handler: Handler = (_request, response) => response.end();
let server: Server;
let base: string;
const provider = new NodeProviderHttp();

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handler(request, response, Buffer.concat(chunks)));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  provider.close();
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});
afterEach(() => {
  handler = (_request, response) => response.end();
});

const call = (over: Partial<ProviderRequest> = {}): ProviderRequest => ({
  method: 'POST',
  url: `${base}/v2beta/stable-image/generate/core?x=1`,
  headers: { 'content-type': 'text/plain', accept: 'image/*' },
  body: new TextEncoder().encode('hello'),
  apiKey: KEY,
  timeoutMs: 2_000,
  ...over,
});

async function drain(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function failure(promise: Promise<unknown>): Promise<ProviderCallFailed> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderCallFailed);
  return error as ProviderCallFailed;
}

describe('NodeProviderHttp', () => {
  it('sends the key only as a Bearer authorization, the body with its own length, and the path and query as given', async () => {
    // Prepare
    let seen: { url?: string; headers: IncomingMessage['headers']; body: string } | undefined;
    handler = (request, response, body) => {
      seen = { url: request.url, headers: request.headers, body: body.toString() };
      response.writeHead(200, { 'content-type': 'image/png', seed: '7' }).end('png');
    };
    // Act
    const answer = await provider.call(
      call({ headers: { 'content-type': 'text/plain', authorization: 'Bearer caller', 'content-length': '999' } }),
    );
    const body = await drain(answer.body);
    // Assess
    expect(answer.status).toBe(200);
    expect(answer.headers.seed).toBe('7');
    expect(body.toString()).toBe('png');
    expect(seen?.url).toBe('/v2beta/stable-image/generate/core?x=1');
    expect(seen?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(seen?.headers['content-length']).toBe('5');
    expect(seen?.body).toBe('hello');
    const elsewhere = JSON.stringify({ ...seen?.headers, authorization: undefined, url: seen?.url });
    expect(elsewhere).not.toContain(KEY);
  });

  it('hands a redirect back as the answer and never follows it', async () => {
    // Prepare
    let calls = 0;
    handler = (_request, response) => {
      calls++;
      response.writeHead(302, { location: `${base}/elsewhere` }).end();
    };
    // Act
    const answer = await provider.call(call());
    await drain(answer.body);
    // Assess
    expect(answer.status).toBe(302);
    expect(calls).toBe(1);
  });

  it('a refused connection failed before the request went out', async () => {
    // Prepare: a port nothing listens on
    const closed = createTcpServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', () => done()));
    const address = closed.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await new Promise((done) => closed.close(done));
    // Act
    const error = await failure(provider.call(call({ url: `http://127.0.0.1:${port}/v1/x` })));
    // Assess
    expect([error.sent, error.reason]).toEqual([false, 'connect']);
    expect(error.message).not.toContain(KEY);
  });

  it('a connection reset before the answer failed after the request went out', async () => {
    // Prepare
    handler = (request) => request.socket.destroy();
    // Act
    const error = await failure(provider.call(call()));
    // Assess
    expect([error.sent, error.reason]).toEqual([true, 'reset']);
  });

  it('no headers within the timeout: failed after the request went out, by timeout', async () => {
    // Prepare
    handler = () => undefined;
    // Act
    const error = await failure(provider.call(call({ timeoutMs: 150 })));
    // Assess
    expect([error.sent, error.reason]).toEqual([true, 'timeout']);
  });

  it('the timeout bounds the body too: a body still coming when it passes ends with a timeout', async () => {
    // Prepare
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'image/png' });
      response.write('part');
    };
    // Act
    const answer = await provider.call(call({ timeoutMs: 200 }));
    const error = await failure(drain(answer.body));
    // Assess
    expect(answer.status).toBe(200);
    expect([error.sent, error.reason]).toEqual([true, 'timeout']);
  });

  it('a body cut by a reset ends with a reset', async () => {
    // Prepare
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'image/png', 'content-length': '100' });
      response.write('part', () => setTimeout(() => response.socket?.destroy(), 20));
    };
    // Act
    const answer = await provider.call(call());
    const error = await failure(drain(answer.body));
    // Assess
    expect([error.sent, error.reason]).toEqual([true, 'reset']);
  });

  it('reads the body only as fast as it is taken, and abort() stops it', async () => {
    // Prepare: the server writes until the socket pushes back
    let blocked = false;
    let closed = false;
    handler = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (!response.destroyed) {
          if (!response.write(chunk)) {
            blocked = true;
            response.once('drain', pump);
            return;
          }
        }
      };
      response.on('close', () => (closed = true));
      pump();
    };
    // Act
    const answer = await provider.call(call());
    const reader = answer.body[Symbol.asyncIterator]();
    await reader.next();
    await new Promise((done) => setTimeout(done, 100));
    const blockedWhileUnread = blocked;
    answer.abort();
    await new Promise((done) => setTimeout(done, 100));
    // Assess
    expect(blockedWhileUnread).toBe(true);
    expect(closed).toBe(true);
  });

  it('reuses its connection for the next call (keep-alive)', async () => {
    // Prepare
    const ports: number[] = [];
    handler = (request, response) => {
      ports.push(request.socket.remotePort ?? 0);
      response.end('ok');
    };
    // Act
    for (let i = 0; i < 3; i++) await drain((await provider.call(call())).body);
    // Assess
    expect(new Set(ports).size).toBe(1);
  });
});
