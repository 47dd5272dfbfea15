/** The migration's own errors: one class each, messages never carry a row's content. */
import { KeypoolError } from '../domain/errors.js';

/**
 * The source cannot be read or parsed at all (missing file, not an export, a broken JSON
 * array, a table that does not exist). Raised before the first write, so nothing is half done.
 */
export class UnreadableSource extends KeypoolError {
  readonly code = 'unreadable_source';
}

/** A key's count kept changing under the migration's conditional write more often than it retries. */
export class MigrationConflict extends KeypoolError {
  readonly code = 'migration_conflict';
  constructor(keyId: string) {
    super(
      `key ${keyId} changed under every one of the migration's attempts to raise its count; run the migration again`,
    );
  }
}
