/**
 * Lease ids lead straight to the key's item: `<keyId>.<slot>.<expiry base36>.<nonce>`.
 * Completing a lease is then one conditional UpdateItem on that item, with no lookup.
 *
 * A key's item holds LEASE_SLOTS lease slots (map `L`); a lease occupies one slot from its
 * grant until it is completed or expires, so a key has at most LEASE_SLOTS open leases.
 */
import { randomBytes } from 'node:crypto';
import { KEY_ID_SOURCE } from './keys.js';

export const LEASE_SLOTS = 8;

export interface LeaseRef {
  keyId: string;
  slot: number;
  expiresAtMs: number;
  nonce: string;
}

/** `<keyId>.<slot>.<expiry base36>.<nonce>`; LEASE_ID_PATTERN matches a whole lease id. */
export const LEASE_ID_PATTERN = new RegExp(`^(${KEY_ID_SOURCE})\\.([0-9])\\.([0-9a-z]{1,11})\\.([0-9a-f]{16})$`);

export function newNonce(): string {
  return randomBytes(8).toString('hex');
}

export function formatLeaseId(ref: LeaseRef): string {
  return `${ref.keyId}.${ref.slot}.${ref.expiresAtMs.toString(36)}.${ref.nonce}`;
}

/** Parses a lease id; undefined for anything that is not one (callers answer lease_not_found). */
export function parseLeaseId(leaseId: string): LeaseRef | undefined {
  const match = LEASE_ID_PATTERN.exec(leaseId);
  if (!match) return undefined;
  const [, keyId, slot, exp, nonce] = match;
  if (keyId === undefined || slot === undefined || exp === undefined || nonce === undefined) return undefined;
  const slotNumber = Number(slot);
  const expiresAtMs = parseInt(exp, 36);
  if (slotNumber >= LEASE_SLOTS || !Number.isSafeInteger(expiresAtMs)) return undefined;
  return { keyId, slot: slotNumber, expiresAtMs, nonce };
}
