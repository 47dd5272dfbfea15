/**
 * What the CDK app and the proxy's wiring must agree on: the variable that names the bucket
 * where proxied answers are kept for an Idempotency-Key replay (set by the stack on the proxy
 * function, read by lib/wiring-proxy.ts).
 */
export const ANSWERS_BUCKET_ENV = 'KEYPOOL_ANSWERS_BUCKET';

/** Where in the answers bucket keypool writes: every kept answer's object name starts here. */
export const ANSWERS_PREFIX = 'answers/';

/**
 * How long a proxied request's Idempotency-Key record, its kept answer and an async job's pin
 * live (issue 21: 24 h; the S3 bucket's lifecycle rounds it up to a day): one lifetime, so a
 * record never outlives the answer it replays.
 */
export const KEPT_MS = 24 * 60 * 60 * 1000;
