/**
 * The migrate Lambda's work between the event and the report: validates the event, picks
 * the source, runs the same use case as the CLI, and turns every failure into
 * `{ error, message }` once (the function is invoked by hand, so the answer is the report).
 */
import { KeypoolError } from '../domain/errors.js';
import type { PoolStore } from '../ports/pool-store.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { redact } from '../shared/redact.js';
import { MigrateEvent } from './migrate-event.js';
import { migrate, type MigrationReport } from '../use-cases/migration/migrate.js';
import type { MigrationSources } from '../ports/migration-source.js';
import type { MigrationStore } from '../ports/migration-store.js';

export type { MigrationSources } from '../ports/migration-source.js';

/** The structured logger the run reports to (lib/observability/logger.ts fits). */
export interface MigrationLog {
  info(message: string, attributes: Record<string, unknown>): void;
  error(message: string, attributes: Record<string, unknown>): void;
}

export interface MigrateDependencies {
  sources: MigrationSources;
  store: MigrationStore;
  pools: Pick<PoolStore, 'ensure'>;
  sealer: Pick<SecretSealer, 'seal'>;
  logger: MigrationLog;
}

export type MigrateAnswer = MigrationReport | { error: string; message: string };

/** Runs one migration event; never throws, never answers with a secret. */
export async function runMigrateEvent(event: unknown, deps: MigrateDependencies): Promise<MigrateAnswer> {
  const parsed = MigrateEvent.safeParse(event);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.map(String).join('.') || 'event'}: ${i.message}`)
      .join('; ');
    return { error: 'invalid_request', message: `invalid event: ${issues}`.slice(0, 1000) };
  }
  const { source, pool, dryRun, initialCredits } = parsed.data;
  const from = 's3' in source ? deps.sources.s3(source.s3.bucket, source.s3.key) : deps.sources.table(source.table);
  try {
    const outcome = await migrate({
      source: from,
      store: deps.store,
      pools: deps.pools,
      sealer: deps.sealer,
      ...(pool === undefined ? {} : { pool }),
      ...(dryRun === undefined ? {} : { dryRun }),
      ...(initialCredits === undefined ? {} : { initialCredits }),
    });
    deps.logger.info('migration finished', {
      source: from.describe,
      dryRun: outcome.dryRun,
      read: outcome.report.read,
      imported: outcome.report.imported,
      raised: outcome.report.raised,
      invalid: outcome.report.invalid.length,
      disabledExisting: outcome.disabled,
    });
    return outcome.report;
  } catch (error) {
    if (error instanceof KeypoolError) return { error: error.code, message: error.message };
    deps.logger.error('migration failed', {
      source: from.describe,
      errorName: (error as Error).name,
      errorMessage: redact((error as Error).message),
    });
    return { error: 'internal_error', message: 'internal error; the migration can be run again to finish' };
  }
}
