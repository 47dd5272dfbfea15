/**
 * The migration use case: reads the old system's rows from a source, maps them
 * (lib/domain/migration-mapping.ts) and brings them into keypool through a MigrationStore.
 *
 * Guarantees:
 *  - Nothing is written before the source has been checked end to end (`source.check()`):
 *    a file that cannot be read or parsed at all fails before the first write.
 *  - Every row applies the same monotone rule, whether its key is new, already in keypool,
 *    or repeated in the source: create if absent (dates from the row, and a record of what the
 *    row said), else, if the row says more than the key's record of earlier rows (a higher
 *    count, or disabled), raise the count to the higher of the two and disable it if the row
 *    newly disables it; nothing else changes. A row that says nothing new leaves the key as
 *    keypool and its operator have made it since (counted uses, a reset, an enable).
 *    A key of another pool is never changed: its row is reported invalid. A key the operator
 *    retired is never changed either: it counts as unchanged.
 *    So a second run changes nothing, and a run killed at any point followed by a full run
 *    ends in the same table as one uninterrupted run.
 *  - A count is never lowered, and a raise never overwrites a count a lease changed meanwhile
 *    (the store's conditional write; here, the retry with the fresh count).
 *  - Memory is flat: one batch of rows, plus 17 bytes a slot per distinct key (KeySet), plus
 *    at most twice INVALID_LISTED invalid rows.
 */
import type { PoolStore } from '../../ports/pool-store.js';
import { DEFAULT_POOL, type StoredKey } from '../../domain/types.js';
import { keyIdFor } from '../../domain/keys.js';
import { isOperatorDisabled } from '../../domain/rules.js';
import { sealNewKey } from '../new-key.js';
import type { SecretSealer } from '../../ports/secret-sealer.js';
import { MigrationConflict } from '../../domain/errors.js';
import type { MigrationSource } from '../../ports/migration-source.js';
import { type KeyOutcome, KeySet, type SeenKey } from './key-set.js';
import { DEFAULT_INITIAL_CREDITS, type MappedRow, mapRow } from '../../domain/migration-mapping.js';
import type { ExistingKey, KeyWrite, MigrationStore, WriteResult } from '../../ports/migration-store.js';

/** The report, exactly this shape in the CLI's --json and the Lambda's answer. */
export interface MigrationReport {
  read: number;
  imported: number;
  raised: number;
  unchanged: number;
  duplicates: number;
  /** the first INVALID_LISTED invalid rows by line; how many there are: invalidRowCount */
  invalid: { line: number; reason: string }[];
  ignoredFields: number;
}

/**
 * Invalid rows the report lists, the first by line: ~56 bytes each in memory and in the answer,
 * so a source whose every row is invalid (the wrong collection's 1 GB export) keeps the run's
 * memory flat and the Lambda's answer well under its 6 MB limit. Fix them and run again to see
 * the next ones (running the export again changes nothing for the rows already migrated).
 */
export const INVALID_LISTED = 10_000;

/** How many rows were invalid, listed or not: every row read is one key's first row, a duplicate or invalid. */
export function invalidRowCount(report: MigrationReport): number {
  return report.read - report.imported - report.raised - report.unchanged - report.duplicates;
}

/** The reason a row whose key is already in another pool is invalid (a run into the wrong pool). */
export const ANOTHER_POOL = 'api_key is a key of another pool';

export interface MigrationProgress {
  read: number;
  written: number;
  bytes: number;
  totalBytes: number | undefined;
}

export interface MigrateOptions {
  source: MigrationSource;
  store: MigrationStore;
  /** the pool the keys go into is created with the defaults if it does not exist (not on a dry run) */
  pools: Pick<PoolStore, 'ensure'>;
  /** seals each new key's secret (a dry run seals too: it proves the wrapping key is usable) */
  sealer: Pick<SecretSealer, 'seal'>;
  pool?: string;
  dryRun?: boolean;
  initialCredits?: number;
  clock?: () => number;
  /** rows per consistent batch read and per write transaction (at most 100) */
  batchSize?: number;
  /** batches in flight at once */
  parallelBatches?: number;
  onProgress?: (progress: MigrationProgress) => void;
}

