/**
 * Rules across a route's parsed query and body (`{ query, body }`), checked at the edge once each
 * is valid (HttpHandlerOptions.requestRules). Apart from ./schemas.ts, which every function
 * bundles: each rule is imported only by the function that serves its route.
 */
import * as z from 'zod/mini';
import { MAX_VERIFY_BATCH } from '../domain/primitives.js';

/**
 * An import's query and body together, once each is valid: with `verify=true` at most
 * MAX_VERIFY_BATCH keys, for each key may wait for the provider and the answer must come within
 * API Gateway's 29 s.
 */
export const ImportRequest = z.lazy(() =>
  z
    .object({ query: z.object({ verify: z.optional(z.boolean()) }), body: z.object({ keys: z.array(z.unknown()) }) })
    .check(
      z.refine((input) => input.query.verify !== true || input.body.keys.length <= MAX_VERIFY_BATCH, {
        error: `an import with verify=true takes at most ${MAX_VERIFY_BATCH} keys a request (each may wait for the provider); send the rest in further requests`,
        path: ['body', 'keys'],
      }),
    ),
);
