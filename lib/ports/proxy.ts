/**
 * Proxy mode's ports: what the proxy use case (lib/use-cases/proxy.ts) needs besides the lease
 * path. The provider is reached through ProviderHttp (the only place that writes the leased key,
 * into an `authorization` header); a caller's answer goes out through a ResponseSink (the local
 * server's response, or Lambda's response stream); a proxied request under an Idempotency-Key is
 * recorded by ProxyIdempotency and its final 2xx answer kept, encrypted, by AnswerStore; an
 * async job's id is pinned to its key by JobPins.
 */

/** A request to the provider, with the caller's headers already filtered to the forwarded list. */
export interface ProviderRequest {
  method: 'GET' | 'POST';
  /** the provider's base URL joined with the path and the caller's query string */
  url: string;
  /** forwarded headers only (lower case); never `authorization` (ProviderHttp adds it) */
  headers: Record<string, string>;
  /** the whole request body (buffered up to the limit: a failover sends it again) */
  body?: Uint8Array;
  /** the leased key: written only into `authorization: Bearer <apiKey>` */
  apiKey: string;
  /** the provider call's bound (pool proxyTimeoutSeconds), headers and body together */
  timeoutMs: number;
}

/** The provider's answer as soon as its status line and headers arrived. */
export interface ProviderAnswer {
  status: number;
  /** the provider's headers, lower case */
  headers: Record<string, string>;
  /**
   * The body as it arrives. Ends with an error when the connection is reset or the timeout
   * passes mid-body (the request went out: the outcome is `unknown`).
   */
  body: AsyncIterable<Uint8Array>;
  /** stops reading (and closes the connection) */
  abort(): void;
}

/**
 * A provider call that failed before an answer. `sent: false` when the request never went out
 * (no connection, DNS, refused, TLS): nothing was generated, the use is given back and the next
 * key may be tried; `sent: true` when it went out and then timed out or was reset: the outcome
 * is `unknown`, the use stays counted, and no other key is tried.
 */
export class ProviderCallFailed extends Error {
  constructor(
    readonly sent: boolean,
    readonly reason: 'timeout' | 'reset' | 'connect',
  ) {
    super(`the provider call failed (${reason}${sent ? ', after the request went out' : ''})`);
    this.name = 'ProviderCallFailed';
  }
}

export interface ProviderHttp {
  /** Resolves once the status and headers arrive; rejects with ProviderCallFailed otherwise. Never follows a redirect. */
  call(request: ProviderRequest): Promise<ProviderAnswer>;
}

/**
 * Where an answer goes to the caller. Writes after the caller went away are dropped, not
 * errors: the use case goes on reading the provider's answer (its outcome is recorded, and
 * under an Idempotency-Key its body is kept for the replay).
 */
export interface ResponseSink {
  /** status and headers; once only, before the first write */
  start(status: number, headers: Record<string, string>): void;
  /** resolves when the chunk may be followed by the next (backpressure) or the caller is gone */
  write(chunk: Uint8Array): Promise<void>;
  end(): void;
  /** the answer could not be finished (the provider's body broke off): the caller sees a cut answer */
  fail(): void;
  /** true once the caller disconnected */
  readonly closed: boolean;
}

/** What is kept of a proxied request under an Idempotency-Key (never the key, never the body). */
export interface ProxyRequestRecord {
  /** idempotencyId(pool, idempotencyKey) */
  id: string;
  pool: string;
  /** a digest of method, path, query, forwarded headers and body: the same key with another request is refused */
  requestHash: string;
  /** callerDigest(caller): only that caller's retry is answered */
  callerDigest: string;
  /**
   * in_progress from its begin on: a request that kept its 2xx answer leaves its record so (the
   * answer at answerRef is its end); done: its request got a 2xx it could not keep, or its call went out and got no answer
   */
  state: 'in_progress' | 'done';
  /**
   * when an in-progress record may be taken over (the first request died): proxyTimeoutSeconds
   * and a margin past its begin, and past each failover to another key (renew)
   */
  leaseUntilMs: number;
  /**
   * where the request's 2xx answer is (or will be) kept (AnswerStore): drawn when it begins
   * (answerRef in lib/domain/answer-ref.ts), so a retry finds a kept answer without another write.
   * Absent only from in-progress records written before references were drawn at the begin.
   */
  answerRef?: string;
  /** the record's end: 24 h after it was written */
  expiresAtMs: number;
}

/** started: the record is this request's now. Not started: the record that stands. */
export type ProxyBegin = { started: true } | { started: false; record: ProxyRequestRecord };

export interface ProxyIdempotency {
  /**
   * Records `record` (state in_progress) in one conditional write: only where no record is, or
   * one that expired. Refused, it answers the record that stands (the use case decides: replay,
   * takeover, 409 request_in_progress, 400, 409 idempotency_conflict).
   */
  begin(record: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin>;
  /**
   * Replaces `standing` with `record` in one conditional write, only while it is still the
   * record the caller examined (in_progress, held by its answerRef) and a dead one: the same
   * request (hash and caller) past its leaseUntilMs. The use case looked for its answer first,
   * so a takeover never hides a kept one. Refused, it answers the record that stands (or begins
   * afresh where none is any more).
   */
  takeOver(record: ProxyRequestRecord, standing: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin>;
  /**
   * Marks the record done (its request got a 2xx it could not keep, or its call went out and
   * got no answer: the provider may have billed, and nothing is at its answerRef), only while it is still in_progress and held by `heldBy`: the answerRef the
   * finishing request drew at its begin (a takeover draws another, so a first request that
   * outlived its lease never ends its takeover's record).
   */
  finish(id: string, heldBy: string): Promise<boolean>;
  /**
   * Drops an in_progress record held by `heldBy` (as for finish) whose request did not end in a
   * 2xx: a retry may try again.
   */
  abandon(id: string, heldBy: string): Promise<void>;
  /**
   * Moves the lease of an in_progress record held by `heldBy` (as for finish) to `leaseUntilMs`,
   * before its request calls the provider again with another key; false when the record is no
   * longer this request's (a retry took it over): it calls the provider no more.
   */
  renew(id: string, heldBy: string, leaseUntilMs: number): Promise<boolean>;
}

/** A kept answer: status, the returned headers, and the body. */
export interface KeptAnswer {
  status: number;
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array>;
}

export interface AnswerStore {
  /**
   * Keeps an answer under `ref` (an answerRef), encrypted, streaming its body in (bounded
   * memory); resolves once all of it is stored, and only then can get() find it (a reader never
   * meets half an answer). Kept for 24 h.
   */
  put(ref: string, answer: KeptAnswer): Promise<void>;
  /** The kept answer, or undefined when there is none (not kept yet, never kept, or gone). */
  get(ref: string): Promise<KeptAnswer | undefined>;
}

export interface JobPin {
  pool: string;
  jobId: string;
  keyId: string;
  expiresAtMs: number;
}

export interface JobPins {
  /** Pins a job id to the key that started it (a conditional put: one key per id and pool). */
  pin(pin: JobPin): Promise<void>;
  /** The key a job of this pool was started with; undefined for an id keypool did not start there (or that expired). */
  find(pool: string, jobId: string, nowMs: number): Promise<string | undefined>;
}
