/** The in-memory MaintenanceRunStore: the unit tests' stand-in for the table's run records. */
import { MAINTENANCE_RUN_RETENTION_DAYS, type MaintenanceRunRecord } from '../../lib/domain/maintenance-run.js';
import type { MaintenanceRunStore } from '../../lib/ports/maintenance-run-store.js';

const RETENTION_MS = MAINTENANCE_RUN_RETENTION_DAYS * 86_400_000;

export class MemoryMaintenanceRunStore implements MaintenanceRunStore {
  readonly runs: MaintenanceRunRecord[] = [];

  record(run: MaintenanceRunRecord): Promise<void> {
    this.runs.push(structuredClone(run));
    return Promise.resolve();
  }

  recent(limit: number, nowMs: number): Promise<MaintenanceRunRecord[]> {
    const kept = this.runs.filter((run) => Date.parse(run.startedAt) + RETENTION_MS > nowMs);
    return Promise.resolve(
      kept
        .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
        .slice(0, limit)
        .map((run) => structuredClone(run)),
    );
  }
}
