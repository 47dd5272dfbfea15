/**
 * Domain errors, one small class each. Messages never contain a secret; the HTTP layer maps
 * each `code` to a status once (lib/http/errors.ts).
 */
import { KEY_ID_PATTERN } from './keys.js';
import { LEASE_ID_PATTERN } from './lease-id.js';
import { POOL_NAME_PATTERN } from './pool-name.js';
import type { SealContext } from './types.js';
import { type DryPool, unusableText } from './dry-pool.js';
import { redact } from '../shared/redact.js';

export abstract class KeypoolError extends Error {
  abstract readonly code: string;
  override readonly name: string = this.constructor.name;
}

export class NoUsableKey extends KeypoolError {
  readonly code = 'no_usable_key';
  /** when some key of the pool is cooling: seconds until the first one rests no more */
  readonly retryAfterSeconds: number | undefined;
  /** the pool's keys a lease could not use, by why, when they were counted (absent: the count could not be read, or was not there within the wait) */
  readonly dry: DryPool | undefined;
  constructor(pool: string, maxUses: number, retryAfterSeconds?: number, dry?: DryPool) {
    const comesBack =
      retryAfterSeconds === undefined ? '' : `; a key comes back from its cooldown in ${retryAfterSeconds} s`;
    const why = dry === undefined ? '' : `; not usable: ${unusableText(dry.unusable)} (counted at ${dry.countedAt})`;
    super(
      `pool "${pool}" has no active key with usageCount <= ${maxUses}${comesBack}${why}; \`keypool status\` shows the pool's keys by status`,
    );
    this.retryAfterSeconds = retryAfterSeconds;
    this.dry = dry;
  }
}

/**
 * A proxy request to a pool with no provider (`provider: none`): keypool has nobody to call
 * with its keys; leases still work.
 */
export class NoProvider extends KeypoolError {
  readonly code = 'no_provider';
  constructor(pool: string) {
    super(
      `pool "${redact(pool)}" has no provider (provider: none): nothing to proxy to; set one with keypool pool set --provider`,
    );
  }
}

/**
 * A proxy path outside what the pool's provider allows (for Stability: under v1/, v2beta/ or
 * v2alpha/, never the account and balance endpoints under v1/user/). Nothing was leased.
 */
export class PathNotAllowed extends KeypoolError {
  readonly code = 'path_not_allowed';
  constructor(allowed: string) {
    super(`this provider path is not proxied; allowed: ${allowed}`);
  }
}

/** A job id keypool did not start in this pool (or whose pin expired after 24 h): nothing to poll. */
export class JobNotFound extends KeypoolError {
  readonly code = 'job_not_found';
  constructor(pool: string) {
    super(`no job with this id was started through pool "${redact(pool)}" in the last 24 h`);
  }
}

/**
 * A proxy request under an Idempotency-Key whose first request is still running: nothing was
 * called; retry after retryAfterSeconds to get its answer replayed.
 */
export class RequestInProgress extends KeypoolError {
  readonly code = 'request_in_progress';
  constructor(readonly retryAfterSeconds: number) {
    super(`a request with this Idempotency-Key is still running; retry after ${retryAfterSeconds} s`);
  }
}

/** A request body over the limit of the route (refused before any key is leased). */
export class PayloadTooLarge extends KeypoolError {
  readonly code = 'payload_too_large';
  constructor(limit: number) {
    super(`the request body is over ${limit / 1024} KB`);
  }
}

/** A pool that still holds keys not retired: deleting it asks for them to be retired too. */
export class PoolNotEmpty extends KeypoolError {
  readonly code = 'pool_not_empty';
  constructor(pool: string, keys: number) {
    super(
      `pool "${redact(pool)}" still holds ${keys}${keys >= MAX_COUNTED_KEYS ? ' or more' : ''} key(s) that are not retired; retire them first, or delete with retireKeys=true (keypool pool delete --retire-keys)`,
    );
  }
}

