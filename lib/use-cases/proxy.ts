/**
 * Proxy mode (issue 21): keypool calls the pool's provider with a key of its own choosing, so
 * the caller never holds one. One request: refusals before any use is taken (no provider, a
 * path not allowed, a body over the limit, an Idempotency-Key already answered or running),
 * then a use taken (Leasing.takeUse), the provider called, its answer classified by the one
 * outcome table (lib/domain/provider-answers.ts) and the use settled by it; another key tried
 * while the table allows failover and nothing went back to the caller yet; the last answer
 * streamed to the caller. A caller that goes away changes none of this: the provider's answer
 * is read to its end, its outcome recorded, and a 2xx under an Idempotency-Key kept for the
 * replay.
 */
import {
  IdempotencyConflict,
  InvalidRequest,
  JobNotFound,
  NoProvider,
  NoUsableKey,
  PathNotAllowed,
  PayloadTooLarge,
  RequestInProgress,
} from '../domain/errors.js';
import { answerRef } from '../domain/answer-ref.js';
import { callerDigest, idempotencyId, proxyRequestHash } from '../domain/idempotency.js';
import { MAX_PROXY_BODY_BYTES } from '../domain/proxy-body.js';
import { KEPT_MS } from '../domain/proxy-names.js';
import {
  type AnswerVerdict,
  classifyProviderAnswer,
  needsErrorBody,
  type ProxyOutcome,
} from '../domain/provider-answers.js';
import { ProviderFailed, ProviderTimeout } from '../domain/proxy-errors.js';
import { forwardedHeaders, keypoolHeaders, retryAfterSeconds, returnedHeaders } from '../domain/proxy-headers.js';
import { polledJobId, providerPath, startedJobId } from '../domain/proxy-paths.js';
import { isDocumentedError } from '../domain/stability-errors.js';
import type { PoolPolicy, Provider } from '../domain/types.js';
import type { ProxyCall } from '../ports/proxy-call.js';
import {
  type AnswerStore,
  type JobPins,
  type KeptAnswer,
  type ProviderAnswer,
  ProviderCallFailed,
  type ProviderHttp,
  type ProxyIdempotency,
  type ProxyRequestRecord,
  type ResponseSink,
} from '../ports/proxy.js';
import { type Head, readHead, Relay } from '../shared/byte-streams.js';
import { maskSecretPrefix } from '../shared/redact.js';
import type { PoolDirectory } from './pool-directory.js';

/** A use taken for one call: its key and secret (Leasing's ProxyUse carries more, for its settling). */
interface Use {
  keyId: string;
  apiKey: string;
}

/** The lease path's side of proxy mode (Leasing): take a use, settle it, open a key for a poll. */
export interface ProxyLeasing<U extends Use = Use> {
  takeUse(pool: string, options?: { exclude?: ReadonlySet<string> }): Promise<U>;
  settleUse(use: U, verdict: AnswerVerdict): Promise<void>;
  openKey(pool: string, keyId: string): Promise<string | undefined>;
}

/** One proxied call, for the audit line and the metrics: never the key, never a body. */
export interface ProxyAudit {
  pool: string;
  caller: string | undefined;
  /** the key whose answer the caller got (absent for a replay) */
  keyId?: string;
  /** the provider path */
  path: string;
  /** the status the caller got */
  status: number;
  outcome: ProxyOutcome | 'replayed';
  /** keys tried (0: a replay) */
  attempts: number;
  /** the attempts before the last, each failed over from: its key, the provider's status (none: no answer), the outcome */
  failovers: { keyId: string; status?: number; outcome: ProxyOutcome }[];
  bytesIn: number;
  bytesOut: number;
  /** the whole request, ms */
  durationMs: number;
  /** waiting for the provider's headers, summed over the attempts, ms */
  providerMs: number;
  /** keypool's own time before the caller got the answer's headers (or the failure), ms */
  addedMs: number;
}

export interface ProxyOptions {
  leasing: ProxyLeasing;
  pools: Pick<PoolDirectory, 'require'>;
  provider: ProviderHttp;
  /** the provider's base URL, without a trailing slash (STABILITY_API_BASE_URL for `stability`, as checkProviderBaseUrl gives it) */
  providerBaseUrl: (provider: Provider) => string;
  /** with `answers`: requests under an Idempotency-Key are recorded and their 2xx answers replayed */
  idempotency?: ProxyIdempotency;
  answers?: AnswerStore;
  /** async jobs' ids pinned to their keys; without it every poll is job_not_found */
  jobs?: JobPins;
  clock?: () => number;
  /** told about every call that reached the provider, and every replay (the audit line, the metrics) */
  onCall?: (audit: ProxyAudit) => void;
  /** the largest body taken (default MAX_PROXY_BODY_BYTES) */
  maxBodyBytes?: number;
}

