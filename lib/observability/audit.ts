/**
 * The audit trail: one log line per lease granted and per lease completed (and per lease-less
 * count), saying who — the IAM identity API Gateway authorized — got or reported which key of
 * which pool, and when (the line's timestamp). Never the secret, nor the lease id (a lease id
 * lets its holder complete the lease).
 */
import type { CompletionResult, LeaseGrant, Outcome } from '../domain/types.js';
import { logger } from './logger.js';

/** What the audit says when API Gateway authorized nobody (the local server). */
const UNAUTHENTICATED = 'unauthenticated';

/** A lease was granted to `caller`. */
export function auditGrant(grant: LeaseGrant, caller: string | undefined): void {
  logger.info('audit', {
    audit: 'lease',
    pool: grant.pool,
    keyId: grant.keyId,
    usageCount: grant.usageCount,
    expiresAt: grant.expiresAt,
    caller: caller ?? UNAUTHENTICATED,
  });
}

/** `caller` reported how a lease of `pool` went. */
export function auditCompletion(
  pool: string,
  outcome: Outcome,
  result: CompletionResult,
  caller: string | undefined,
): void {
  logger.info('audit', {
    audit: 'complete',
    pool,
    keyId: result.keyId,
    outcome,
    usageCount: result.usageCount,
    status: result.status,
    caller: caller ?? UNAUTHENTICATED,
  });
}

/** `caller` counted a use of a key of `pool` without a lease. */
export function auditUsage(
  pool: string,
  result: { keyId: string; usageCount: number },
  caller: string | undefined,
): void {
  logger.info('audit', {
    audit: 'usage',
    pool,
    keyId: result.keyId,
    usageCount: result.usageCount,
    caller: caller ?? UNAUTHENTICATED,
  });
}
