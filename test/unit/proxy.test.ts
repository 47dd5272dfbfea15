/**
 * The proxy use case (lib/use-cases/proxy.ts) on the in-memory stores with a scripted provider:
 * which key's answer the caller gets after failover, that `unknown` never fails over, that a
 * caller who left changes nothing (the answer is read, settled and kept), and the refusals made
 * before any use is taken. Through real HTTP: test/http/proxy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  IdempotencyConflict,
  NoProvider,
  PathNotAllowed,
  PayloadTooLarge,
  RequestInProgress,
} from '../../lib/domain/errors.js';
import { ProviderFailed, ProviderTimeout } from '../../lib/domain/proxy-errors.js';
import {
  type KeptAnswer,
  type ProviderAnswer,
  type ProxyBegin,
  type ProxyRequestRecord,
  ProviderCallFailed,
  type ProviderHttp,
  type ProviderRequest,
  type ResponseSink,
} from '../../lib/ports/proxy.js';
import { type ProxyAudit, Proxy, RECORD_MARGIN_SECONDS } from '../../lib/use-cases/proxy.js';
import { DEFAULT_PROXY_TIMEOUT_SECONDS } from '../../lib/domain/types.js';
import { MemoryAnswerStore, MemoryJobPins, MemoryProxyIdempotency } from '../support/memory-proxy-stores.js';
import { POOL, proxyCall, setup } from '../support/memory-world.js';

/** An answer (`cut`: its body breaks off after its bytes), or a call that failed before one. */
type Scripted = { status: number; body?: string; headers?: Record<string, string>; cut?: boolean } | ProviderCallFailed;

/**
 * A provider that answers each call with the next of `script` (a promise: once it settles, as a
 * provider still generating), and keeps the keys it was called with.
 */
function scriptedProvider(script: (Scripted | Promise<Scripted>)[]): ProviderHttp & { keys: string[] } {
  const keys: string[] = [];
  return {
    keys,
    async call(request: ProviderRequest): Promise<ProviderAnswer> {
      keys.push(request.apiKey);
      const next = await (script.shift() ?? { status: 200, body: 'image' });
      if (next instanceof ProviderCallFailed) throw next;
      const body = Buffer.from(next.body ?? '');
      return {
        status: next.status,
        headers: { 'content-type': 'application/json', ...next.headers },
        body: (async function* () {
          yield await Promise.resolve(body);
          if (next.cut) throw new ProviderCallFailed(true, 'reset');
        })(),
        abort: () => undefined,
      };
    },
  };
}

/** An answer the test gives when it chooses: the provider is still working until then. */
function later(): { answer: Promise<Scripted>; give: (answer: Scripted) => void } {
  let give: (answer: Scripted) => void = () => undefined;
  const answer = new Promise<Scripted>((resolve) => (give = resolve));
  return { answer, give };
}

/** A sink that keeps what it was given; `closed` from the start plays a caller who left. */
function memorySink(
  closed = false,
): ResponseSink & { status?: number; headers?: Record<string, string>; text: () => string } {
  const chunks: Buffer[] = [];
  const sink = {
    closed,
    status: undefined as number | undefined,
    headers: undefined as Record<string, string> | undefined,
    start(status: number, headers: Record<string, string>) {
      sink.status = status;
      sink.headers = headers;
    },
    write(chunk: Uint8Array) {
      if (!closed) chunks.push(Buffer.from(chunk));
      return Promise.resolve();
    },
    end: () => undefined,
    fail: () => undefined,
    text: () => Buffer.concat(chunks).toString(),
  };
  return sink;
}

const DOCUMENTED_401 = JSON.stringify({ id: 'e1', name: 'unauthorized', errors: ['bad key'] });

