/** POST /leases: the least recently used usable key, its use reserved in the same write. */
import { broker } from '../lib/commons.js';
import { metrics } from '../lib/metrics.js';
import { httpFunction, ok } from '../lib/http/function.js';
import { countedLease } from '../lib/maintenance/pool-metrics.js';

export const handler = httpFunction({
  'POST /leases': async ({ body }) => ok(await countedLease(broker(), metrics, body)),
});