/** How much of an error answer is read to decide its shape, and of a 2xx JSON answer to find a job id. */
export const HEAD_BYTES = 64 * 1024;
/** How long past the pool's proxyTimeoutSeconds a running request's record holds before a retry may take it over. */
export const RECORD_MARGIN_SECONDS = 30;
/** The longest Retry-After of a request_in_progress (a generation takes seconds; asking again costs nothing). */
export const IN_PROGRESS_RETRY_SECONDS = 5;

const PATHS_ALLOWED = 'paths under v1/, v2beta/ or v2alpha/, except v1/user/';

/** How an attempt ended: an answer to pass on, or a call that failed before one. */
type Attempt = { use: Use; attempts: number; verdict: AnswerVerdict; settled: boolean } & (
  | { answer: ProviderAnswer; head: Head | undefined }
  | {
      failed: ProviderCallFailed;
      /** the status the provider answered before its error body broke off (none: no answer came) */
      answered?: number;
    }
);

/**
 * The record a request begins: its answerRef, drawn at the begin, is where its answer will be
 * kept and names the request that holds the record (a takeover draws another).
 */
type HeldRecord = ProxyRequestRecord & { answerRef: string };

/**
 * How a request under an Idempotency-Key ended for its record: its 2xx kept; lost (a 2xx not
 * kept, or a call that went out and got no answer: a generation the provider may have billed,
 * with nothing to replay); or dropped (the provider answered, not a 2xx, or was never reached).
 */
type RecordEnd = 'kept' | 'lost' | 'dropped';

/** What a request's audit line knows before its answer. */
interface AuditStart {
  pool: string;
  caller: string | undefined;
  path: string;
  bytesIn: number;
  startedMs: number;
  providerMs: number;
  failovers: ProxyAudit['failovers'];
}

/**
 * The caller's sink, counting what goes through it. Writes after the caller left are dropped by
 * the sink itself (ResponseSink's contract; every edge's sink checks `closed` on write), so they
 * are counted and passed on all the same.
 */
class CountingSink {
  bytes = 0;
  startedAtMs: number | undefined;
  constructor(
    private readonly sink: ResponseSink,
    private readonly clock: () => number,
  ) {}
  start(status: number, headers: Record<string, string>): void {
    this.startedAtMs = this.clock();
    this.sink.start(status, headers);
  }
  async write(chunk: Uint8Array): Promise<void> {
    this.bytes += chunk.byteLength;
    await this.sink.write(chunk);
  }
  end(): void {
    this.sink.end();
  }
  fail(): void {
    this.sink.fail();
  }
}

export class Proxy {
  private readonly options: ProxyOptions;
  private readonly clock: () => number;