/** The in-memory records, with every write after a begin counted, or failing as a process that died there. */
class WatchedIdempotency extends MemoryProxyIdempotency {
  readonly writes: string[] = [];
  dieAfterBegin = false;
  override finish(id: string, heldBy: string): Promise<boolean> {
    this.writes.push('finish');
    if (this.dieAfterBegin) return Promise.reject(new Error('the process died'));
    return super.finish(id, heldBy);
  }
  override abandon(id: string, heldBy: string): Promise<void> {
    this.writes.push('abandon');
    if (this.dieAfterBegin) return Promise.reject(new Error('the process died'));
    return super.abandon(id, heldBy);
  }
  override takeOver(record: ProxyRequestRecord, standing: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin> {
    this.writes.push('takeOver');
    return super.takeOver(record, standing, nowMs);
  }
}

/** The in-memory answers, or a store that fails every put (`failing`), or its next `failingGets` reads. */
class FailingAnswerStore extends MemoryAnswerStore {
  failing = false;
  failingGets = 0;
  override async put(ref: string, answer: KeptAnswer): Promise<void> {
    if (this.failing) throw new Error('the answer store is unavailable');
    await super.put(ref, answer);
  }
  override get(ref: string): Promise<KeptAnswer | undefined> {
    if (this.failingGets-- > 0) return Promise.reject(new Error('the answer store is unavailable'));
    return super.get(ref);
  }
}

async function proxyWorld(keys: number, script: (Scripted | Promise<Scripted>)[]) {
  const w = await setup(keys);
  const provider = scriptedProvider(script);
  const audits: ProxyAudit[] = [];
  const answers = new FailingAnswerStore();
  const idempotency = new WatchedIdempotency();
  const proxy = new Proxy({
    leasing: w.leasing,
    pools: w.pools,
    provider,
    providerBaseUrl: () => 'https://provider.test',
    idempotency,
    answers,
    jobs: new MemoryJobPins(w.clock.now),
    clock: w.clock.now,
    onCall: (audit) => audits.push(audit),
  });
  return { ...w, provider, proxy, audits, answers, idempotency };
}

/** Waits until the provider was called `count` times (the requests run on their own). */
async function untilCalled(provider: { keys: string[] }, count: number): Promise<void> {
  for (let turn = 0; turn < 1_000 && provider.keys.length < count; turn++)
    await new Promise((resolve) => setImmediate(resolve));
  expect(provider.keys).toHaveLength(count);
}

/** How long a request's record holds before a retry may take it over. */
const RECORD_LEASE_MS = (DEFAULT_PROXY_TIMEOUT_SECONDS + RECORD_MARGIN_SECONDS) * 1000;

const call = proxyCall;

describe('Proxy: failover', () => {
  it('a documented 401 fails over: the caller gets the next key answer, the first key rests with its use given back', async () => {
    // Prepare
    const { proxy, store, ids, audits } = await proxyWorld(2, [{ status: 401, body: DOCUMENTED_401 }]);
    const sink = memorySink();
    // Act
    await proxy.handle(call(), sink);
    // Assess
    expect([sink.status, sink.headers?.['x-keypool-attempts'], sink.text()]).toEqual([200, '2', 'image']);
    expect(store.peek(ids[0] ?? '')?.usageCount).toBe(0);
    expect(store.peek(ids[0] ?? '')?.status).toBe('suspect');
    expect(store.peek(ids[1] ?? '')?.usageCount).toBe(1);
    expect(audits[0]?.failovers).toEqual([{ keyId: ids[0], status: 401, outcome: 'invalid_key' }]);
  });

  it('starts no failover that could outlive the invocation: with less time left than a call and its settling, the caller gets the refusal', async () => {
    // Prepare: the edge has less than proxyTimeoutSeconds + the record's margin left
    const { proxy, provider, store, ids } = await proxyWorld(2, [{ status: 401, body: DOCUMENTED_401 }]);
    const sink = memorySink();
    const remainingMs = () => RECORD_LEASE_MS - 1;
    // Act
    await proxy.handle(call({ remainingMs }), sink);
    // Assess
    expect([sink.status, sink.headers?.['x-keypool-attempts']]).toEqual([401, '1']);
    expect(provider.keys).toHaveLength(1);
    expect(store.peek(ids[0] ?? '')?.status).toBe('suspect');
  });

  it('fails over while the invocation has time for the next call and its settling', async () => {
    // Prepare
    const { proxy, provider } = await proxyWorld(2, [{ status: 401, body: DOCUMENTED_401 }]);
    const sink = memorySink();
    // Act
    await proxy.handle(call({ remainingMs: () => RECORD_LEASE_MS }), sink);
    // Assess
    expect([sink.status, sink.text()]).toEqual([200, 'image']);
    expect(provider.keys).toHaveLength(2);
  });

  it('no key left to fail over to: the caller gets the last answer as it came, not a 409', async () => {
    // Prepare
    const { proxy, store, ids } = await proxyWorld(1, [{ status: 503, body: 'busy' }]);
    const sink = memorySink();
    // Act
    await proxy.handle(call(), sink);
    // Assess
    expect([sink.status, sink.text(), sink.headers?.['x-keypool-outcome']]).toEqual([503, 'busy', 'failure']);
    expect(store.peek(ids[0] ?? '')?.usageCount).toBe(0);
  });

  it('a timeout after the request went out is unknown: no other key, the use kept, 504', async () => {
    // Prepare
    const { proxy, provider, store, ids } = await proxyWorld(2, [new ProviderCallFailed(true, 'timeout')]);
    // Act
    const error = await proxy.handle(call(), memorySink()).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProviderTimeout);
    expect(provider.keys).toHaveLength(1);
    expect(ids.map((id) => store.peek(id)?.usageCount).sort()).toEqual([0, 1]);
  });

  it('no connection on any key: every use given back, 502', async () => {
    // Prepare
    const refused = (): ProviderCallFailed => new ProviderCallFailed(false, 'connect');
    const { proxy, provider, store, ids } = await proxyWorld(2, [refused(), refused()]);
    // Act
    const error = await proxy.handle(call(), memorySink()).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProviderFailed);
    expect(provider.keys).toHaveLength(2);
    expect(ids.map((id) => store.peek(id)?.usageCount)).toEqual([0, 0]);
  });
});

