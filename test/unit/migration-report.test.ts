/**
 * The migration's report stays an answer Lambda can return and a list memory can hold, however
 * many rows of the source are invalid (the wrong collection's export, a 1 GB `--pretty` file).
 */
import { describe, expect, it } from 'vitest';
import { POOL_DEFAULTS } from '../../lib/domain/types.js';
import { runMigrateEvent } from '../../lib/events/migrate.js';
import type { MigrationSource, SourceRow } from '../../lib/ports/migration-source.js';
import type { MigrationStore } from '../../lib/ports/migration-store.js';
import { INVALID_LISTED, invalidRowCount, type MigrationReport } from '../../lib/use-cases/migration/migrate.js';

/** Lambda's limit for a synchronous invocation's answer. */
const LAMBDA_ANSWER_BYTES = 6 * 1024 * 1024;

/** A source of `rows` rows, every one a document the mapping refuses or no JSON at all. */
function invalidRows(rows: number): MigrationSource {
  return {
    describe: 'generated',
    totalBytes: undefined,
    check: () => Promise.resolve(),
    async *rows(): AsyncGenerator<SourceRow> {
      for (let position = 1; position <= rows; position++) {
        // A chunk read now and then, as a file's rows arrive.
        if (position % 10_000 === 0) await new Promise((next) => setImmediate(next));
        yield position % 2 === 0
          ? { position, error: 'not valid JSON' }
          : { position, value: { api_key: 'sk-test-0123456789', credits_left: 'three' } };
      }
    },
  };
}

/** A store nothing reaches: every row is invalid. */
const noStore: MigrationStore = {
  existing: () => Promise.reject(new Error('no row should reach the store')),
  write: () => Promise.reject(new Error('no row should reach the store')),
};

describe('the migration report', () => {
  it('lists the first invalid rows by line, counts them all, and stays under Lambda’s 6 MB answer', async () => {
    // Prepare: 300,000 invalid rows, ~17 MB as a full list.
    const rows = 300_000;
    const deps = {
      sources: { file: () => invalidRows(rows), s3: () => invalidRows(rows), table: () => invalidRows(rows) },
      store: noStore,
      pools: {
        ensure: (pool: string, at: string) => Promise.resolve({ ...POOL_DEFAULTS, pool, createdAt: at, updatedAt: at }),
      },
      sealer: { seal: () => Promise.reject(new Error('no key to seal')) },
      logger: { info: () => undefined, error: () => undefined },
    };
    // Act
    const answer = await runMigrateEvent({ source: { s3: { bucket: 'legacy', key: 'keys.json' } } }, deps);
    // Assess
    expect(answer).not.toHaveProperty('error');
    const report = answer as MigrationReport;
    expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(LAMBDA_ANSWER_BYTES);
    expect(report.read).toBe(rows);
    expect(invalidRowCount(report)).toBe(rows);
    expect(report.invalid).toHaveLength(INVALID_LISTED);
    expect(report.invalid.slice(0, 2)).toEqual([
      { line: 1, reason: 'credits_left is not a number' },
      { line: 2, reason: 'not valid JSON' },
    ]);
    expect(report.invalid.at(-1)).toEqual({ line: INVALID_LISTED, reason: 'not valid JSON' });
  });
});
