/** POST /keys (import) and PATCH /keys/{keyId} (operator status change). */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processKeyAdmin } from '../lib/wiring.js';

export const handler = httpHandler({
  'POST /keys': async ({ body }) => ok(await processKeyAdmin().importKeys(body.keys), 201),
  'PATCH /keys/{keyId}': async ({ params, body }) => ok(await processKeyAdmin().setStatus(params.keyId, body.status)),
});
