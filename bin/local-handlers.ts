/**
 * The Lambda entry points the local server answers with: the same modules API Gateway invokes
 * on AWS. Loaded after the environment is set, because each reads its configuration once.
 */
import type { FunctionName } from '../lib/http/routes.js';
import type { LambdaHandler } from '../lib/local/server.js';

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
