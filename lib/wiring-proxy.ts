/**
 * Proxy mode's use case, built from configuration: the process's lease path (it opens keys, so
 * it comes from lib/wiring-secrets.ts), the table's idempotency records and job pins, the
 * provider over node:http (STABILITY_API_BASE_URL, checked), and the kept answers' store the
 * caller gives (the data dir locally, S3 on AWS). Its own module, so only what proxies bundles
 * it.
 */
import { NodeProviderHttp } from './adapters/provider-http.js';
import { ConfigError, readProviderBaseUrl } from './config.js';
import { auditProxied } from './observability/audit.js';
import { metrics } from './observability/metrics.js';
import type { AnswerStore } from './ports/proxy.js';
import { Proxy } from './use-cases/proxy.js';
import { processTables } from './wiring.js';
import { bucketAnswerStore, localAnswerStore, tableProxyStores } from './wiring-proxy-stores.js';
import { processLeasing } from './wiring-secrets.js';

/** The proxy use case over the process's stores, keeping answers in `answers`; each call audited and measured. */
export function proxyUseCase(answers: AnswerStore, env: NodeJS.ProcessEnv = process.env): Proxy {
  const { config, leases, directory } = processTables();
  const stores = tableProxyStores(config, leases.client);
  const base = readProviderBaseUrl(env);
  return new Proxy({
    leasing: processLeasing(),
    pools: directory,
    provider: new NodeProviderHttp(),
    providerBaseUrl: () => base,
    idempotency: stores.idempotency,
    answers,
    jobs: stores.jobs,
    onCall: (call) => auditProxied(call, metrics),
  });
}

let localProxyOnce: Promise<Proxy> | undefined;
/** The local stack's proxy (`npm start`): answers kept in the data dir, encrypted under a key derived from the sealing key. */
export function processLocalProxy(): Promise<Proxy> {
  return (localProxyOnce ??= localAnswerStore().then((answers) => proxyUseCase(answers)));
}

/** Where the proxy function keeps answers on AWS: the answers bucket the stateful stack makes. */
export const ANSWERS_BUCKET_VARIABLE = 'KEYPOOL_ANSWERS_BUCKET';

let processProxyOnce: Proxy | undefined;
/** The proxy function's use case (AWS): answers kept in the answers bucket (KEYPOOL_ANSWERS_BUCKET). */
export function processProxy(env: NodeJS.ProcessEnv = process.env): Proxy {
  return (processProxyOnce ??= (() => {
    const bucket = env[ANSWERS_BUCKET_VARIABLE];
    if (!bucket) throw new ConfigError(`${ANSWERS_BUCKET_VARIABLE} is not set: the proxy function keeps answers there`);
    return proxyUseCase(bucketAnswerStore(bucket), env);
  })());
}
