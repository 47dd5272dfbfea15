/** The counting routes: POST /leases/{leaseId}/complete and POST /keys/{keyId}/usage. */
import { broker } from '../lib/commons.js';
import { httpFunction, ok } from '../lib/http/function.js';

export const handler = httpFunction({
  'POST /leases/{leaseId}/complete': async ({ params, body }) => ok(await broker().complete(params.leaseId, body.outcome)),
  'POST /keys/{keyId}/usage': async ({ params }) => ok(await broker().increment(params.keyId)),
});
