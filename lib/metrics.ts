/**
 * The process's Powertools Metrics (EMF), namespace `keypool` unless POWERTOOLS_METRICS_NAMESPACE
 * says otherwise. A module of its own so only the functions that publish metrics (lease,
 * maintain) bundle it.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || 'keypool',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'keypool',
});
// The only dimension is `pool` (lib/maintenance/pool-metrics.ts): alarms name exactly that set.
metrics.clearDefaultDimensions();
