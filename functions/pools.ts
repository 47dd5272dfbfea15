/** The operator's pool routes: GET /pools, PUT /pools/{pool}, GET /pools/{pool}. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { processPoolAdmin } from '../lib/wiring.js';

export const handler = httpHandler({
  'GET /pools': async () => ok({ pools: await processPoolAdmin().list() }),
  'PUT /pools/{pool}': async ({ params, body }) => ok(await processPoolAdmin().set(params.pool, body)),
  'GET /pools/{pool}': async ({ params }) => ok(await processPoolAdmin().get(params.pool)),
});
