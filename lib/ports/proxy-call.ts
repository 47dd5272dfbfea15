/**
 * What an edge (the local server's proxy route, the proxy Lambda) hands proxy mode's use case
 * (lib/use-cases/proxy.ts): one proxied request, read and checked at the edge, and the sink its
 * answer goes out through. Apart from ./proxy.ts, the ports the use case itself calls.
 */
import type { ResponseSink } from './proxy.js';

/** One proxied request, as the edge read it. */
export interface ProxyCall {
  pool: string;
  method: 'GET' | 'POST';
  /** the provider path as the caller sent it (percent-encoded, no leading slash): checked by the use case */
  path: string;
  /** the query string, without `?` (passed on as it is) */
  query: string;
  /** the caller's headers, lower case: the use case forwards only its list */
  headers: Record<string, string>;
  /** the whole body (buffered up to the edge's limit: a failover sends it again) */
  body?: Uint8Array;
  idempotencyKey?: string;
  /** who called: the IAM identity the edge authorized (undefined locally) */
  caller?: string;
  /**
   * the milliseconds the edge has left to answer (a Lambda's remaining time; undefined: no
   * bound, the local server): no failover starts a provider call that could outlive it
   */
  remainingMs?: () => number;
}

/** Serves one proxied request: the answer goes to `sink`; a refusal before any byte is thrown (a KeypoolError). */
export type ProxyHandle = (call: ProxyCall, sink: ResponseSink) => Promise<void>;
