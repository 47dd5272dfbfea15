/** The routes that count uses: POST /leases/{leaseId}/complete and POST /keys/{keyId}/usage. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processLeasing } from '../lib/wiring.js';

export const handler = httpHandler({
  'POST /leases/{leaseId}/complete': async ({ params, body }) => ok(await processLeasing().complete(params.leaseId, body.outcome)),
  'POST /keys/{keyId}/usage': async ({ params }) => ok(await processLeasing().increment(params.keyId)),
});
