/** The routes that count uses: POST /pools/{pool}/leases/{leaseId}/complete and POST /pools/{pool}/keys/{keyId}/usage. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { auditCompletion, auditUsage } from '../lib/observability/audit.js';
import { countCompletion } from '../lib/observability/keypool-metrics.js';
import { metrics } from '../lib/observability/metrics.js';
import { processCounting } from '../lib/wiring.js';

export const handler = httpHandler({
  'POST /pools/{pool}/leases/{leaseId}/complete': async ({ params, body, caller }) => {
    const outcome = body.outcome ?? 'success';
    // A caller's report is a client's hypothesis, budgeted per caller: nothing a caller sends
    // makes it the provider's.
    const result = await processCounting().complete(params.pool, params.leaseId, body, { by: 'client', caller });
    auditCompletion(params.pool, outcome, result, caller);
    countCompletion(metrics, params.pool, outcome);
    return ok(result);
  },
  'POST /pools/{pool}/keys/{keyId}/usage': async ({ params, caller }) => {
    const result = await processCounting().increment(params.pool, params.keyId, caller);
    auditUsage(params.pool, result, caller);
    return ok(result);
  },
});