  constructor(options: ProxyOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Serves one proxied request to `sink`. Refusals before any byte went out are thrown
   * (KeypoolErrors, which the edge answers as JSON): nothing was taken for them. Once the answer
   * started, a provider body that breaks off cuts it (sink.fail).
   */
  async handle(call: ProxyCall, sink: ResponseSink): Promise<void> {
    const startedMs = this.clock();
    const policy = await this.options.pools.require(call.pool);
    if (policy.provider === 'none') throw new NoProvider(call.pool);
    const path = providerPath(policy.provider, call.path);
    if (path === undefined) throw new PathNotAllowed(PATHS_ALLOWED);
    const maxBody = this.options.maxBodyBytes ?? MAX_PROXY_BODY_BYTES;
    const bytesIn = call.body?.byteLength ?? 0;
    if (bytesIn > maxBody) throw new PayloadTooLarge(maxBody);
    const counted = new CountingSink(sink, this.clock);
    const audit: AuditStart = {
      pool: call.pool,
      caller: call.caller,
      path,
      bytesIn,
      startedMs,
      providerMs: 0,
      failovers: [],
    };
    const url = `${this.options.providerBaseUrl(policy.provider)}/${path}${call.query ? `?${call.query}` : ''}`;
    const headers = forwardedHeaders(call.headers);
    const send: Send = { call, policy, url, headers, audit };

    const jobId = call.method === 'GET' ? polledJobId(path) : undefined;
    if (jobId !== undefined) {
      // A poll: the key that started the job, nothing counted, nothing settled.
      const keyId = await this.options.jobs?.find(call.pool, jobId, this.clock());
      const apiKey = keyId === undefined ? undefined : await this.options.leasing.openKey(call.pool, keyId);
      if (keyId === undefined || apiKey === undefined) throw new JobNotFound(call.pool);
      const polled = await this.attempt(send, { keyId, apiKey }, 1);
      await this.deliver(send, { ...polled, settled: true }, counted);
      return;
    }

    const record = this.record(call, path, headers, policy);
    const idempotency = this.options.idempotency;
    if (record && idempotency) {
      if (!(await this.begin(record, idempotency, counted, audit))) return;
      send.hold = () => idempotency.renew(record.id, record.answerRef, leaseUntilMs(policy, this.clock()));
    }
    let closed = false;
    /**
     * The record's end. A kept answer is one already: it is at the record's answerRef, where a
     * retry looks, so a success writes nothing more to the table. A 2xx not kept (the store
     * failed, or its body broke off) ends it too, done with no answer: the provider billed that
     * generation, so a retry is refused (409 idempotency_conflict), not billed again. Any other
     * end drops the record, and a retry may try again.
     */
    const close = async (end: RecordEnd): Promise<void> => {
      if (!record || !idempotency || closed) return;
      closed = true;
      if (end === 'lost') await idempotency.finish(record.id, record.answerRef);
      else if (end === 'dropped') await idempotency.abandon(record.id, record.answerRef);
    };
    try {
      const last = await this.attempts(send);
      await this.deliver(send, last, counted, record && { record, close });
    } finally {
      await close('dropped');
    }
  }

  /** The record a request under an Idempotency-Key begins, when the stores are configured. */
  private record(
    call: ProxyCall,
    path: string,
    headers: Record<string, string>,
    policy: PoolPolicy,
  ): HeldRecord | undefined {
    if (call.idempotencyKey === undefined || !this.options.idempotency || !this.options.answers) return undefined;
    const nowMs = this.clock();
    const body = call.body ? { body: call.body } : {};
    // Apart from a lease's record under the same Idempotency-Key.
    const id = idempotencyId(call.pool, `proxy\n${call.idempotencyKey}`);
    return {
      id,
      pool: call.pool,
      requestHash: proxyRequestHash({ method: call.method, path, query: call.query, headers, ...body }),
      callerDigest: callerDigest(call.caller),
      state: 'in_progress',
      answerRef: answerRef(call.pool, id),
      leaseUntilMs: leaseUntilMs(policy, nowMs),
      expiresAtMs: nowMs + KEPT_MS,
    };
  }

  /**
   * Begins the request's record: true when this request runs (a new record, or the takeover of
   * one whose request died with no answer kept), false when a replay answered it; a refusal is
   * thrown. The kept answer is looked for before any takeover, and the takeover replaces only
   * the record examined, so no write can hide an answer a dead request kept.
   */
  private async begin(
    record: HeldRecord,
    idempotency: ProxyIdempotency,
    sink: CountingSink,
    audit: AuditStart,
  ): Promise<boolean> {
    const begun = await idempotency.begin(record, this.clock());
    if (begun.started || heldBy(begun.record, record)) return true;
    if (await this.replay(record, begun.record, sink, audit)) return false;
    const taken = await idempotency.takeOver(record, begun.record, this.clock());
    if (taken.started || heldBy(taken.record, record)) return true;
    // Another retry took it over first (or its request renewed it): it runs.
    if (await this.replay(record, taken.record, sink, audit)) return false;
    throw new RequestInProgress(1);
  }

  /**
   * A repeat of a request under its Idempotency-Key: true once its kept answer was replayed;
   * false when its request died (in progress past its lease) with no answer kept, and may be
   * taken over; else why there is none to give, thrown.
   */
  private async replay(
    mine: HeldRecord,
    standing: ProxyRequestRecord,
    sink: CountingSink,
    audit: AuditStart,
  ): Promise<boolean> {
    if (standing.callerDigest !== mine.callerDigest) throw new IdempotencyConflict('another caller made it', 'request');
    if (standing.requestHash !== mine.requestHash) {
      throw new InvalidRequest(
        'this Idempotency-Key was used for another proxied request; use a new key for a new request',
        [{ path: 'headers.idempotency-key', message: 'already used with another request' }],
      );
    }
    // Its answer, once kept, is the request's end, whatever the record's state says.
    const kept = standing.answerRef === undefined ? undefined : await this.options.answers?.get(standing.answerRef);
    if (kept) {
      await this.replayKept(kept, sink, audit);
      return true;
    }
    if (standing.state === 'in_progress') {
      const leftMs = standing.leaseUntilMs - this.clock();
      if (leftMs <= 0) return false;
      throw new RequestInProgress(Math.min(IN_PROGRESS_RETRY_SECONDS, Math.ceil(leftMs / 1000)));
    }
    throw new IdempotencyConflict(
      'the provider may have billed it and no answer is kept to replay (a 2xx not kept, or no answer in time)',
      'request',
    );
  }

  /** A kept answer to the caller, with the headers it was answered with; no key was tried this time. */
  private async replayKept(kept: KeptAnswer, sink: CountingSink, audit: AuditStart): Promise<void> {
    sink.start(kept.status, { ...kept.headers, 'x-keypool-attempts': '0' });
    for await (const chunk of kept.body) await sink.write(chunk);
    sink.end();
    this.report(audit, sink, { status: kept.status, outcome: 'replayed', attempts: 0 });
  }

  /**
   * Takes a use and calls the provider with it, key after key while the table allows failover,
   * keys remain and the pool's proxyAttempts is not reached; ends with the attempt whose answer
   * (or failure) the caller gets. Every attempt but that one is settled here.
   */
  private async attempts(send: Send): Promise<Attempt> {
    const { leasing } = this.options;
    const pool = send.call.pool;
    const tried = new Set<string>();
    let use: Use = await leasing.takeUse(pool, { exclude: tried });
    for (let attempts = 1; ; attempts++) {
      tried.add(use.keyId);
      const attempt = await this.attempt(send, use, attempts);
      if (!attempt.verdict.failover || attempts >= send.policy.proxyAttempts) return attempt;
      // Another call could outlive the invocation (a slow refusal took its time): this answer is the caller's.
      if (!this.timeForAnotherCall(send)) return attempt;
      await leasing.settleUse(use, attempt.verdict);
      const answered = 'answer' in attempt ? attempt.answer.status : attempt.answered;
      const status = answered === undefined ? {} : { status: answered };
      send.audit.failovers.push({ keyId: use.keyId, ...status, outcome: attempt.verdict.outcome });
      try {
        // The record is no longer this request's (a retry took it over): no further provider call.
        if (send.hold && !(await send.hold())) return { ...attempt, settled: true };
        use = await leasing.takeUse(pool, { exclude: tried });
      } catch (error) {
        // No key left to fail over to: the caller gets this answer.
        if (error instanceof NoUsableKey) return { ...attempt, settled: true };
        if ('answer' in attempt) attempt.answer.abort();
        throw error;
      }
      if ('answer' in attempt) attempt.answer.abort();
    }
  }

  /**
   * Whether the edge has time left for one more provider call and its answer's settling: the
   * pool's proxyTimeoutSeconds and the record's margin. A Lambda killed mid-call would leave the
   * caller no answer and a use counted unknown; without a bound (the local server), always.
   */
  private timeForAnotherCall(send: Send): boolean {
    const left = send.call.remainingMs?.();
    return left === undefined || left >= (send.policy.proxyTimeoutSeconds + RECORD_MARGIN_SECONDS) * 1000;
  }

  /** One provider call with `use`, classified by the table; an error answer's head read to decide its shape. */
  private async attempt(send: Send, use: Use, attempts: number): Promise<Attempt> {
    const { call, policy, url, headers, audit } = send;
    const calledMs = this.clock();
    const failed = (error: unknown, answered?: number): Attempt => {
      // Anything but the provider call's own failure is a fault here: the use stays counted.
      if (!(error instanceof ProviderCallFailed)) throw error;
      const verdict = classifyProviderAnswer({ failed: { sent: error.sent } });
      return { use, attempts, verdict, settled: false, failed: error, ...(answered === undefined ? {} : { answered }) };
    };
    let answer: ProviderAnswer;
    try {
      answer = await this.options.provider.call({
        method: call.method,
        url,
        headers,
        ...(call.body ? { body: call.body } : {}),
        apiKey: use.apiKey,
        timeoutMs: policy.proxyTimeoutSeconds * 1000,
      });
    } catch (error) {
      return failed(error);
    } finally {
      audit.providerMs += this.clock() - calledMs;
    }
    let head: Head | undefined;
    if (needsErrorBody(answer.status)) {
      try {
        head = await readHead(answer.body, HEAD_BYTES);
      } catch (error) {
        // The provider answered this status, so it generated nothing; the body that would say
        // what the status means for the key broke off, so it says nothing (not documented).
        return {
          ...failed(error, answer.status),
          verdict: classifyProviderAnswer({ status: answer.status, documented: false }),
        };
      }
    }
    const documented = head !== undefined && head.whole && isDocumentedError(Buffer.from(head.bytes).toString('utf8'));
    const wait = retryAfterSeconds(answer.headers['retry-after'], this.clock());
    const verdict = classifyProviderAnswer({
      status: answer.status,
      documented,
      ...(wait === undefined ? {} : { retryAfterSeconds: wait }),
    });
    return { use, attempts, verdict, settled: false, answer, head };
  }

  /**
   * Hands the last attempt to the caller and settles it once its body was read (a body that
   * breaks off after the request went out is `unknown`: the use stays counted). An error
   * answer's first HEAD_BYTES are read before any byte goes out, and what they echo of the key
   * masked. A 2xx JSON answer that starts a job has its id pinned before the caller can read it;
   * a 2xx under an Idempotency-Key is kept as it streams, and the record closed (ended by the
   * kept answer, or dropped) before the caller's last bytes go out.
   */
  private async deliver(
    send: Send,
    attempt: Attempt,
    sink: CountingSink,
    idempotent?: { record: HeldRecord; close: (end: RecordEnd) => Promise<void> },
  ): Promise<void> {
    const { use, attempts } = attempt;
    if ('failed' in attempt) {
      if (!attempt.settled) await this.options.leasing.settleUse(use, attempt.verdict);
      const { failed, verdict } = attempt;
      // Sent with no answer (a timeout, a reset): the provider may have generated and billed it,
      // as a use kept `unknown` says; a retry under the key is refused, never sent again, as no
      // other key is tried for it. A call never sent billed nothing, nor did an error status
      // whose body broke off (the provider answered, not a 2xx): their record is dropped.
      if (failed.sent && attempt.answered === undefined) await idempotent?.close('lost');
      const last = { keyId: use.keyId, attempts, outcome: verdict.outcome };
      // An answered error whose body broke off is not a call left without an answer (504).
      const timedOut = failed.sent && failed.reason === 'timeout' && attempt.answered === undefined;
      this.report(send.audit, sink, {
        keyId: use.keyId,
        status: timedOut ? 504 : 502,
        outcome: verdict.outcome,
        attempts,
      });
      throw timedOut
        ? new ProviderTimeout(last, send.policy.proxyTimeoutSeconds)
        : new ProviderFailed(last, failed.sent);
    }
    const { answer, verdict } = attempt;
    const success = answer.status >= 200 && answer.status <= 299;
    let head = attempt.head;
    try {
      if (success && send.call.method === 'POST') head = await this.pinJob(send, use.keyId, answer);
      // Every error answer is read before the caller gets any of it, whatever its status: what
      // its body echoes of the key is masked below (not only the statuses whose shape is read).
      else if (!success) head ??= await readHead(answer.body, HEAD_BYTES);
    } catch (error) {
      // The answer broke off before anything went to the caller: a 2xx's generation was billed
      // (unknown: the use stays counted); an error status billed nothing and settles as it says.
      if (success) await idempotent?.close('lost');
      const failed = error instanceof ProviderCallFailed ? error : new ProviderCallFailed(true, 'reset');
      const broken = success
        ? { verdict: classifyProviderAnswer({ failed }) }
        : { verdict: attempt.verdict, answered: answer.status };
      return this.deliver(send, { use, attempts, settled: attempt.settled, failed, ...broken }, sink);
    }
    const headers = { ...returnedHeaders(answer.headers), ...keypoolHeaders(use.keyId, attempts, verdict.outcome) };
    let body = head ? head.all : answer.body;
    if (head?.whole && !success) {
      // What an error body echoes of the key stays here.
      const text = Buffer.from(head.bytes).toString('utf8');
      const masked = maskSecretPrefix(text, use.apiKey);
      if (masked !== text) {
        const bytes = Buffer.from(masked, 'utf8');
        headers['content-length'] = String(bytes.byteLength);
        body = (async function* () {
          yield await Promise.resolve(bytes);
        })();
      }
    }
    sink.start(answer.status, headers);
    const keeping = success && idempotent ? this.keep(idempotent.record, answer.status, headers) : undefined;
    // The caller's last chunk is held back until the use is settled and the record closed: a
    // caller that has the whole answer (and retries, or reads the key's count) finds both done.
    let held: Uint8Array | undefined;
    let broken = false;
    try {
      for await (const chunk of body) {
        await Promise.all([held && sink.write(held), keeping?.relay.push(chunk)]);
        held = chunk;
      }
      keeping?.relay.end();
    } catch (error) {
      keeping?.relay.fail(error instanceof Error ? error : new Error('the answer broke off'));
      broken = true;
    }
    // A 2xx whose body broke off: unknown, the use stays counted. An error status billed
    // nothing whatever became of its body: it settles as its status said.
    const settled = broken && success ? classifyProviderAnswer({ failed: { sent: true } }) : verdict;
    if (!attempt.settled) await this.options.leasing.settleUse(use, settled);
    await idempotent?.close(!success ? 'dropped' : keeping && (await keeping.kept) ? 'kept' : 'lost');
    if (broken) sink.fail();
    else {
      if (held) await sink.write(held);
      sink.end();
    }
    this.report(send.audit, sink, { keyId: use.keyId, status: answer.status, outcome: settled.outcome, attempts });
  }

  /**
   * A 2xx JSON answer's first bytes, read before the caller gets any: a job's id in it is pinned
   * to the key that started it. Undefined when it is not such an answer (nothing read).
   */
  private async pinJob(send: Send, keyId: string, answer: ProviderAnswer): Promise<Head | undefined> {
    const jobs = this.options.jobs;
    if (!jobs || !/^application\/json\b/i.test(answer.headers['content-type'] ?? '')) return undefined;
    const head = await readHead(answer.body, HEAD_BYTES);
    const text = head.whole ? Buffer.from(head.bytes).toString('utf8') : '';
    const jobId = startedJobId(answer.status, answer.headers['content-type'], text);
    if (jobId !== undefined) {
      const nowMs = this.clock();
      await jobs.pin({ pool: send.call.pool, jobId, keyId, expiresAtMs: nowMs + KEPT_MS });
    }
    return head;
  }

  /** Keeps an answer as it streams: its chunks are handed to the answer store one at a time. */
  private keep(
    record: HeldRecord,
    status: number,
    headers: Record<string, string>,
  ): { relay: Relay; kept: Promise<boolean> } | undefined {
    const answers = this.options.answers;
    if (!answers) return undefined;
    const relay = new Relay();
    const kept = answers.put(record.answerRef, { status, headers, body: relay.stream }).then(
      () => true,
      () => {
        // The store failed: the caller still gets the answer; a retry calls the provider again.
        relay.drop();
        return false;
      },
    );
    return { relay, kept };
  }

  private report(
    audit: AuditStart,
    sink: CountingSink,
    result: { keyId?: string; status: number; outcome: ProxyAudit['outcome']; attempts: number },
  ): void {
    const nowMs = this.clock();
    const answeredMs = sink.startedAtMs ?? nowMs;
    this.options.onCall?.({
      pool: audit.pool,
      caller: audit.caller,
      ...(result.keyId === undefined ? {} : { keyId: result.keyId }),
      path: audit.path,
      status: result.status,
      outcome: result.outcome,
      attempts: result.attempts,
      failovers: audit.failovers,
      bytesIn: audit.bytesIn,
      bytesOut: sink.bytes,
      durationMs: nowMs - audit.startedMs,
      providerMs: audit.providerMs,
      addedMs: Math.max(0, answeredMs - audit.startedMs - audit.providerMs),
    });
  }
}

/** What every attempt of one request sends. */
interface Send {
  call: ProxyCall;
  policy: PoolPolicy;
  url: string;
  headers: Record<string, string>;
  audit: AuditStart;
  /**
   * Under an Idempotency-Key: renews the request's record for one more provider call before a
   * failover (the lease it began with bounds one call), false when a retry took it over.
   */
  hold?: () => Promise<boolean>;
}

/**
 * Whether the record that refused a begin or takeover is the one this request wrote: in progress
 * and held by its answerRef, which it drew at random when it began and no other request holds.
 * The write applied and only its answer was lost: the store's client sent it again, and the
 * retry met the record it had just put. Anything else is another request's record.
 */
function heldBy(standing: ProxyRequestRecord, mine: HeldRecord): boolean {
  return standing.state === 'in_progress' && standing.answerRef === mine.answerRef;
}

/** How long a record holds for one provider call before a retry may take it over. */
function leaseUntilMs(policy: PoolPolicy, nowMs: number): number {
  return nowMs + (policy.proxyTimeoutSeconds + RECORD_MARGIN_SECONDS) * 1000;
}
