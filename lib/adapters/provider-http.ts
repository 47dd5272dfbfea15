/**
 * Proxy mode's provider call over node:http / node:https (ProviderHttp). The only place that
 * writes a leased key, and only into `authorization: Bearer <key>`: never into a URL, a log
 * line or an error. Redirects are never followed (a 3xx is the provider's answer, handed on as
 * it is); one timer bounds the whole call, headers and body together. A call that fails says
 * whether the request went out (ProviderCallFailed.sent): before the connection (and its TLS
 * handshake) was made nothing was generated; after it, the provider may have billed.
 */
import { Agent as HttpAgent, type ClientRequest, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { type ProviderAnswer, ProviderCallFailed, type ProviderHttp, type ProviderRequest } from '../ports/proxy.js';

/**
 * Idle keep-alive sockets are dropped after this long: under the 5 s most servers keep an idle
 * connection, so a request is rarely written to a socket the provider is closing (that race
 * would read as a reset after the request went out: an `unknown` outcome).
 */
export const IDLE_SOCKET_MS = 4_000;

/** Headers the caller may not set on a provider request: keypool writes them itself. */
const OWN_HEADERS = new Set(['authorization', 'content-length', 'transfer-encoding', 'host', 'connection']);

function lowerCaseHeaders(message: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Resolves once the request is on its way: the socket connected (TLS included), or a kept-alive one was handed over. */
function whenWritten(request: ClientRequest, tls: boolean, written: () => void): void {
  request.once('socket', (socket: Socket) => {
    if (!socket.connecting) return written();
    socket.once(tls ? 'secureConnect' : 'connect', written);
  });
}

export interface NodeProviderHttpOptions {
  /** most sockets per provider host (default: unbounded, as many as calls in flight) */
  maxSockets?: number;
}

/** ProviderHttp over node:http/https, with keep-alive agents shared by every call of the process. */
export class NodeProviderHttp implements ProviderHttp {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(options: NodeProviderHttpOptions = {}) {
    const agent = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const, ...options };
    this.http = new HttpAgent(agent);
    this.https = new HttpsAgent(agent);
  }

  call(call: ProviderRequest): Promise<ProviderAnswer> {
    const url = new URL(call.url);
    const tls = url.protocol === 'https:';
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(call.headers)) {
      if (!OWN_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
    }
    headers.authorization = `Bearer ${call.apiKey}`;
    if (call.body !== undefined) headers['content-length'] = String(call.body.byteLength);
    const send = tls ? httpsRequest : httpRequest;
    const request = send(url, { method: call.method, headers, agent: tls ? this.https : this.http });

    let sent = false;
    let timedOut = false;
    /** how the call ended early, once it did (the body's reader turns it into its error) */
    let failure: ProviderCallFailed | undefined;
    whenWritten(request, tls, () => (sent = true));
    const fail = (reason: ProviderCallFailed['reason']): ProviderCallFailed =>
      (failure ??= new ProviderCallFailed(sent, reason));
    const timer = setTimeout(() => {
      timedOut = true;
      request.destroy(fail('timeout'));
    }, call.timeoutMs);

    return new Promise<ProviderAnswer>((resolve, reject) => {
      request.on('error', () => {
        clearTimeout(timer);
        // Node's own error names the host and port: only our secret-free one leaves here.
        reject(failure ?? fail(sent ? 'reset' : 'connect'));
      });
      request.once('response', (response: IncomingMessage) => {
        let aborted = false;
        const body = async function* (): AsyncGenerator<Uint8Array> {
          try {
            // The stream is read as it is iterated: the provider is read no faster than the caller takes it.
            for await (const chunk of response as AsyncIterable<Buffer>) yield chunk;
            if (!response.complete && !aborted) throw fail(timedOut ? 'timeout' : 'reset');
          } catch (error) {
            if (aborted) return;
            throw error instanceof ProviderCallFailed ? error : fail(timedOut ? 'timeout' : 'reset');
          } finally {
            clearTimeout(timer);
          }
        };
        resolve({
          status: response.statusCode ?? 502,
          headers: lowerCaseHeaders(response),
          body: body(),
          abort: () => {
            aborted = true;
            clearTimeout(timer);
            request.destroy();
          },
        });
      });
      request.end(
        call.body === undefined ? undefined : Buffer.from(call.body.buffer, call.body.byteOffset, call.body.byteLength),
      );
    });
  }

  /** Closes the idle sockets (a test's or a process's end). */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
