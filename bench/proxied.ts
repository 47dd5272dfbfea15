/**
 * The proxied contenders: one use is one generation call to the provider stub
 * (./provider-stub.ts) with a key the caller never sees, its answer read to its end.
 *
 * - keypool-proxied: keypool's proxy use case (lib/use-cases/proxy.ts) in-process, each caller
 *   its own Leasing, pool directory, sealer and HTTP agent, as separate Lambda containers; the
 *   use taken in the lease write, nothing written after a success;
 * - keypool-proxied-idem: the same under a fresh Idempotency-Key per call: the request recorded
 *   in the table (ProxyIdempotency: one begin, nothing more after a success) and the 2xx answer
 *   kept, encrypted, by the file answer store in a temporary folder;
 * - floor-proxied: the least work: the floor's index query and conditional write (the cap in
 *   its condition), then the same call with the key's secret it holds itself.
 *
 * What the edge adds around the use case (the audit line, the metrics, the HTTP server) is not
 * in any contender, as the lease contenders measure the library without the HTTP route.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { DynamoJobPins } from '../lib/adapters/dynamo-job-pins.js';
import { DynamoProxyIdempotency } from '../lib/adapters/dynamo-proxy-idempotency.js';
import { FileAnswerStore } from '../lib/adapters/file-answer-store.js';
import { DynamoKeyStore } from '../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../lib/adapters/dynamo-pool-store.js';
import { NodeProviderHttp } from '../lib/adapters/provider-http.js';
import { KEYPOOL_HEADERS } from '../lib/domain/proxy-headers.js';
import { NoUsableKey } from '../lib/domain/errors.js';
import type { ProxyCall } from '../lib/ports/proxy-call.js';
import type { ResponseSink } from '../lib/ports/proxy.js';
import { Broker } from '../lib/use-cases/broker.js';
import { Proxy } from '../lib/use-cases/proxy.js';
import type { SecretSealer } from '../lib/ports/secret-sealer.js';
import type { ContenderSetup, ProxySetup, UseFn } from './contender-setup.js';

/** The generation every proxied use makes: Stability's Core endpoint, a small multipart form. */
const PATH = 'v2beta/stable-image/generate/core';
const BOUNDARY = 'keypool-bench-boundary';
const BODY = new TextEncoder().encode(
  `--${BOUNDARY}\r\ncontent-disposition: form-data; name="prompt"\r\n\r\na lighthouse at dusk\r\n` +
    `--${BOUNDARY}\r\ncontent-disposition: form-data; name="output_format"\r\n\r\npng\r\n--${BOUNDARY}--\r\n`,
);
const HEADERS: Readonly<Record<string, string>> = {
  accept: 'image/*',
  'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
};
/** The floor's bound on one provider call: the pool default keypool's calls get (proxyTimeoutSeconds). */
const TIMEOUT_MS = 120_000;

/** The benchmark's answers' sealing key (a fresh one per run): the file store derives its keys from it. */
const ANSWERS_KEY = randomBytes(32);

/** The caller's end of one proxied answer: its key header kept, its bytes dropped. */
class DroppingSink implements ResponseSink {
  readonly closed = false;
  status = 0;
  keyId: string | undefined;
  start(status: number, headers: Record<string, string>): void {
    this.status = status;
    this.keyId = headers[KEYPOOL_HEADERS.keyId];
  }
  write(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {}
  fail(): void {
    this.keyId = undefined;
  }
}

function proxySetup(setup: ContenderSetup): ProxySetup {
  if (!setup.proxy) throw new Error('a proxied contender needs the provider stub');
  return setup.proxy;
}

/**
 * keypool's proxy use case, each caller its own (one container each): a use is one call
 * answered 200 whose key the answer names. `idempotent`: under a fresh Idempotency-Key.
 */
export function keypoolProxiedContender(
  setup: ContenderSetup,
  callers: number,
  options: { idempotent: boolean; sealer: () => SecretSealer },
): UseFn {
  const { idempotent } = options;
  const proxy = proxySetup(setup);
  const tables = { client: setup.client, tableName: setup.tableName, meter: setup.meter };
  const store = new DynamoKeyStore(tables);
  const poolStore = new DynamoPoolStore(tables);
  // One store of kept answers for all callers: it is the local stack's, one per process (each
  // caller its own would sweep the same folder once a minute each).
  const answers = new FileAnswerStore({ dir: proxy.answersDir, sealingKey: ANSWERS_KEY });
  const proxies = Array.from({ length: callers }, () => {
    const broker = new Broker({
      store,
      poolStore,
      sealer: options.sealer(),
      candidateLimit: setup.pageSize,
    });
    return new Proxy({
      leasing: broker.leasing,
      pools: broker.pools,
      provider: new NodeProviderHttp(),
      providerBaseUrl: () => proxy.providerUrl,
      jobs: new DynamoJobPins(tables),
      ...(idempotent
        ? {
            idempotency: new DynamoProxyIdempotency(tables),
            answers,
          }
        : {}),
    });
  });
  return async (caller) => {
    const call: ProxyCall = {
      pool: setup.pool,
      method: 'POST',
      path: PATH,
      query: '',
      headers: { ...HEADERS },
      body: BODY,
      ...(idempotent ? { idempotencyKey: randomUUID() } : {}),
    };
    const sink = new DroppingSink();
    try {
      await (proxies[caller % proxies.length] as Proxy).handle(call, sink);
    } catch (error) {
      if (error instanceof NoUsableKey) return undefined;
      throw error;
    }
    if (sink.status !== 200 || sink.keyId === undefined) throw new Error(`a proxied call answered ${sink.status}`);
    return sink.keyId;
  };
}

/**
 * The floor's use (`take`: one index query, one conditional write that takes it under the cap),
 * then the same provider call with the key's secret, over the same HTTP adapter, its answer read whole.
 */
export function floorProxiedContender(setup: ContenderSetup, callers: number, take: UseFn): UseFn {
  const proxy = proxySetup(setup);
  const agents = Array.from({ length: callers }, () => new NodeProviderHttp());
  const url = `${proxy.providerUrl}/${PATH}`;
  return async (caller) => {
    const keyId = await take(caller);
    if (keyId === undefined) return undefined;
    const apiKey = proxy.secrets.get(keyId);
    if (apiKey === undefined) throw new Error(`no secret for ${keyId}`);
    const answer = await (agents[caller % agents.length] as NodeProviderHttp).call({
      method: 'POST',
      url,
      headers: HEADERS,
      body: BODY,
      apiKey,
      timeoutMs: TIMEOUT_MS,
    });
    // Read to its end, as the use case reads every answer it hands on.
    let bytes = 0;
    for await (const chunk of answer.body) bytes += chunk.byteLength;
    if (answer.status !== 200 || bytes === 0) throw new Error(`a floor call answered ${answer.status}`);
    return keyId;
  };
}
