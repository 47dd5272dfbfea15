/** The operator's key routes: POST /pools/{pool}/keys (import) and PATCH /pools/{pool}/keys/{keyId} (status, count). */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processKeyAdmin } from '../lib/wiring.js';
import { processKeyImport } from '../lib/wiring-secrets.js';

export const handler = httpHandler({
  'POST /pools/{pool}/keys': async ({ params, body }) =>
    ok(await processKeyImport().importKeys(params.pool, body.keys), 201),
  'PATCH /pools/{pool}/keys/{keyId}': async ({ params, body }) =>
    ok(await processKeyAdmin().update(params.pool, params.keyId, body)),
});
