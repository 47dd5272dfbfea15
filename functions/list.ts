/** GET /pools/{pool}/keys: one page of the pool's keys, secrets masked; GET /pools/{pool}/accounts: its accounts. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processAccountsView, processKeyAdmin } from '../lib/wiring.js';

export const handler = httpHandler({
  'GET /pools/{pool}/keys': async ({ params, query }) => ok(await processKeyAdmin().list(params.pool, query)),
  'GET /pools/{pool}/accounts': async ({ params, query }) => ok(await processAccountsView().list(params.pool, query)),
});
