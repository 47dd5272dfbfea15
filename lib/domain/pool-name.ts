/**
 * A pool name's shape, as a bare RegExp in a module without zod: the edges' schema
 * (primitives.ts PoolName) and the sealer's error messages (errors.ts SecretUndecryptable) test
 * the same pattern, and the sealer is bundled where zod is not wanted.
 */

/** A whole pool name: 1-64 letters, digits, "_", "." or "-". */
export const POOL_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
