/** GET /pools/{pool}/keys: one page of the pool's keys, secrets masked. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processKeyAdmin } from '../lib/wiring.js';

export const handler = httpHandler({
  'GET /pools/{pool}/keys': async ({ params, query }) => ok(await processKeyAdmin().list(params.pool, query)),
});
