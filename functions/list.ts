/** GET /keys: one page of keys, secrets masked. */
import { broker } from '../lib/commons.js';
import { httpFunction, ok } from '../lib/http/function.js';

export const handler = httpFunction({
  'GET /keys': async ({ query }) => ok(await broker().list(query)),
});
