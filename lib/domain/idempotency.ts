/**
 * Idempotent leases: a caller that retries `POST .../leases` with the same Idempotency-Key
 * while the first lease lives gets that same lease, and one use is counted. The key is never
 * stored as sent: only a digest of it (bound to the pool) names the record, and the record
 * holds the lease's id, key id and expiry — never the secret, which a replay reads from the
 * key itself.
 */
import { createHash } from 'node:crypto';
import type { LeaseRequest } from './types.js';

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
