/** migrate: bring the old credits-based system's keys into keypool (issue 4). */
import { TableName } from '../../domain/primitives.js';
import { DEFAULT_INITIAL_CREDITS } from '../../domain/migration-mapping.js';
import {
  ANOTHER_POOL,
  INVALID_LISTED,
  invalidRowCount,
  migrate,
  type MigrationOutcome,
} from '../../use-cases/migration/migrate.js';
import { checked, type Command, json, operatorPath, stringFlag, UsageError } from '../framework.js';
import { terminalProgressBar } from '../progress-bar.js';
import { poolFlag } from './pool-flag.js';

const INVALID_SHOWN = 50;

/** --initial-credits: credits are fractional in the provider's pricing, so a decimal is accepted. */
function creditsFlag(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,7}(\.\d{1,6})?$/.test(value) || Number(value) <= 0) {
    throw new UsageError('--initial-credits takes a positive number, e.g. 25 or 6.5');
  }
  return Number(value);
}

function text(outcome: MigrationOutcome, from: string, target: string, pool: string): string {
  const { report } = outcome;
  const invalid = invalidRowCount(report);
  const shown = report.invalid.slice(0, INVALID_SHOWN);
  const lines = [
    outcome.dryRun
      ? `dry run: nothing was written; migrating ${from} into ${target} (pool ${pool}) would do this:`
      : `migrated ${from} into ${target} (pool ${pool})`,
    `  read        ${report.read}`,
    `  imported    ${report.imported}   (new keys)`,
    `  raised      ${report.raised}   (keys already in keypool whose count went up)`,
    `  unchanged   ${report.unchanged}`,
    `  duplicates  ${report.duplicates}   (rows repeating a key of an earlier row)`,
    `  invalid     ${invalid}`,
    ...shown.map((i) => `    line ${i.line}: ${i.reason}`),
    ...(invalid > shown.length
      ? [
          `    ... and ${invalid - shown.length} more (--json lists the first ${INVALID_LISTED.toLocaleString('en-US')})`,
        ]
      : []),
    `  ignored fields  ${report.ignoredFields}   (distinct unknown field names)`,
  ];
  if (outcome.disabled > 0)
    lines.push(
      `  ${outcome.disabled} key(s) already in keypool ${outcome.dryRun ? 'would be' : 'were'} disabled because the source disables them`,
    );
  return lines.join('\n');
}

export const migrateCommand: Command = {
  name: 'migrate',
  secrets: true,
  summary: 'bring keys from the old credits-based system (mongoexport file or legacy DynamoDB table)',
  usage: '(--from-mongo-export FILE | --from-table NAME) [--pool P] [--initial-credits N] [--dry-run] [--json]',
  help: [
    '--from-mongo-export FILE  a mongoexport of stability_api_keys: one document per line, or --jsonArray',
    '--from-table NAME         a legacy DynamoDB table with the old rows (same account, region and endpoint)',
    '--pool P                  pool for new keys (default: stability); keys already in keypool keep theirs',
    `--initial-credits N       credits a new key had in the old system (default: ${DEFAULT_INITIAL_CREDITS}); usage = N - credits_left, rounded up`,
    '--dry-run                 write nothing; print what a run would do',
    '--json                    print only the report: {"read","imported","raised","unchanged","duplicates","invalid","ignoredFields"}',
    `                          ("invalid": the first ${INVALID_LISTED.toLocaleString('en-US')} invalid rows by line)`,
    'Safe to run twice (the second run changes nothing) and to interrupt (run it again to finish).',
    'A migration never lowers a count. Exit 1 when the source cannot be read or parsed at all (nothing written),',
    'and, after the report, when it read rows and every one was invalid (the wrong file or table: no key stored).',
  ],
  options: {
    'from-mongo-export': { type: 'string' },
    'from-table': { type: 'string' },
    pool: { type: 'string' },
    'initial-credits': { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run({ args, io, config, services }) {
    const file = stringFlag(args.values['from-mongo-export']);
    const legacyTable = stringFlag(args.values['from-table']);
    if ((file === undefined) === (legacyTable === undefined))
      throw new UsageError('give exactly one of --from-mongo-export FILE or --from-table NAME');
    if (legacyTable !== undefined) checked(TableName, legacyTable, '--from-table');
    if (legacyTable === config.tableName) throw new UsageError(`--from-table: "${legacyTable}" is keypool's own table`);
    const pool = poolFlag(args);
    const initialCredits = creditsFlag(args.values['initial-credits']);
    const dryRun = args.values['dry-run'] === true;
    const asJson = args.values.json === true;

    const { store, pools, sealer, sources } = services.migration();
    const source = file !== undefined ? sources.file(operatorPath(file)) : sources.table(legacyTable ?? '');
    const bar = terminalProgressBar(io, asJson);
    let outcome: MigrationOutcome;
    try {
      outcome = await migrate({
        source,
        store,
        pools,
        sealer,
        pool,
        dryRun,
        ...(initialCredits === undefined ? {} : { initialCredits }),
        ...(bar ? { onProgress: (p) => bar.update(p) } : {}),
      });
    } finally {
      bar?.done();
    }
    io.out(asJson ? json(outcome.report) : text(outcome, source.describe, `table ${config.tableName}`, pool));
    // Rows read and not one of them a key: the wrong file or table, which a script must not read as migrated.
    const { read, imported, raised, unchanged, invalid } = outcome.report;
    const [first] = invalid;
    if (!first || imported + raised + unchanged > 0) return 0;
    // Every key already in another pool: most likely an earlier run into the pool named then.
    const elsewhere =
      first.reason === ANOTHER_POOL && args.values.pool === undefined
        ? ` (this run migrated into pool ${pool}; give the pool of the earlier run with --pool P)`
        : '';
    io.err(
      `keypool migrate: none of the ${read} row(s) read is a key keypool could take; line ${first.line}: ${first.reason}${elsewhere}`,
    );
    return 1;
  },
};
