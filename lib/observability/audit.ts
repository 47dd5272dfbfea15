/**
 * The audit trail: one log line per lease granted and per lease completed (and per lease-less
 * count), saying who — the IAM identity API Gateway authorized — got or reported which key of
 * which pool, and when (the line's timestamp). Never the secret, nor the lease id (a lease id
 * lets its holder complete the lease).
 */
import type { CompletionResult, LeaseGrant, Outcome } from '../domain/types.js';
import { logger } from './logger.js';
import type { MetricsSink } from './metrics.js';
import { PROXY_METRIC, PROXY_OUTCOME_METRIC } from './metric-names.js';

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

/** What a proxied call leaves for the audit and the metrics (lib/use-cases/proxy.ts ProxyAudit): never the key or a body. */
export interface ProxiedCall {
  pool: string;
  caller: string | undefined;
  keyId?: string;
  path: string;
  status: number;
  outcome: keyof typeof PROXY_OUTCOME_METRIC;
  attempts: number;
  failovers: readonly { keyId: string; status?: number; outcome: string }[];
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  providerMs: number;
  addedMs: number;
}

/**
 * A proxied call: its audit line (who, which pool and key, which provider path, how it went,
 * the bytes each way, how long) and its metrics under the pool (the outcome's count, the
 * provider's and keypool's latency, the bytes sent back).
 */
export function auditProxied(call: ProxiedCall, metrics: MetricsSink): void {
  // The path by segment: whole, a provider path (v2beta/stable-image/generate/core) is a run of
  // 32 token characters, which the logger's redaction masks as a possible credential.
  logger.info('audit', { audit: 'proxy', ...call, path: call.path.split('/'), caller: call.caller ?? UNAUTHENTICATED });
  metrics.publish(
    call.pool,
    {
      [PROXY_OUTCOME_METRIC[call.outcome]]: 1,
      [PROXY_METRIC.providerLatency]: call.providerMs,
      [PROXY_METRIC.addedLatency]: call.addedMs,
      [PROXY_METRIC.bytesOut]: call.bytesOut,
    },
    {
      [PROXY_METRIC.providerLatency]: 'Milliseconds',
      [PROXY_METRIC.addedLatency]: 'Milliseconds',
      [PROXY_METRIC.bytesOut]: 'Bytes',
    },
  );
}