export interface MigrationOutcome {
  report: MigrationReport;
  /** keys that were in keypool before and that the source disabled (not part of the report's shape) */
  disabled: number;
  dryRun: boolean;
}

/** rounds of refused writes in one batch before the run gives up (each round rereads the refused keys) */
const MAX_WRITE_ATTEMPTS = 20;

interface Pending {
  keyId: string;
  row: MappedRow;
  /** the source position of the key's first row in the batch (a key of another pool is reported there) */
  line: number;
}

interface Work extends Pending {
  /** what this run already did with the key (a repeated row) */
  prior: SeenKey | undefined;
  /** the key in keypool as last read; undefined: it does not exist */
  current: ExistingKey | undefined;
}

/** Merges a repeated row into the pending one: the higher count, disabled if either says so. */
function merge(into: MappedRow, row: MappedRow): void {
  into.usageCount = Math.max(into.usageCount, row.usageCount);
  into.disabled ||= row.disabled;
}

/**
 * Runs one migration and returns its report. Invalid rows never stop it and are all listed;
 * the report never holds a secret (keys are only counted, reasons are fixed phrases).
 */
export async function migrate(options: MigrateOptions): Promise<MigrationOutcome> {
  const { source, store } = options;
  const pool = options.pool ?? DEFAULT_POOL;
  const dryRun = options.dryRun ?? false;
  const batchSize = Math.min(options.batchSize ?? 100, 100);
  const clock = options.clock ?? Date.now;
  const parallelBatches = Math.max(1, options.parallelBatches ?? 4);

  await source.check();

  const nowIso = new Date(clock()).toISOString();
  if (!dryRun) await options.pools.ensure(pool, nowIso);
  // The pool's shard count, read fresh for each batch that creates keys (a run may outlast a
  // change of shards; a reshard waits RESHARD_SETTLE_MS, longer than a batch, before moving keys).
  const shardsNow = async (): Promise<number> =>
    dryRun ? 1 : (await options.pools.ensure(pool, new Date(clock()).toISOString())).shards;
  const mapping = { initialCredits: options.initialCredits ?? DEFAULT_INITIAL_CREDITS, nowIso };
  const report: MigrationReport = {
    read: 0,
    imported: 0,
    raised: 0,
    unchanged: 0,
    duplicates: 0,
    invalid: [],
    ignoredFields: 0,
  };
  const ignored = new Set<string>();
  const seen = new KeySet();
  const progress: MigrationProgress = { read: 0, written: 0, bytes: 0, totalBytes: source.totalBytes };
  let disabled = 0;
  let readFirst = false;
  let lastTick = 0;
  const tick = (force = false): void => {
    if (!options.onProgress) return;
    const now = Date.now();
    if (!force && now - lastTick < 100) return;
    lastTick = now;
    progress.read = report.read;
    options.onProgress(progress);
  };

  const count = (outcome: KeyOutcome, delta: number): void => {
    report[outcome] += delta;
  };
  // Rows refused for another pool's key are found by batches that finish in any order: the
  // list is sorted, and cut back to the first by line whenever it doubles.
  const keepFirstInvalid = (): void => {
    report.invalid.sort((a, b) => a.line - b.line);
    report.invalid.length = Math.min(report.invalid.length, INVALID_LISTED);
  };
  const invalid = (line: number, reason: string): void => {
    report.invalid.push({ line, reason });
    if (report.invalid.length >= 2 * INVALID_LISTED) keepFirstInvalid();
  };

  const newKey = (row: MappedRow, shards: number): Promise<StoredKey> =>
    sealNewKey(options.sealer, row.apiKey, pool, row.createdAt, {
      usageCount: row.usageCount,
      status: row.disabled ? 'disabled' : 'active',
      lastUsedAt: row.lastUsedAt,
      shards,
    });

  /**
   * Records how a key ended up (`after`: as it is now, or would be on a dry run); a repeated row
   * may move its key from unchanged to raised.
   */
  const settle = (
    work: Work,
    result: { created: boolean; raised: boolean; disabledExisting: boolean; after: ExistingKey },
  ): void => {
    const { keyId, prior } = work;
    const outcome: KeyOutcome =
      result.created || prior?.outcome === 'imported'
        ? prior
          ? prior.outcome
          : 'imported'
        : result.raised || prior?.outcome === 'raised'
          ? 'raised'
          : 'unchanged';
    if (!prior) count(outcome, 1);
    else if (prior.outcome !== outcome) {
      count(prior.outcome, -1);
      count(outcome, 1);
    }
    if (result.disabledExisting && outcome !== 'imported') disabled++;
    const { after } = result;
    seen.set(keyId, {
      outcome,
      usageCount: after.usageCount,
      status: after.status === 'retired' ? 'retired' : isOperatorDisabled(after) ? 'disabled' : 'open',
      saidDisabled: after.migrated?.disabled ?? false,
    });
  };

  /**
   * One batch: one consistent read of its keys, then one conditional write per key that
   * needs one (one transaction). A write refused because the key changed meanwhile is decided
   * again from the key as it is now.
   */
  const flush = async (pending: Pending[]): Promise<void> => {
    // Reading first costs a request per batch; while batches hold only new keys (a first run)
    // the conditional create alone decides, and a refused create says the key is there.
    const inTable =
      dryRun || readFirst ? await store.existing(pending.map((p) => p.keyId)) : new Map<string, ExistingKey>();
    let refusedCreates = 0;
    let work: Work[] = pending.map(({ keyId, row, line }) => {
      const prior = seen.get(keyId);
      // A dry run wrote nothing, so for keys it has already met, its memory is the truth. Its
      // record of the source's counts is taken as the key's count: a row is news past either
      // only when it is past both.
      const current: ExistingKey | undefined =
        dryRun && prior
          ? {
              pool,
              usageCount: prior.usageCount,
              status: prior.status === 'open' ? 'active' : prior.status,
              migrated: { usageCount: prior.usageCount, disabled: prior.saidDisabled },
            }
          : inTable.get(keyId);
      return { keyId, row, line, prior, current };
    });
    for (let attempt = 0; work.length > 0; attempt++) {
      if (attempt >= MAX_WRITE_ATTEMPTS) throw new MigrationConflict((work[0] as Work).keyId);
      const writes: { work: Work; write: KeyWrite; raise: boolean; disable: boolean }[] = [];
      // The batch's new keys are sealed together: with KMS each seal is a request of its own.
      const fresh = work.filter((w) => !w.current);
      const shards = fresh.length ? await shardsNow() : 1;
      const created = new Map(
        await Promise.all(fresh.map(async (w) => [w.keyId, await newKey(w.row, shards)] as const)),
      );
      for (const w of work) {
        const key = created.get(w.keyId);
        if (key) {
          const said = { usageCount: w.row.usageCount, disabled: w.row.disabled };
          writes.push({ work: w, write: { kind: 'create', key, said }, raise: false, disable: false });
          continue;
        }
        if (!w.current) continue;
        if (w.current.pool !== pool) {
          // A key belongs to one pool: the secret is another pool's key, which this run leaves alone.
          invalid(w.line, ANOTHER_POOL);
          continue;
        }
        if (w.current.status === 'retired') {
          // The operator retired it (its secret is gone): only an import with revive brings it
          // back, and a row of the old system says nothing newer about it.
          settle(w, { created: false, raised: false, disabledExisting: false, after: w.current });
          continue;
        }
        // Only what the source says beyond what its rows said before is news: the count and the
        // status the key has since then are keypool's (a lease, an operator's reset or enable),
        // so running an export again changes nothing, whatever happened in between.
        const saidBefore = w.current.migrated;
        const moreUses = w.row.usageCount > (saidBefore?.usageCount ?? 0);
        const newlyDisabled = w.row.disabled && !saidBefore?.disabled;
        const to = moreUses ? Math.max(w.current.usageCount, w.row.usageCount) : w.current.usageCount;
        // The source's disable is an operator's (as a key created disabled): it replaces any
        // status but an operator's disabled, the provider's disabled included, which a balance
        // read would undo.
        const disable = newlyDisabled && !isOperatorDisabled(w.current);
        if (!moreUses && !newlyDisabled)
          settle(w, { created: false, raised: false, disabledExisting: false, after: w.current });
        else {
          const said = {
            usageCount: Math.max(saidBefore?.usageCount ?? 0, w.row.usageCount),
            disabled: newlyDisabled || (saidBefore?.disabled ?? false),
          };
          const change = { from: w.current.usageCount, to, disable, saidBefore, said };
          writes.push({
            work: w,
            write: { kind: 'change', keyId: w.keyId, pool, change },
            raise: to > w.current.usageCount,
            disable,
          });
        }
      }
      const results: WriteResult[] = dryRun
        ? writes.map(() => ({ applied: true }))
        : writes.length
          ? await store.write(writes.map((w) => w.write))
          : [];
      work = [];
      writes.forEach((w, i) => {
        const result = results[i] as WriteResult;
        if (!result.applied) {
          if (w.write.kind === 'create') refusedCreates++;
          // The key is there (or changed under us): decide again from what is there now.
          work.push({ ...w.work, current: result.current });
          return;
        }
        if (!dryRun) progress.written++;
        if (w.write.kind === 'create') {
          const { usageCount, status } = w.write.key;
          const after = { pool, usageCount, status, migrated: w.write.said };
          settle(w.work, { created: true, raised: false, disabledExisting: false, after });
        } else {
          const { to, said } = w.write.change;
          const before = w.work.current as ExistingKey;
          // Disabled by the source, as an operator disables: no setter.
          const after: ExistingKey = w.disable
            ? { pool, usageCount: to, status: 'disabled', migrated: said }
            : { ...before, usageCount: to, migrated: said };
          settle(w.work, { created: false, raised: w.raise, disabledExisting: w.disable, after });
        }
      });
    }
    readFirst = refusedCreates > 0 || inTable.size > 0;
    tick();
  };

  // Batches in flight at once; a key is never in two of them (a repeated key waits, below).
  const running = new Set<Promise<void>>();
  const flying = new Set<string>();
  let failure: { error: unknown } | undefined;
  const launch = (batch: Map<string, Pending>): void => {
    const pending = [...batch.values()];
    batch.clear();
    for (const p of pending) flying.add(p.keyId);
    const done: Promise<void> = flush(pending)
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        running.delete(done);
        for (const p of pending) flying.delete(p.keyId);
      });
    running.add(done);
  };
  const settled = async (all: boolean): Promise<void> => {
    if (all) await Promise.all(running);
    else await Promise.race(running);
    if (failure) throw failure.error;
  };

  const batch = new Map<string, Pending>();
  for await (const sourceRow of source.rows({ onBytes: (n) => (progress.bytes += n) })) {
    report.read++;
    tick();
    if ('error' in sourceRow) {
      invalid(sourceRow.position, sourceRow.error);
      continue;
    }
    const mapped = mapRow(sourceRow.value, mapping);
    for (const name of mapped.unknownFields) ignored.add(name);
    if (!mapped.ok) {
      invalid(sourceRow.position, mapped.reason);
      continue;
    }
    const keyId = keyIdFor(mapped.row.apiKey);
    const inBatch = batch.get(keyId);
    if (inBatch) {
      report.duplicates++;
      merge(inBatch.row, mapped.row);
      continue;
    }
    // A key repeated from a batch still in flight: let that batch land first, so rows of one
    // key apply in source order and the repeat is decided from the first one's result.
    if (flying.has(keyId)) await settled(true);
    if (seen.get(keyId)) report.duplicates++;
    batch.set(keyId, { keyId, row: mapped.row, line: sourceRow.position });
    if (batch.size >= batchSize) {
      launch(batch);
      if (running.size >= parallelBatches) await settled(false);
    }
  }
  if (batch.size > 0) launch(batch);
  await settled(true);
  keepFirstInvalid();
  report.ignoredFields = ignored.size;
  tick(true);
  return { report, disabled, dryRun };
}