/**
 * A key still stored in plain text (written before sealing) cannot be retired: the write that
 * retires a key removes its ciphertext, and no function may name the plain attribute.
 * `keypool reseal` seals it; then it can be retired.
 */
export class KeyNotSealed extends KeypoolError {
  readonly code = 'key_not_sealed';
  constructor(keyIds: readonly string[]) {
    const shownIds = keyIds.slice(0, 5).map(shown).join(', ');
    super(
      `key(s) ${shownIds}${keyIds.length > 5 ? ` and ${keyIds.length - 5} more` : ''} are stored in plain text (from before sealing) and cannot be retired yet: run \`keypool reseal\`, then retire again`,
    );
  }
}

/** How many keys a refused pool delete counts before it stops (the message says "or more"). */
export const MAX_COUNTED_KEYS = 1000;

/**
 * A caller past its report budget (the pool's maxClientReportsPerMinute): its lease-less count
 * is refused, nothing counted, until the next minute.
 */
export class ReportBudgetExceeded extends KeypoolError {
  readonly code = 'report_budget_exceeded';
  /** seconds until the next minute, when the budget is whole again */
  readonly retryAfterSeconds: number;
  constructor(pool: string, maxPerMinute: number, retryAfterSeconds: number) {
    super(
      `this caller made more than ${maxPerMinute} negative reports and lease-less counts in pool "${redact(pool)}" this minute; nothing was counted, try again in ${retryAfterSeconds} s`,
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class PoolNotFound extends KeypoolError {
  readonly code = 'pool_not_found';
  readonly pool: string;
  constructor(pool: string) {
    // A pool name passes the edge's pattern, but so does many a secret pasted in its place:
    // the name is echoed through redact(), like every other text a caller sent.
    const shownPool = redact(pool);
    super(
      `no pool "${shownPool}"; an operator creates it (PUT /pools/{pool}, keypool pool set) or imports keys into it`,
    );
    this.pool = shownPool;
  }
}

// Key ids and pool names are public, but a caller could pass a secret where one belongs: an id
// or a name is echoed (in a message or a log line) only when it has the shape of one.
const NOT_AN_ID = '(not a keypool id)';
const NOT_A_POOL = '(not a pool name)';
const shown = (id: string): string => (KEY_ID_PATTERN.test(id) || LEASE_ID_PATTERN.test(id) ? `"${id}"` : NOT_AN_ID);
const shownKeyId = (keyId: string): string => (KEY_ID_PATTERN.test(keyId) ? keyId : NOT_AN_ID);
const shownPool = (pool: string): string => (POOL_NAME_PATTERN.test(pool) ? pool : NOT_A_POOL);
/** A shown id or name in quotes; its placeholder as it is. */
const quotedOr = (shownValue: string, placeholder: string): string =>
  shownValue === placeholder ? shownValue : `"${shownValue}"`;

export class KeyNotFound extends KeypoolError {
  readonly code = 'key_not_found';
  constructor(keyId: string) {
    super(`no key with id ${shown(keyId)}`);
  }
}

export class LeaseNotFound extends KeypoolError {
  readonly code = 'lease_not_found';
  constructor(leaseId: string) {
    super(`no open or recently completed lease ${shown(leaseId)}`);
  }
}

export class LeaseExpired extends KeypoolError {
  readonly code = 'lease_expired';
  constructor(leaseId: string, expiresAt: string) {
    super(`lease "${leaseId}" expired at ${expiresAt}; its use stays counted`);
  }
}

/**
 * The Retry-After of a store_throttled answer. DynamoDB's throttling and transaction conflicts
 * clear within a second or so, and the SDK and the store have already retried with backoff: a
 * longer wait would only idle a caller the table can serve again.
 */
export const STORE_RETRY_AFTER_SECONDS = 1;

/** Why the table refused a request for load rather than for its condition. */
export interface TableBusy {
  /** throttled: DynamoDB's capacity; conflict: concurrent transactions on the same items */
  reason: 'throttled' | 'conflict';
  /** the DynamoDB error or cancellation reason (a name, never a message) */
  dynamoCode: string;
}

/**
 * The table refused a request under load and bounded retries did not get it through: throttled
 * past the SDK's retries, or in conflict with concurrent transactions past the store's. It says
 * nothing about the pool or its keys (it is never a dry pool); the caller waits
 * retryAfterSeconds and tries again.
 */
export class StoreThrottled extends KeypoolError {
  readonly code = 'store_throttled';
  /** how long the caller should wait before trying again (the answer's Retry-After) */
  readonly retryAfterSeconds = STORE_RETRY_AFTER_SECONDS;
  constructor(readonly busy: TableBusy) {
    const why = busy.reason === 'throttled' ? 'throttled' : 'concurrent transactions';
    super(`the key table is busy (${why}: ${busy.dynamoCode}); retry after ${STORE_RETRY_AFTER_SECONDS} s`);
  }
}

/**
 * An Idempotency-Key whose lease (or proxied request) no longer stands, or not for this caller:
 * its replay is refused rather than answering a secret the lease no longer holds, or billing a
 * generation again. `why` says which, in a few words (never a secret); `what` names what the key
 * was used for, so a proxy caller is not told of a lease it never took.
 */
export class IdempotencyConflict extends KeypoolError {
  readonly code = 'idempotency_conflict';
  constructor(why: string, what: 'lease' | 'request' = 'lease') {
    const named = what === 'lease' ? 'a lease' : 'a proxied request';
    super(`this Idempotency-Key names ${named} that cannot be answered again: ${why}; use a new key for a new ${what}`);
  }
}

export class InvalidRequest extends KeypoolError {
  readonly code = 'invalid_request';
  constructor(
    message: string,
    readonly details: { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

/** Why a ciphertext could not be opened; never contains the secret or the ciphertext. */
export type UndecryptableReason =
  /** not a sealed message at all (bad base64, bad header, truncated) */
  | 'malformed'
  /** sealed with an algorithm suite this sealer does not write */
  | 'unexpected-algorithm'
  /** the header binds it to another pool or key id: it was copied from another item */
  | 'context-mismatch'
  /** a held wrapping key matched but authentication failed: tampered, or the key service refused the ciphertext */
  | 'authentication-failed';

/**
 * A stored ciphertext that cannot be opened, ever: the lease path must not hand this key out,
 * and the key is shown as `undecryptable` until resealed or re-imported. A verdict on the
 * ciphertext itself (malformed, another item's, or failing authentication under a wrapping key
 * this process holds); a message sealed under a key it does not hold is SealingMisconfigured.
 * The message names the key id and pool (both public) and the reason only.
 */
export class SecretUndecryptable extends KeypoolError {
  readonly code = 'secret_undecryptable';
  /** the item, as far as it has the shape of a key id and a pool name (else a placeholder) */
  readonly context: SealContext;
  constructor(
    context: SealContext,
    readonly reason: UndecryptableReason,
  ) {
    const keyId = shownKeyId(context.keyId);
    const pool = shownPool(context.pool);
    super(
      `the secret of key ${quotedOr(keyId, NOT_AN_ID)} in pool ${quotedOr(pool, NOT_A_POOL)} cannot be decrypted (${reason})`,
    );
    // Kept on the error for the caller (status, metric per pool), so filtered like the message.
    this.context = { keyId, pool };
  }
}

/**
 * The Retry-After of a sealing_unavailable answer. KMS throttling clears within seconds (the
 * SDK has already retried it); a key that is disabled or unreachable needs an operator, whom
 * the 5xx alarm calls: a short wait serves the first without hammering during the second.
 */
export const SEALING_RETRY_AFTER_SECONDS = 5;

/**
 * The wrapping-key service (KMS) failed for a reason that is not the ciphertext's fault:
 * throttled, unreachable, access denied, key disabled. Retry or alarm; a key must not be
 * marked undecryptable because of this. `causes` holds service error names only (no messages).
 */
export class SealingUnavailable extends KeypoolError {
  readonly code = 'sealing_unavailable';
  /** how long the caller should wait before trying again (the answer's Retry-After) */
  readonly retryAfterSeconds = SEALING_RETRY_AFTER_SECONDS;
  constructor(
    readonly operation: 'seal' | 'open',
    readonly causes: readonly string[],
  ) {
    super(`the wrapping-key service failed during ${operation}${causes.length ? ` (${causes.join(', ')})` : ''}`);
  }
}

/**
 * The Retry-After of a sealing_misconfigured answer: an operator has to change a setting (a key
 * file, a previous key ARN) and redeploy or restart, which takes minutes; a short wait would
 * only multiply the failing calls.
 */
export const SEALING_MISCONFIGURED_RETRY_AFTER_SECONDS = 60;

/** What a SealingMisconfigured is about: one key, or the first keys a run read (`keypool reseal`). */
export type MisconfiguredSubject = SealContext | { keysRead: number };

/**
 * A stored secret was sealed under a wrapping key this process does not hold: a wrong key file,
 * a data dir other than the stack's, a previous KMS key ARN dropped too early. A fault of this
 * process's configuration, never a verdict on the key: nothing is marked for it, a lease gives
 * its use back, and the key opens again once the key it was sealed under is configured (as
 * current or previous). Wrapping keys are named by identity only (a KMS key ARN, a local key's
 * `local-<16 hex>` fingerprint, the file a held key was read from), never by material.
 */
export class SealingMisconfigured extends KeypoolError {
  readonly code = 'sealing_misconfigured';
  /** how long the caller should wait before trying again (the answer's Retry-After) */
  readonly retryAfterSeconds = SEALING_MISCONFIGURED_RETRY_AFTER_SECONDS;
  /** the key, as far as it has the shape of a key id and a pool name; or how many keys a run read */
  readonly subject: MisconfiguredSubject;
  constructor(
    subject: MisconfiguredSubject,
    /** the wrapping keys the message names (ARN or `local-<16 hex>`) */
    readonly sealedUnder: readonly string[],
    /** the wrapping keys this process holds, current first (`key file <path> (local-…)`, or an ARN) */
    readonly held: readonly string[],
  ) {
    const run = 'keysRead' in subject;
    const what = run
      ? `none of the first ${subject.keysRead} sealed key(s) read opens: they were`
      : `the secret of key ${quotedOr(shownKeyId(subject.keyId), NOT_AN_ID)} in pool ${quotedOr(shownPool(subject.pool), NOT_A_POOL)} was`;
    super(
      `${what} sealed under ${sealedUnder.join(', ') || 'no wrapping key keypool knows'}, which this process does not hold (it holds ${held.join('; ') || 'none'}): a configuration fault, not the ${run ? "keys'" : "key's"}, so nothing was changed; configure the key ${run ? 'they were' : 'it was'} sealed under, as the current or a previous key`,
    );
    this.subject =
      'keysRead' in subject
        ? { keysRead: subject.keysRead }
        : { keyId: shownKeyId(subject.keyId), pool: shownPool(subject.pool) };
  }
}

/**
 * The source cannot be read or parsed at all (missing file, not an export, a broken JSON
 * array, a table that does not exist). Raised before the first write, so nothing is half done.
 */
export class UnreadableSource extends KeypoolError {
  readonly code = 'unreadable_source';
}

/** A key's count kept changing under the migration's conditional write more often than it retries. */
export class MigrationConflict extends KeypoolError {
  readonly code = 'migration_conflict';
  constructor(keyId: string) {
    super(
      `key ${keyId} changed under every one of the migration's attempts to raise its count; run the migration again`,
    );
  }
}
