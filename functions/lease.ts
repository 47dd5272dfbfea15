/** POST /pools/{pool}/leases: the least recently used usable key, its use reserved in the same write. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { auditGrant } from '../lib/observability/audit.js';
import { countedLease } from '../lib/observability/keypool-metrics.js';
import { metrics } from '../lib/observability/metrics.js';
import { processLeasing } from '../lib/wiring.js';

export const handler = httpHandler({
  'POST /pools/{pool}/leases': async ({ params, body, headers, caller }) => {
    const grant = await countedLease(processLeasing(), metrics, params.pool, body, headers['idempotency-key']);
    auditGrant(grant, caller);
    return ok(grant);
  },
});
