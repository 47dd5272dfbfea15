/**
 * The Lambda entry points the local server answers with: the same modules API Gateway invokes
 * on AWS. Loaded after the environment is set, because each reads its configuration once.
 */
import type { FunctionName } from '../lib/http/routes.js';
import type { LambdaHandler } from '../lib/local/server.js';
import type { ProxyHandle } from '../lib/ports/proxy-call.js';

/** Loads every HTTP entry point in functions/, by the function name the route table uses. */
export async function loadHandlers(): Promise<Record<FunctionName, LambdaHandler>> {
  const [meta, pools, keys, list, lease, counting] = await Promise.all([
    import('../functions/meta.js'),
    import('../functions/pools.js'),
    import('../functions/keys.js'),
    import('../functions/list.js'),
    import('../functions/lease.js'),
    import('../functions/counting.js'),
  ]);
  return {
    meta: meta.handler,
    pools: pools.handler,
    keys: keys.handler,
    list: list.handler,
    lease: lease.handler,
    counting: counting.handler,
  };
}

/**
 * The proxy route's handle: proxy mode's use case (kept answers in the data dir, refusals
 * counted as on AWS), built on the route's first request, from the environment as it is then.
 */
export function loadProxy(): ProxyHandle {
  return async (call, sink) => {
    const { processLocalProxy } = await import('../lib/wiring-proxy.js');
    return (await processLocalProxy())(call, sink);
  };
}