describe('Proxy: a caller who left', () => {
  it('changes nothing: the answer is read and kept, and the retry replays it without a provider call', async () => {
    // Prepare
    const { proxy, provider, audits } = await proxyWorld(1, []);
    // Act
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink(true));
    const retry = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
    // Assess
    expect(provider.keys).toHaveLength(1);
    expect(audits.map((a) => [a.outcome, a.bytesOut])).toEqual([
      ['success', 5],
      ['replayed', 5],
    ]);
    expect([retry.status, retry.text(), retry.headers?.['x-keypool-attempts']]).toEqual([200, 'image', '0']);
  });
});

describe('Proxy: a request under an Idempotency-Key', () => {
  it('writes its record once, at its begin: the kept answer is its end, and a retry replays it', async () => {
    // Prepare
    const { proxy, provider, idempotency, answers } = await proxyWorld(1, []);
    // Act
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink());
    const retry = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
    // Assess
    const [record] = [...idempotency.records.values()];
    expect(idempotency.writes).toEqual([]);
    expect(record?.state).toBe('in_progress');
    expect([...answers.answers.keys()]).toEqual([record?.answerRef]);
    expect(provider.keys).toHaveLength(1);
    expect([retry.status, retry.text(), retry.headers?.['x-keypool-attempts']]).toEqual([200, 'image', '0']);
  });

  it('bills once when its process dies right after keeping the answer: a retry past its lease replays it, writing nothing', async () => {
    // Prepare: every write of the records after a begin fails, as a process that died there
    const { proxy, provider, idempotency, clock, audits } = await proxyWorld(2, []);
    idempotency.dieAfterBegin = true;
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch(() => undefined);
    idempotency.dieAfterBegin = false;
    clock.advance(RECORD_LEASE_MS);
    // Act: the retry takes the record over, past the first request's lease
    const retry = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
    const later = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), later);
    // Assess: the provider was called once; the kept answer was found before any takeover, so
    // the record was neither taken over nor written again
    expect(provider.keys).toHaveLength(1);
    expect([retry.status, retry.text(), later.text()]).toEqual([200, 'image', 'image']);
    expect(audits.map((a) => a.outcome)).toEqual(['success', 'replayed', 'replayed']);
    expect([...idempotency.records.values()].map((r) => r.state)).toEqual(['in_progress']);
    expect(idempotency.writes).toEqual([]);
  });

  it('bills once when its 2xx could not be kept: the retry of a caller who left is refused, not sent to the provider again', async () => {
    // Prepare: the answer store fails
    const { proxy, provider, answers, store, ids } = await proxyWorld(2, []);
    answers.failing = true;
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink(true));
    answers.failing = false;
    // Act
    const retry = await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch((e: unknown) => e);
    // Assess
    expect(retry).toBeInstanceOf(IdempotencyConflict);
    // A proxied request's refusal speaks of the request, not of a lease the caller never took.
    expect((retry as Error).message).toBe(
      'this Idempotency-Key names a proxied request that cannot be answered again: the provider may have billed it and no answer is kept to replay (a 2xx not kept, or no answer in time); use a new key for a new request',
    );
    expect(provider.keys).toHaveLength(1);
    expect(ids.map((id) => store.peek(id)?.usageCount).sort()).toEqual([0, 1]);
  });

  it('bills once when the retry that found its dead request failed to read the kept answer: a later retry still replays it', async () => {
    // Prepare: the first request kept its answer and died; past its lease, a retry cannot read the store
    const { proxy, provider, answers, clock } = await proxyWorld(2, []);
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink(true));
    clock.advance(RECORD_LEASE_MS);
    answers.failingGets = 1;
    const failed = await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch((e: unknown) => e);
    clock.advance(RECORD_LEASE_MS);
    // Act
    const retry = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
    // Assess
    expect(failed).toBeInstanceOf(Error);
    expect([retry.status, retry.text()]).toEqual([200, 'image']);
    expect(provider.keys).toHaveLength(1);
  });

  it.each([
    ['as it streamed to the caller', 'image/png'],
    ['before the caller got any of it (a job id looked for)', 'application/json'],
  ])('bills once when its 2xx broke off %s: the retry is refused, not sent to the provider again', async (_, type) => {
    // Prepare
    const cut = { status: 200, body: 'ima', headers: { 'content-type': type }, cut: true };
    const { proxy, provider } = await proxyWorld(2, [cut]);
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch(() => undefined);
    // Act
    const retry = await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch((e: unknown) => e);
    // Assess
    expect(retry).toBeInstanceOf(IdempotencyConflict);
    expect(provider.keys).toHaveLength(1);
  });

  it.each([
    ['timed out', 'timeout'],
    ['was reset', 'reset'],
  ] as const)(
    'bills at most once when its call went out and %s with no answer: the retry is refused, not sent again',
    async (_, reason) => {
      // Prepare
      const { proxy, provider, store, ids } = await proxyWorld(2, [new ProviderCallFailed(true, reason)]);
      await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch(() => undefined);
      // Act
      const retry = await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch((e: unknown) => e);
      // Assess
      expect(retry).toBeInstanceOf(IdempotencyConflict);
      expect(provider.keys).toHaveLength(1);
      expect(ids.map((id) => store.peek(id)?.usageCount).sort()).toEqual([0, 1]);
    },
  );

  it('lets a retry ask the provider again after no call went out (no connection on any key)', async () => {
    // Prepare
    const refused = new ProviderCallFailed(false, 'connect');
    const { proxy, provider } = await proxyWorld(2, [refused, refused]);
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch(() => undefined);
    // Act
    const retry = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
    // Assess
    expect([retry.status, retry.text()]).toEqual([200, 'image']);
    expect(provider.keys).toHaveLength(3);
  });

  it.each([
    ['whose shape decides its meaning (429)', 429],
    ['whose shape does not (500)', 500],
  ])(
    'lets a retry ask the provider again after an error answer %s broke off: the provider answered, billing nothing',
    async (_, status) => {
      // Prepare: the status and the start of the body arrive, then the connection is reset.
      const { proxy, provider } = await proxyWorld(1, [{ status, body: '{"id":"e1","na', cut: true }]);
      await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch(() => undefined);
      // Act
      const retry = memorySink();
      await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
      // Assess
      expect([retry.status, retry.text()]).toEqual([200, 'image']);
      expect(provider.keys).toHaveLength(2);
    },
  );

  it('gives the use back when a 429 broke off before its shape could be read: another key is tried, the first left as it was', async () => {
    // Prepare: the status and the start of the body arrive, then the connection is reset.
    const { proxy, store, ids, audits } = await proxyWorld(2, [{ status: 429, body: '{"id":"e1","na', cut: true }]);
    const sink = memorySink();
    // Act
    await proxy.handle(call(), sink);
    // Assess
    expect([sink.status, sink.text()]).toEqual([200, 'image']);
    expect(audits[0]?.failovers).toEqual([{ keyId: ids[0], status: 429, outcome: 'provider_unavailable' }]);
    expect(ids.map((id) => store.peek(id)?.usageCount).sort()).toEqual([0, 1]);
    expect(ids.map((id) => store.peek(id)?.status)).toEqual(['active', 'active']);
  });

  it('gives the use back when a 400 (no other key tried) broke off before it went out: 502, nothing counted', async () => {
    // Prepare
    const { proxy, store, ids } = await proxyWorld(2, [{ status: 400, body: '{"id":"e1","na', cut: true }]);
    // Act
    const error = await proxy.handle(call(), memorySink()).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProviderFailed);
    expect(store.peek(ids[0] ?? '')?.usageCount).toBe(0);
  });

  it('lets a retry ask the provider again after an answer that was not a 2xx', async () => {
    // Prepare
    const { proxy, provider } = await proxyWorld(1, [{ status: 400, body: 'bad prompt' }]);
    await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink());
    // Act
    const retry = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), retry);
    // Assess
    expect([retry.status, retry.text()]).toEqual([200, 'image']);
    expect(provider.keys).toHaveLength(2);
  });
});

