/**
 * Idempotent leases: a caller that retries `POST .../leases` with the same Idempotency-Key
 * while the first lease stands gets that same lease, and one use is counted. The key is never
 * stored as sent: only a digest of it (bound to the pool) names the record, and the record
 * holds the lease's id, key id and expiry and a digest of the caller — never the secret,
 * which a replay reads from the key itself, and only while the lease still stands
 * (replayRefusal).
 */
import { createHash } from 'node:crypto';
import { parseLeaseId } from './lease-id.js';
import { effectiveStatus } from './rules.js';
import type { LeaseRequest, StoredKey } from './types.js';

/** Who a request without an authenticated identity (the local server, the CLI) is. */
export const UNAUTHENTICATED_CALLER = 'unauthenticated';

/**
 * A digest of a caller's identity (the IAM identity API Gateway authorized; none locally):
 * what an idempotency record is bound to and a report budget is counted per, without keeping
 * the identity itself in the table.
 */
export function callerDigest(caller: string | undefined): string {
  return createHash('sha256')
    .update(`caller\n${caller ?? UNAUTHENTICATED_CALLER}`, 'utf8')
    .digest('hex')
    .slice(0, 32);
}

/** The record's id: a digest of the pool and the caller's Idempotency-Key. */
export function idempotencyId(pool: string, idempotencyKey: string): string {
  return createHash('sha256').update(`${pool}\n${idempotencyKey}`, 'utf8').digest('hex');
}

/** A digest of what a lease asked for: a key reused for another request is refused, not replayed. */
export function leaseRequestHash(request: LeaseRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([request.maxUses ?? null, request.ttlSeconds ?? null]), 'utf8')
    .digest('hex')
    .slice(0, 32);
}

/**
 * Why a live record's lease cannot be answered again, or undefined when it still stands: its
 * key is still in `pool` with a leasable status, and its slot still holds the lease, open and
 * in time. The count is not checked: the lease already holds its use.
 */
export function replayRefusal(
  key: Pick<StoredKey, 'pool' | 'status' | 'cooldownUntil' | 'slots'> | undefined,
  leaseId: string,
  pool: string,
  nowMs: number,
): string | undefined {
  const ref = parseLeaseId(leaseId);
  if (!key || !ref) return 'its key is gone';
  if (key.pool !== pool) return 'its key is not in this pool';
  const slot = key.slots[String(ref.slot)];
  if (slot?.nonce !== ref.nonce) return 'its lease was ended (the key was reset)';
  if (slot.outcome !== undefined) return `its lease was completed (${slot.outcome})`;
  if (slot.expiresAtMs < nowMs) return 'its lease expired';
  const status = effectiveStatus(key, nowMs);
  return status === 'active' ? undefined : `its key is ${status} now`;
}
