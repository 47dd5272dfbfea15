/**
 * keypool's CloudWatch metric names, their one dimension and the default namespace. The
 * publishers (./keypool-metrics.ts), the CDK alarms (infra/constructs/alarms.ts) and the
 * dashboard (infra/constructs/dashboard.ts) all read them from here, so neither the alarms nor
 * the dashboard can watch a name nothing publishes.
 */
import type { ProxyOutcome } from '../domain/provider-answers.js';
import type { Outcome } from '../domain/types.js';

export const METRICS_NAMESPACE = 'keypool';

export const METRIC = {
  usableKeys: 'UsableKeys',
  /** the credits of the pool's accounts in service (with a usable key), once per account */
  usableCredits: 'UsableCredits',
  exhaustedKeys: 'ExhaustedKeys',
  disabledKeys: 'DisabledKeys',
  coolingKeys: 'CoolingKeys',
  suspectKeys: 'SuspectKeys',
  /**
   * suspect keys a maintenance run was to settle and did not: reported before it began, still
   * suspect at its end (SuspectKeys counts the reports made while it ran too)
   */
  unsettledSuspectKeys: 'UnsettledSuspectKeys',
  undecryptableKeys: 'UndecryptableKeys',
  balanceCheckErrors: 'BalanceCheckErrors',
  leasesGranted: 'LeasesGranted',
  noUsableKey: 'NoUsableKey',
  storeThrottled: 'StoreThrottled',
  /**
   * a lease or proxied use refused because the key service (KMS) failed to open its key's secret:
   * throttled past the SDK's retries, the key disabled, a permission missing
   */
  sealingUnavailable: 'SealingUnavailable',
  /**
   * a lease or proxied use refused because its key was sealed under a wrapping key this process
   * does not hold (a wrong setting). A name of its own rather than a `cause` dimension on
   * SealingUnavailable, as for completions: every pool metric keeps the one dimension set [pool].
   */
  sealingMisconfigured: 'SealingMisconfigured',
  clientReportsOverBudget: 'ClientReportsOverBudget',
  providerAuthBreakerOpen: 'ProviderAuthBreakerOpen',
} as const;

/**
 * Counts of the whole stack, published with no dimension: what keypool counts where no pool may
 * be named (a request can fail before its pool is known to exist, and a caller must not mint a
 * metric per name it sends).
 */
export const STACK_METRIC = {
  /** a 5xx the proxy answered for a fault of keypool's own (lib/http/errors.ts isKeypoolFault), never the provider's */
  proxyKeypool5xx: 'ProxyKeypool5xx',
} as const;

/** The only dimension of a pool's metrics: alarms name exactly the set of pools they watch. */
export const METRIC_DIMENSION = 'pool';

/**
 * One count per completion answered, a name per outcome the caller reported. A name per
 * outcome rather than an `outcome` dimension keeps every keypool metric under the one
 * dimension set `[pool]`; the outcomes are a closed list, so the names are too.
 */
export const COMPLETION_METRIC = {
  success: 'CompletedSuccess',
  failure: 'CompletedFailure',
  invalid_key: 'CompletedInvalidKey',
  out_of_credits: 'CompletedOutOfCredits',
  rate_limited: 'CompletedRateLimited',
  unknown: 'CompletedUnknown',
} as const satisfies Record<Outcome, string>;

/**
 * Proxy mode, per pool: one count per proxied call by the outcome the caller's answer carries
 * (x-keypool-outcome; `replayed` for an Idempotency-Key's kept answer), a name per outcome as
 * for completions.
 */
export const PROXY_OUTCOME_METRIC = {
  success: 'ProxiedSuccess',
  failure: 'ProxiedFailure',
  invalid_key: 'ProxiedInvalidKey',
  out_of_credits: 'ProxiedOutOfCredits',
  rate_limited: 'ProxiedRateLimited',
  provider_unavailable: 'ProxiedProviderUnavailable',
  unknown: 'ProxiedUnknown',
  replayed: 'ProxiedReplayed',
} as const satisfies Record<ProxyOutcome | 'replayed', string>;

/** Proxy mode's measures per call: the provider's time to answer, keypool's own time before the answer, the bytes sent back. */
export const PROXY_METRIC = {
  providerLatency: 'ProxyProviderLatency',
  addedLatency: 'ProxyAddedLatency',
  bytesOut: 'ProxyBytesOut',
} as const;

/** Every metric name keypool publishes per pool. */
export type MetricName =
  | (typeof METRIC)[keyof typeof METRIC]
  | (typeof COMPLETION_METRIC)[Outcome]
  | (typeof PROXY_OUTCOME_METRIC)[keyof typeof PROXY_OUTCOME_METRIC]
  | (typeof PROXY_METRIC)[keyof typeof PROXY_METRIC];

/** The maintenance log lines (by message) the dashboard's Logs Insights widgets select. */
export const MAINTENANCE_LOG = {
  /** one per run: the summary (checked, errors, keys by status) */
  run: 'maintenance run',
  /** one per key the run could not check, with keyId and reason */
  keyNotChecked: 'key not checked',
} as const;
