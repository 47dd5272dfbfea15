/** What one maintenance run leaves behind for the operator: a record kept for 30 days (the console's "last runs"). */

/** How long a run's record is kept: DynamoDB deletes it by its TTL after this. */
export const MAINTENANCE_RUN_RETENTION_DAYS = 30;

/** The errors a record keeps (the first ones): the record stays one small item however bad the run. */
export const MAINTENANCE_RUN_ERRORS_KEPT = 5;

/** One maintenance run as recorded (never a secret: key ids and reasons only). */
export interface MaintenanceRunRecord {
  /** when it started and ended (ISO 8601) */
  startedAt: string;
  finishedAt: string;
  /** the pool it was limited to; null: every pool */
  pool: string | null;
  /** balances asked for */
  checked: number;
  /** keys whose status the run changed */
  changed: number;
  /** how many keys could not be checked or changed */
  errors: number;
  /** the first of them (at most MAINTENANCE_RUN_ERRORS_KEPT) */
  firstErrors: { keyId: string; reason: string }[];
}
