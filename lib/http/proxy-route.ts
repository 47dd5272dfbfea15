/**
 * Proxy mode's route: where it is served, and how its resources are named. It is not in
 * ROUTES (lib/http/routes.ts), which the HTTP API serves: a proxied answer streams, and an
 * HTTP API cannot (it buffers answers up to 6 MB and cuts a call at 30 s). On AWS the route is
 * a REST API of its own (infra/constructs/proxy-api.ts, docs/proxy-aws.md); locally it is
 * served beside the others by `npm start`. The OpenAPI document describes it from here.
 */

/** The route as API Gateway declares it: `{path+}` is the provider path, slashes included. */
export const PROXY_PATH = '/pools/{pool}/proxy/{path+}';

/** POST sends a generation; GET polls an async result (`v2beta/results/{id}`). */
export const PROXY_METHODS = ['POST', 'GET'] as const;
export type ProxyMethod = (typeof PROXY_METHODS)[number];

/**
 * The largest request body the proxy takes on AWS, in bytes. Lambda takes an event of at most
 * 6 MB (synchronous invocation); the REST API hands every body over base64-encoded (binary
 * media type `*` `/` `*`, so multipart arrives byte for byte), which makes 4 MiB of body about
 * 5.3 MiB of event, leaving room for the headers and request context. API Gateway's own 10 MB
 * bound is never the one that binds.
 */
export const AWS_PROXY_MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The SigV4 service a signed proxy request uses: the REST API is API Gateway, as the HTTP API
 * is (a function URL would sign for `lambda`).
 */
export const PROXY_SIGV4_SERVICE = 'execute-api';

/**
 * The resource path of one pool's proxy in an execute-api ARN: `/pools/<pool>/proxy/*`, the
 * trailing `*` standing for every provider path (an ARN's `*` crosses slashes). Without a pool,
 * every pool's (`/pools/*\/proxy/*`). Pool names hold no `/` (lib/domain/pool-name.ts), so one
 * pool's resource never reaches another's.
 */
export function proxyResourcePath(pool?: string): string {
  return `/pools/${pool ?? '*'}/proxy/*`;
}
