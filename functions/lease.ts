/** POST /pools/{pool}/leases: the least recently used usable key, its use reserved in the same write. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { auditGrant } from '../lib/observability/audit.js';
import { leaseMetrics } from '../lib/observability/keypool-metrics.js';
import { metrics } from '../lib/observability/metrics.js';
import { processLeasing } from '../lib/wiring-secrets.js';

export const handler = httpHandler(
  {
    'POST /pools/{pool}/leases': async ({ params, body, headers, caller }) => {
      const grant = await processLeasing().lease(params.pool, body, headers['idempotency-key'], caller);
      auditGrant(grant, caller);
      return ok(grant);
    },
  },
  // Grants and refusals are counted here at the edge, per pool.
  { middlewares: [leaseMetrics(metrics)] },
);
