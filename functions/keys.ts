/** POST /keys (import) and PATCH /keys/{keyId} (operator status change). */
import { broker } from '../lib/commons.js';
import { httpFunction, ok } from '../lib/http/function.js';

export const handler = httpFunction({
  'POST /keys': async ({ body }) => ok(await broker().importKeys(body.keys), 201),
  'PATCH /keys/{keyId}': async ({ params, body }) => ok(await broker().setStatus(params.keyId, body.status)),
});
