/**
 * The composition root's part for proxy mode: the proxy use case over the lease path's stores,
 * the proxy's idempotency records and job pins, the answers bucket (KEYPOOL_ANSWERS_BUCKET) and
 * the provider's HTTP client. Its own module, so that no other function bundles the proxy.
 */
import { ConfigError } from './config.js';

/** The process's proxy use case (built on first use). */
export function processProxy(): never {
  // Built from the proxy use case and its stores as they land (lib/use-cases/proxy.ts).
  throw new ConfigError('proxy mode is not wired in this build');
}
