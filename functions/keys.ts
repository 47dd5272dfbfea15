/**
 * The operator's key routes: POST /pools/{pool}/keys (import), PATCH /pools/{pool}/keys/{keyId}
 * (status, count), and the retirements: DELETE /pools/{pool}/keys/{keyId}, DELETE /pools/{pool}.
 */
import { httpHandler, ok } from '../lib/http/http-handler.js';
import { ImportRequest } from '../lib/http/request-rules.js';
import { poolDeletionDeadline } from '../lib/use-cases/retirement.js';
import { processKeyAdmin, processRetirement } from '../lib/wiring.js';
import { processKeyImport } from '../lib/wiring-secrets.js';

export const handler = httpHandler(
  {
    'POST /pools/{pool}/keys': async ({ params, query, body }) =>
      ok(
        await processKeyImport().importKeys(params.pool, body.keys, {
          revive: query.revive === true,
          verify: query.verify === true,
        }),
        201,
      ),
    'PATCH /pools/{pool}/keys/{keyId}': async ({ params, body }) =>
      ok(await processKeyAdmin().update(params.pool, params.keyId, body)),
    'DELETE /pools/{pool}/keys/{keyId}': async ({ params }) =>
      ok(await processRetirement().retireKey(params.pool, params.keyId)),
    // Bounded so its answer comes within API Gateway's limit: 202 while keys remain to retire.
    'DELETE /pools/{pool}': async ({ params, query, remainingMs }) => {
      const deletion = await processRetirement().deletePool(params.pool, {
        retireKeys: query.retireKeys === true,
        deadlineMs: poolDeletionDeadline(Date.now(), remainingMs()),
      });
      return ok(deletion, deletion.deleted ? 200 : 202);
    },
  },
  // An import with verify is bounded so its answer comes within API Gateway's limit.
  { requestRules: { 'POST /pools/{pool}/keys': ImportRequest } },
);
