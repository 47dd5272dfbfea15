/** GET /health, GET /openapi.json, and the answer to every request no route matches. */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { openApiDocument } from '../lib/http/openapi.js';
import { unmatchedRoute } from '../lib/http/unmatched.js';

export const handler = httpHandler(
  {
    'GET /health': () => Promise.resolve(ok({ status: 'ok' })),
    'GET /openapi.json': () => Promise.resolve(ok(openApiDocument())),
  },
  { unmatched: unmatchedRoute },
);
