/**
 * Proxy mode's use case, built from configuration: the process's lease path (it opens keys, so
 * it comes from lib/wiring-secrets.ts), the table's idempotency records and job pins, the
 * provider over node:http (STABILITY_API_BASE_URL, checked), and the kept answers' store the
 * caller gives (the data dir locally, S3 on AWS). Its own module, so only what proxies bundles
 * it.
 */
import { NodeProviderHttp } from './adapters/provider-http.js';
import { ConfigError, readProviderBaseUrl } from './config.js';
import { ANSWERS_BUCKET_ENV } from './domain/proxy-names.js';
import { auditProxied } from './observability/audit.js';
import { proxyRefusalMetrics } from './observability/keypool-metrics.js';
import { metrics } from './observability/metrics.js';
import type { AnswerStore } from './ports/proxy.js';
import type { ProxyHandle } from './ports/proxy-call.js';
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

/** The use case's handle with its refusals counted as the lease route's (a dry pool pages through the same alarm). */
function countedHandle(proxy: Proxy): ProxyHandle {
  return proxyRefusalMetrics((call, sink) => proxy.handle(call, sink), metrics);
}

let localProxyOnce: Promise<ProxyHandle> | undefined;
/**
 * The local stack's proxy handle (`npm start`): answers kept in the data dir, encrypted under a
 * key derived from the sealing key; refusals counted as the proxy function counts them.
 */
export function processLocalProxy(): Promise<ProxyHandle> {
  return (localProxyOnce ??= localAnswerStore().then((answers) => countedHandle(proxyUseCase(answers))));
}

let processProxyOnce: ProxyHandle | undefined;
/**
 * The proxy function's handle (AWS, functions/proxy.ts): the use case keeping answers in the
 * bucket the stack names in KEYPOOL_ANSWERS_BUCKET, its refusals counted. Built on first use,
 * once per container.
 */
export function processProxy(env: NodeJS.ProcessEnv = process.env): ProxyHandle {
  return (processProxyOnce ??= (() => {
    const bucket = env[ANSWERS_BUCKET_ENV];
    if (!bucket)
      throw new ConfigError(
        `${ANSWERS_BUCKET_ENV} is not set: proxy mode keeps answers for an Idempotency-Key replay in the bucket the stack names there`,
      );
    return countedHandle(proxyUseCase(bucketAnswerStore(bucket, env), env));
  })());
}
