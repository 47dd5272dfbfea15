/**
 * @keypool/client: lease keys from keypool, complete each lease by what the provider answered
 * (withKey does it for you), or let keypool call the provider (proxy mode). Requests are signed
 * with SigV4 whenever AWS credentials are available.
 */
export {
  AccessDenied,
  type DryPool,
  errorFromAnswer,
  type FieldProblem,
  ForbiddenHost,
  ForbiddenOrigin,
  IdempotencyConflict,
  InternalError,
  InvalidRequest,
  JobNotFound,
  KeyNotFound,
  KeyNotSealed,
  KeypoolApiError,
  KeypoolError,
  type KeypoolErrorOptions,
  KeypoolUnavailable,
  LeaseExpired,
  LeaseNotFound,
  MethodNotAllowed,
  NoProvider,
  NotFound,
  NoUsableKey,
  PathNotAllowed,
  PayloadTooLarge,
  PoolNotEmpty,
  PoolNotFound,
  ReportBudgetExceeded,
  ProviderFailed,
  ProviderTimeout,
  RequestInProgress,
  SealingMisconfigured,
  SealingUnavailable,
  StoreThrottled,
  UnsupportedMediaType,
  type UnusableCounts,
} from './errors.js';
export { keyIdFor, Keypool, type KeypoolOptions, type LeaseOptions, Pool, type ProxyInit } from './keypool.js';
export { Lease } from './lease.js';
export type { KeypoolCredentials, Waiting } from './transport.js';
export type * from './types.js';
export { type KeySource, keySource, type KeySourceOptions, type LeaseWait } from './waiting.js';
export {
  type AttemptRecord,
  type KeyAttempt,
  outcomeFor,
  outcomeForThrow,
  type ProviderCall,
  ProviderCallError,
  retryAfterSeconds,
  withKey,
  type WithKeyOptions,
} from './with-key.js';
