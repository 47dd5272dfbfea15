/**
 * What the CDK app and the proxy's wiring must agree on: the variable that names the bucket
 * where proxied answers are kept for an Idempotency-Key replay (set by the stack on the proxy
 * function, read by lib/wiring-proxy.ts).
 */
export const ANSWERS_BUCKET_ENV = 'KEYPOOL_ANSWERS_BUCKET';

/** Where in the answers bucket keypool writes: every kept answer's object name starts here. */
export const ANSWERS_PREFIX = 'answers/';
