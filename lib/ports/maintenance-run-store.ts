/** Where maintenance runs are recorded and read back (kept MAINTENANCE_RUN_RETENTION_DAYS, then gone). */
import type { MaintenanceRunRecord } from '../domain/maintenance-run.js';

export interface MaintenanceRunStore {
  /** Records one run; it expires MAINTENANCE_RUN_RETENTION_DAYS after it started. */
  record(run: MaintenanceRunRecord): Promise<void>;
  /** The newest `limit` runs not yet expired, newest first: one short read, however many are kept. */
  recent(limit: number, nowMs: number): Promise<MaintenanceRunRecord[]>;
}
