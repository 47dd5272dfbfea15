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

/** A multipart body's boundary, from its content type. */
const BOUNDARY = /^multipart\/[a-z-]+\s*;.*?\bboundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i;

/**
 * The body with every occurrence of its multipart boundary replaced by one fixed token: a
 * client that encodes the same form again (fetch does, with a new random boundary) sends the
 * same request.
 */
function withoutBoundary(body: Uint8Array, boundary: string): Buffer[] {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const needle = Buffer.from(boundary, 'latin1');
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = bytes.indexOf(needle, from); at >= 0; at = bytes.indexOf(needle, from)) {
    parts.push(bytes.subarray(from, at), Buffer.from('\u0000boundary\u0000'));
    from = at + needle.length;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

/**
 * A digest of what a proxied request asks the provider for: method, provider path, query, the
 * forwarded headers and the body, a multipart boundary aside (and with it the length). The same
 * Idempotency-Key with another request is refused.
 */
export function proxyRequestHash(request: {
  method: string;
  path: string;
  query: string;
  headers: Readonly<Record<string, string>>;
  body?: Uint8Array;
}): string {
  const hash = createHash('sha256');
  const type = request.headers['content-type'] ?? '';
  const match = BOUNDARY.exec(type);
  const boundary = match?.[1] ?? match?.[2];
  const headers = Object.entries({
    ...request.headers,
    'content-type': boundary === undefined ? type : type.replace(boundary, ''),
    'content-length': '',
  }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  hash.update(JSON.stringify([request.method, request.path, request.query, headers]), 'utf8');
  if (request.body) {
    for (const part of boundary === undefined ? [request.body] : withoutBoundary(request.body, boundary))
      hash.update(part);
  }
  return hash.digest('hex').slice(0, 32);
}