/**
 * A request whose provider call is still running past its record's lease (`first` answers it),
 * and a retry that took its record over, its own call running too (`second`).
 */
async function takenOverWhileRunning() {
  const first = later();
  const second = later();
  const world = await proxyWorld(3, [first.answer, second.answer]);
  const { proxy, provider, clock } = world;
  const sink = memorySink();
  const running = proxy.handle(call({ idempotencyKey: 'job-1' }), sink);
  await untilCalled(provider, 1);
  clock.advance(RECORD_LEASE_MS);
  const takeover = proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink());
  await untilCalled(provider, 2);
  return { ...world, first, second, running, takeover, sink };
}

describe('Proxy: a request that outlives its lease', () => {
  it('cannot drop the record its takeover holds: a third try waits for the takeover, the provider is not called again', async () => {
    // Prepare: the first request's provider call runs past its lease; a retry takes the record over
    const { proxy, provider, first, second, running, takeover } = await takenOverWhileRunning();
    // Act: the first request ends with nothing to keep while the takeover still runs
    first.give({ status: 400, body: 'bad prompt' });
    await running;
    const third = await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch((e: unknown) => e);
    second.give({ status: 200, body: 'image' });
    await takeover;
    const replay = memorySink();
    await proxy.handle(call({ idempotencyKey: 'job-1' }), replay);
    // Assess
    expect(third).toBeInstanceOf(RequestInProgress);
    expect(provider.keys).toHaveLength(2);
    expect(replay.text()).toBe('image');
  });

  it('holds its record while it fails over past its first lease: a retry then waits, the provider is not called a third time', async () => {
    // Prepare: the first key's 503 comes late, and the key failed over to is still generating
    const first = later();
    const second = later();
    const { proxy, provider, clock } = await proxyWorld(3, [first.answer, second.answer]);
    const running = proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink());
    await untilCalled(provider, 1);
    clock.advance(RECORD_LEASE_MS - 10_000);
    first.give({ status: 503, body: 'busy' });
    await untilCalled(provider, 2);
    clock.advance(20_000);
    // Act: a retry past the lease the request began with
    const retry = await proxy.handle(call({ idempotencyKey: 'job-1' }), memorySink()).catch((e: unknown) => e);
    second.give({ status: 200, body: 'image' });
    await running;
    // Assess
    expect(retry).toBeInstanceOf(RequestInProgress);
    expect(provider.keys).toHaveLength(2);
  });

  it('fails over no more once a retry took its record over: the caller gets the answer it has', async () => {
    // Prepare: the first key's 503 comes after a retry took the record over
    const { provider, first, second, running, takeover, sink } = await takenOverWhileRunning();
    // Act
    first.give({ status: 503, body: 'busy' });
    await running;
    second.give({ status: 200, body: 'image' });
    await takeover;
    // Assess
    expect([sink.status, sink.text()]).toEqual([503, 'busy']);
    expect(provider.keys).toHaveLength(2);
  });
});

describe('Proxy: refusals before any use', () => {
  it('no provider, a path not allowed, a body over the limit: nothing taken, the provider never called', async () => {
    // Prepare
    const { proxy, provider, poolAdmin, store, ids } = await proxyWorld(1, []);
    // Act
    const path = await proxy.handle(call({ path: 'v1/user/balance' }), memorySink()).catch((e: unknown) => e);
    const body = await proxy
      .handle(call({ body: new Uint8Array(10 * 1024 * 1024 + 1) }), memorySink())
      .catch((e: unknown) => e);
    await poolAdmin.set(POOL, { provider: 'none' });
    const none = await proxy.handle(call(), memorySink()).catch((e: unknown) => e);
    // Assess
    expect(path).toBeInstanceOf(PathNotAllowed);
    expect(body).toBeInstanceOf(PayloadTooLarge);
    expect(none).toBeInstanceOf(NoProvider);
    expect(provider.keys).toHaveLength(0);
    expect(store.peek(ids[0] ?? '')?.usageCount).toBe(0);
  });
});
