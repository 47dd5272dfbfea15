/** POST /leases: the least recently used usable key, its use reserved in the same write. */
import { broker } from '../lib/commons.js';
import { httpFunction, ok } from '../lib/http/function.js';

export const handler = httpFunction({
  'POST /leases': async ({ body }) => ok(await broker().lease(body)),
});
