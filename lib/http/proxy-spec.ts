/**
 * Proxy mode's route as the OpenAPI document describes it (for the document only, like
 * lib/http/responses.ts: no function bundles it). `{path+}` is written `{path}` there: the
 * provider path, slashes included. Served at its own base URL on AWS (the REST API,
 * docs/proxy-aws.md), signed for `execute-api` like the rest.
 */
import * as z from 'zod/mini';
import {
  AWS_PROXY_MAX_BODY_BYTES,
  PROXY_METHODS,
  PROXY_PATH,
  PROXY_SIGV4_SERVICE,
  type ProxyMethod,
} from './proxy-route.js';
import { answersOnly, LOCAL_REFUSALS, REFUSED_LOCALLY, type RouteResponses, SEALING_OR_STORE } from './responses.js';
import * as r from './response-schemas.js';
import { type DocumentedRouteSpec, LOCAL_SERVER, REGION_VARIABLE, type ServerSpec } from './routes.js';
import { LeaseHeaders } from './schemas.js';
import { PoolName } from '../domain/primitives.js';
import { MAX_PROXY_BODY_BYTES } from '../domain/proxy-body.js';
import { FORWARDED_REQUEST_HEADERS } from '../domain/proxy-headers.js';

/** Where proxy mode is served: its own REST API on AWS, the same local server as the rest. */
export const PROXY_SERVERS: readonly ServerSpec[] = [
  {
    url: 'https://{proxyApiId}.execute-api.{region}.amazonaws.com/{stage}',
    description:
      "Proxy mode on AWS: a REST API of its own that streams the provider's answer (the stateless stack's `ProxyUrl` output, the stage included; the client's `proxyUrl`). Signed with SigV4 for the service `execute-api` in the API's region; a keypool-client-<pool> policy allows that pool's proxy.",
    variables: {
      proxyApiId: { default: 'your-proxy-api-id', description: 'the REST API id (the first label of `ProxyUrl`)' },
      region: REGION_VARIABLE,
      stage: { default: 'prod', description: 'the keypool stage (`dev` or `prod`), the first segment of `ProxyUrl`' },
    },
    sigv4Service: PROXY_SIGV4_SERVICE,
  },
  LOCAL_SERVER,
];

/** Built on first use, as the other routes' schemas are (lib/http/schemas.ts). */
const ProxyParams = z.lazy(() =>
  z.strictObject({
    pool: PoolName,
    path: z
      .string()
      .check(
        z.minLength(1),
        z.describe(
          'the provider path, slashes included (e.g. `v2beta/stable-image/generate/core`); for Stability, under `v1/`, `v2beta/` or `v2alpha/`, never `v1/user/` (403 path_not_allowed)',
        ),
      ),
  }),
);

const SUMMARY: Record<ProxyMethod, string> = {
  POST: "Proxy mode: call the pool's provider at {path} with a key of the pool; its answer streams back",
  GET: 'Proxy mode: poll an async result (`v2beta/results/{id}`) with the key that started it; never counted',
};

const OPERATION_ID: Record<ProxyMethod, string> = { POST: 'proxyCall', GET: 'proxyPoll' };

/** The proxy route's specs, by route key. */
export const PROXY_ROUTES: Readonly<Record<string, DocumentedRouteSpec>> = Object.fromEntries(
  PROXY_METHODS.map((method): [string, DocumentedRouteSpec] => [
    `${method} ${PROXY_PATH}`,
    {
      method,
      path: PROXY_PATH,
      operationId: OPERATION_ID[method],
      function: 'proxy',
      access: 'client',
      summary: SUMMARY[method],
      params: ProxyParams,
      headers: LeaseHeaders,
      ...(method === 'POST'
        ? {
            rawBody: {
              description: `The provider's request body, passed through unchanged (multipart/form-data, JSON or bytes): at most ${AWS_PROXY_MAX_BODY_BYTES / 1024 / 1024} MiB on AWS, ${MAX_PROXY_BODY_BYTES / 1024 / 1024} MiB locally. Forwarded request headers: ${FORWARDED_REQUEST_HEADERS.join(', ')}; keypool adds the provider's authorization and drops every other header.`,
            },
          }
        : {}),
      servers: PROXY_SERVERS,
    },
  ]),
);

