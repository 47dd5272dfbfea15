/**
 * Domain errors, one small class each. Messages never contain a secret; the HTTP layer maps
 * each `code` to a status once (lib/http/errors.ts).
 */
import { KEY_ID_PATTERN } from './keys.js';
import { LEASE_ID_PATTERN } from './lease-id.js';
import { redact } from '../shared/redact.js';

export abstract class KeypoolError extends Error {
  abstract readonly code: string;
  override readonly name: string = this.constructor.name;
}

export class NoUsableKey extends KeypoolError {
  readonly code = 'no_usable_key';
  /** when some key of the pool is cooling: seconds until the first one rests no more */
  readonly retryAfterSeconds: number | undefined;
  constructor(pool: string, maxUses: number, retryAfterSeconds?: number) {
    super(
      `pool "${pool}" has no active key with usageCount <= ${maxUses}${retryAfterSeconds === undefined ? '' : `; a key comes back from its cooldown in ${retryAfterSeconds} s`}`,
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

/**
 * An id is echoed only when it has the shape of a keypool id: a caller who sends a secret
 * where an id belongs must not see it (or a log line) repeat it.
 */
const shown = (id: string): string =>
  KEY_ID_PATTERN.test(id) || LEASE_ID_PATTERN.test(id) ? `"${id}"` : '(not a keypool id)';

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
  constructor(
    /** throttled: DynamoDB's capacity; conflict: concurrent transactions on the same items */
    readonly reason: 'throttled' | 'conflict',
    /** the DynamoDB error or cancellation reason (a name, never a message) */
    readonly dynamoCode: string,
  ) {
    super(
      `the key table is busy (${reason === 'throttled' ? 'throttled' : 'concurrent transactions'}: ${dynamoCode}); retry after ${STORE_RETRY_AFTER_SECONDS} s`,
    );
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
