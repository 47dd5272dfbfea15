/** POST /pools/{pool}/leases: the least recently used usable key, its use reserved in the same write. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { auditGrant } from '../lib/observability/audit.js';
import { countedLease } from '../lib/observability/keypool-metrics.js';
import { logger } from '../lib/observability/logger.js';
import { metrics } from '../lib/observability/metrics.js';
import { type LeaseHooks, processLeasing } from '../lib/wiring-secrets.js';

/** Where the lease path reports keys it cannot hand out: error and warning lines with ids only, never a secret. */
const hooks: LeaseHooks = {
  onUndecryptable: (error) =>
    logger.error(
      'a key was taken out of its pool: its secret cannot be decrypted; run `keypool reseal` or import it again',
      { ...error.context, reason: error.reason, detail: error.message },
    ),
  onUnsealed: (key) => logger.warn('a key is stored unsealed and is not leased until `keypool reseal` seals it', key),
};

export const handler = httpHandler({
  'POST /pools/{pool}/leases': async ({ params, body, headers, caller }) => {
    const grant = await countedLease(processLeasing(hooks), metrics, params.pool, body, headers['idempotency-key']);
    auditGrant(grant, caller);
    return ok(grant);
  },
});
