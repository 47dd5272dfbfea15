/**
 * A Broker in the same account as a key source of the client package (`@keypool/client`), for
 * one pool: `withKey` over it leases, completes, waits for a cooling key and fails with the same
 * error classes as over the HTTP API, without HTTP. Applications outside the account use the
 * package's `Keypool` instead; the package holds every rule, this file only binds a Broker.
 */
import { errorFromAnswer, type KeySource, keySource, type Waiting } from '@keypool/client';
import { KeypoolError } from '../domain/errors.js';
import type { CompletionReport, CompletionResult, LeaseGrant, LeaseRequest } from '../domain/types.js';
import { errorAnswer } from '../http/errors.js';

/** What brokerKeySource needs of a Broker (or of Leasing): the pool-scoped client use cases. */
export interface PoolLeasing {
  lease(pool: string, request?: LeaseRequest): Promise<LeaseGrant>;
  complete(pool: string, leaseId: string, report?: CompletionReport): Promise<CompletionResult>;
}

export interface BrokerKeySourceOptions extends Waiting {
  /** lease()'s default bound, seconds (default 0: do not wait) */
  maxWaitSeconds?: number;
}

/** A domain error as the HTTP API would answer it, thrown as the client package's class for that answer; anything else as it is. */
function answered(error: unknown): never {
  if (!(error instanceof KeypoolError)) throw error;
  const { status, body } = errorAnswer(error);
  throw errorFromAnswer({ status, body });
}

/** A Broker bound to one pool, as a KeySource: the same leases, errors and waiting as `new Keypool(...).pool(pool)`. */
export function brokerKeySource(
  broker: PoolLeasing,
  pool: string,
  options: BrokerKeySourceOptions = {},
): KeySource & { readonly pool: string } {
  return {
    pool,
    ...keySource({
      ...options,
      lease: (request) => broker.lease(pool, request).catch(answered),
      complete: (leaseId, report) => broker.complete(pool, leaseId, report).catch(answered),
    }),
  };
}
