/**
 * How large a request body proxy mode takes. The one local limit: the use case refuses past it
 * (its default), and the local server stops reading past it. On AWS a smaller one binds first
 * (lib/http/proxy-route.ts AWS_PROXY_MAX_BODY_BYTES: Lambda's 6 MB event, the body base64-encoded).
 */

/** The largest request body proxy mode takes by default, in bytes (10 MiB). */
export const MAX_PROXY_BODY_BYTES = 10 * 1024 * 1024;
