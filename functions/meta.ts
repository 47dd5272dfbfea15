/** GET /health, GET /openapi.json, and the answer to every request no route matches. */
import { httpFunction, ok } from '../lib/http/function.js';
import { openApiDocument } from '../lib/http/openapi.js';

export const handler = httpFunction({
  'GET /health': () => Promise.resolve(ok({ status: 'ok' })),
  'GET /openapi.json': () => Promise.resolve(ok(openApiDocument())),
});
