/**
 * The port the migration reads the old system's rows through. Adapters
 * (lib/adapters/migration-sources.ts) read a mongoexport file, an S3 object or a legacy
 * DynamoDB table; the wiring builds them over real clients.
 */

/** One row of a source: its parsed value, or why it could not be parsed. */
export type SourceRow = { position: number; value: unknown } | { position: number; error: string };

export interface ReadOptions {
  /** called with the size of each chunk as it is consumed (progress) */
  onBytes?: (bytes: number) => void;
}

export interface MigrationSource {
  /** how messages name the source (a path, an s3:// address, a table); never row content */
  describe: string;
  /** the source's size in bytes when known (progress) */
  readonly totalBytes: number | undefined;
  /** reads the whole source once; throws UnreadableSource if it cannot be read or parsed at all */
  check(): Promise<void>;
  rows(options?: ReadOptions): AsyncIterable<SourceRow>;
}

/** Where a migration can read from; the wiring (lib/wiring-secrets.ts) builds them over real clients. */
export interface MigrationSources {
  /** a mongoexport file on disk */
  file(path: string): MigrationSource;
  /** the same export as an S3 object */
  s3(bucket: string, key: string): MigrationSource;
  /** a legacy DynamoDB table with the old rows */
  table(tableName: string): MigrationSource;
}
