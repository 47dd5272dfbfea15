/** GET /keys: one page of keys, secrets masked. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processKeyAdmin } from '../lib/wiring.js';

export const handler = httpHandler({
  'GET /keys': async ({ query }) => ok(await processKeyAdmin().list(query)),
});
