/**
 * The lease path's conditions and readings, apart from the requests that send them: the
 * effectively-active and report conditions (lib/domain/rules.ts as ConditionExpressions), what a
 * count of a pool's keys reads of each, and which cancelled transactions are load rather than an
 * answer, and the completion's write. Pure: no request is sent here.
 */
import type { CountedKey } from '../domain/dry-pool.js';
import type { TableBusy } from '../domain/errors.js';
import { refundsUse } from '../domain/rules.js';
import type { KeyStatus } from '../domain/types.js';
import { TABLE } from '../table.js';
import type { CompletionAttempt } from '../ports/lease-store.js';
import { keyWrite, refundSortKey, reportClauses, slotOfNonce } from './dynamo-key-table.js';
import type { Busy, ConditionalWrite } from './dynamo-table.js';
import { isDynamoError } from './dynamo-wire.js';
import { type Item, projection } from './key-item.js';

const { partitionKey: KEY } = TABLE;

/** What a count of a pool's keys reads of each (lib/domain/dry-pool.ts): never the secret. */
export const STATE_PROJECTION = projection([KEY, 'pool', 'status', 'usageCount', 'cooldownUntil']);

/** A key's state as a count reads it; undefined for an item that is not a key. */
export function toKeyState(item: Item): (CountedKey & { keyId: string; pool: string }) | undefined {
  if (typeof item[KEY] !== 'string' || typeof item.pool !== 'string') return undefined;
  return {
    keyId: item[KEY],
    pool: item.pool,
    status: item.status as KeyStatus,
    usageCount: Number(item.usageCount),
    ...(typeof item.cooldownUntil === 'number' ? { cooldownUntil: item.cooldownUntil } : {}),
  };
}

export const CONDITION_FAILED = 'ConditionalCheckFailed';
/** Cancellation reasons that refuse a transaction for load, not for its conditions: it may be sent again. */
const BUSY_REASONS: Readonly<Record<string, TableBusy['reason']>> = {
  TransactionConflict: 'conflict',
  ThrottlingError: 'throttled',
  ProvisionedThroughputExceeded: 'throttled',
  RequestLimitExceeded: 'throttled',
};

/**
 * A transaction cancelled only for load: no condition failed, and some item met a conflict or
 * throttling. A cancellation that also carries a failed condition is an answer (nothing to retry).
 */
export function busyTransaction(error: unknown): Busy {
  if (!isDynamoError(error, 'TransactionCanceledException')) return undefined;
  const codes = (error.CancellationReasons ?? []).map((reason) => reason.Code ?? '');
  if (codes.includes(CONDITION_FAILED)) return undefined;
  const dynamoCode = codes.find((code) => BUSY_REASONS[code] !== undefined);
  return dynamoCode === undefined ? undefined : { reason: BUSY_REASONS[dynamoCode] ?? 'conflict', dynamoCode };
}

/**
 * The completion's write: closes the lease's own open slot under its key's pool, refunds the use
 * for an outcome that gives it back (moving the key's usage sort key with it) and applies a
 * report's change where reportApplies allows it. `proxied`: the refund of a proxied use
 * (LeaseStore.refundProxied): the slot holds the PROXIED mark instead of being open, and has no
 * expiry condition (a late refund of a slot nobody took since still applies).
 */
export function completionWrite(attempt: CompletionAttempt, moveTier: boolean, proxied = false): ConditionalWrite {
  // The count and the status are always written (to themselves when nothing changes), so the
  // answer comes from UPDATED_NEW: the usage path never gets the sealed secret back.
  const refund = refundsUse(attempt.outcome);
  const set = ['L.#slot.o = :outcome', 'usageCount = usageCount - :refund'];
  const remove: string[] = [];
  const names: Record<string, string> = { '#slot': String(attempt.slot), '#pool': 'pool', '#status': 'status' };
  const values: Item = {
    ':nonce': attempt.nonce,
    ':outcome': attempt.outcome,
    ':pool': attempt.pool,
    ':refund': refund ? 1 : 0,
  };
  // The expiry and a report's condition read the time; a proxied refund without a change reads none.
  if (!proxied || attempt.change) values[':now'] = attempt.nowMs;
  // Invariants:
  //  - a key belongs to one pool: a lease is completed only under its key's pool;
  //  - counting once: only the lease's own open slot can be completed, and completing it
  //    closes it, so a repeated completion changes nothing;
  //  - expiry, judged from the stored slot (never from the lease id the caller sends): past
  //    it, the use stays counted and the slot is free for the next lease;
  //  - a proxied use is given back once, only while its slot still holds its nonce and mark
  //    (a slot leased again since refuses: the use stays counted).
  let condition = `#pool = :pool AND ${slotOfNonce(proxied, values)}${proxied ? '' : ' AND L.#slot.e >= :now'}`;
  if (refund) {
    const sortKey = refundSortKey(moveTier, names, values);
    set.push(...sortKey.set);
    condition += sortKey.condition;
  }
  const change = attempt.change;
  if (change) {
    condition += ` AND ${reportClauses(change, { set, remove, names, values })}`;
  } else {
    set.push('#status = #status');
  }
  return keyWrite(attempt.keyId, { set, remove, condition, names, values });
}
