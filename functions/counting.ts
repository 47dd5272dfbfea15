/** The routes that count uses: POST /pools/{pool}/leases/{leaseId}/complete and POST /pools/{pool}/keys/{keyId}/usage. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processLeasing } from '../lib/wiring.js';

export const handler = httpHandler({
  'POST /pools/{pool}/leases/{leaseId}/complete': async ({ params, body }) => ok(await processLeasing().complete(params.pool, params.leaseId, body)),
  'POST /pools/{pool}/keys/{keyId}/usage': async ({ params }) => ok(await processLeasing().increment(params.pool, params.keyId)),
});
