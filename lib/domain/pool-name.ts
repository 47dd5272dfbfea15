/**
 * A pool name's shape, as a bare RegExp in a module without zod: the edges' schema
 * (primitives.ts PoolName) and the sealer's error messages (errors.ts SecretUndecryptable) test
 * the same pattern, and the sealer is bundled where zod is not wanted.
 */

/**
 * A whole pool name: 1-64 letters, digits, "_", "." or "-", but not "." or "..": the name is a
 * path segment (`/pools/{pool}`), and every URL parser resolves those two away, so no route, no
 * client and no console link could reach such a pool (the clients refuse them too).
 */
export const POOL_NAME_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/;

/** What POOL_NAME_PATTERN asks for, in words (the clients' RangeError and ValueError say the same). */
export const POOL_NAME_RULE = '1-64 letters, digits, "_", "." or "-" (not "." or "..")';

/**
 * The two names POOL_NAME_PATTERN refuses that an older version's CLI still created. A pool so
 * named is reached by one command only, `keypool pool delete` (straight to the table, as no
 * URL can name it), so an operator can retire its keys and delete it; nothing creates one,
 * leases from one or adds keys to one.
 */
export const LEGACY_POOL_NAMES: readonly string[] = ['.', '..'];