/** The headers a proxied answer carries: the provider's that pass through, and keypool's own. */
const PROXY_ANSWER_HEADERS: Record<string, string> = {
  'content-type': "the provider's",
  'finish-reason': "the provider's (Stability: SUCCESS, CONTENT_FILTERED)",
  seed: "the provider's",
  'x-request-id': "the provider's request id",
  'retry-after': "the provider's, on its 429",
  'x-keypool-key-id': 'the id of the key the provider was called with (never the key)',
  'x-keypool-attempts': 'how many keys were tried (failover, at most the pool proxyAttempts)',
  'x-keypool-outcome':
    'how keypool counted the call: success, failure, invalid_key, out_of_credits, rate_limited, provider_unavailable, unknown',
};

const PASSTHROUGH = { headers: PROXY_ANSWER_HEADERS };

/** What the proxy answers: the provider's answer passed through, or keypool's own refusal before any byte. */
export const PROXY_RESPONSES: Readonly<Record<string, RouteResponses>> = Object.fromEntries(
  PROXY_METHODS.map((method): [string, RouteResponses] => [
    `${method} ${PROXY_PATH}`,
    {
      200: {
        description:
          "The provider's answer, streamed as it arrives: its status (any 2xx), its headers of the list and its body (an image, JSON with a job id, bytes). A provider's refusal that the last attempt got comes back the same way with its own status.",
        passthrough: PASSTHROUGH,
      },
      ...answersOnly(
        400,
        ['invalid_request'],
        'invalid_request: a malformed Idempotency-Key, one already used for another request, a pool, path or query that is not text, or a forwarded header no HTTP header can carry',
      ),
      ...answersOnly(
        403,
        ['path_not_allowed', ...LOCAL_REFUSALS],
        `path_not_allowed: the provider path is not one keypool forwards (for Stability: outside v1/, v2beta/, v2alpha/, or under v1/user/). Or API Gateway refused the request: no valid SigV4 signature, or the caller's IAM policy does not allow this pool's proxy; its own answer, a message only. Also: ${REFUSED_LOCALLY}`,
      ),
      ...answersOnly(404, ['pool_not_found', 'job_not_found']),
      ...answersOnly(
        409,
        ['no_usable_key', 'idempotency_conflict', 'no_provider', 'request_in_progress'],
        'no_provider: the pool has provider none. no_usable_key: no key of the pool is under its cap (Retry-After when a cooling key comes back). request_in_progress: a request with this Idempotency-Key is still running (Retry-After). idempotency_conflict: this Idempotency-Key is another caller’s, or its request may have been billed with no answer kept to replay (a 2xx that could not be kept, or a call that went out and got no answer): not asked again.',
      ),
      ...answersOnly(
        413,
        ['payload_too_large'],
        `payload_too_large: the body is over ${AWS_PROXY_MAX_BODY_BYTES / 1024 / 1024} MiB on AWS (Lambda's 6 MB event, the body base64-encoded) or ${MAX_PROXY_BODY_BYTES / 1024 / 1024} MiB locally; refused before any key is used`,
      ),
      502: {
        description:
          "provider_failed: the provider gave no answer to pass on (the connection was reset after the request went out: the outcome is unknown and the use stays counted, `x-keypool-outcome: unknown`, never retried on another key; or an error status whose body broke off before it went out, its use given back; or no key's call could connect). Or the provider's own 502, passed through.",
        schema: r.ErrorResponse,
        codes: ['provider_failed'],
        passthrough: PASSTHROUGH,
      },
      504: {
        description:
          "provider_timeout: the provider did not answer within the pool's proxyTimeoutSeconds after the request went out: unknown and counted, as for 502. Or the provider's own 504, passed through.",
        schema: r.ErrorResponse,
        codes: ['provider_timeout'],
        passthrough: PASSTHROUGH,
      },
      // It opens the key's secret, and its lease and idempotency records are the table's.
      ...SEALING_OR_STORE,
    },
  ]),
);
