/**
 * `keypool reseal`: every stored secret sealed under the current wrapping key. A secret sealed
 * under a previous key is opened and sealed again; one still in plain text (from before
 * sealing) is sealed; one that cannot be opened is marked undecryptable (and shown so), and an
 * undecryptable key that opens again (its key was configured back) returns to its pool.
 *
 * Each key is one conditional write on the secret as read, so a run can be interrupted at any
 * point and run again: a second run finds nothing to do and writes nothing.
 */
import { PoolNotFound, SecretUndecryptable } from '../domain/errors.js';
import type { ResealStore } from '../ports/reseal-store.js';
import type { PoolStore } from '../ports/pool-store.js';
import type { StoredKey } from '../domain/types.js';
import { maskKey } from '../domain/keys.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { mapLimit } from '../shared/map-limit.js';

export interface ResealOptions {
  store: ResealStore;
  pools: Pick<PoolStore, 'list'>;
  sealer: SecretSealer;
  /** only this pool; every pool when absent */
  pool?: string;
  /** keys resealed at once (default 8) */
  concurrency?: number;
  /** keys read per page (default 100) */
  pageSize?: number;
  onProgress?: (progress: ResealProgress) => void;
}

export interface ResealProgress {
  /** keys looked at so far */
  read: number;
  /** keys written so far */
  written: number;
}

/** What a run did; `keypool reseal --json` prints exactly this. */
export interface ResealReport {
  /** keys looked at */
  keys: number;
  /** sealed under a previous wrapping key, now under the current one */
  resealed: number;
  /** stored in plain text (from before sealing), now sealed */
  sealed: number;
  /** undecryptable keys that opened again: resealed, with the status they had before (back in their pool unless it kept them out) */
  revived: number;
  /** already sealed under the current key: nothing written */
  unchanged: number;
  /** secrets that cannot be opened with any configured key (status undecryptable; import the key again) */
  undecryptable: string[];
  /** keys whose secret changed while the run worked on them (a concurrent reseal or import): run again */
  changedMeanwhile: number;
}

type KeyOutcome = 'resealed' | 'sealed' | 'revived' | 'unchanged' | 'undecryptable' | 'changedMeanwhile';

/** Reseals every key of the pools in scope; throws (SealingUnavailable) when the key service fails: run again. */
export async function reseal(options: ResealOptions): Promise<ResealReport> {
  const pools = (await options.pools.list()).filter((p) => options.pool === undefined || p.pool === options.pool);
  if (options.pool !== undefined && pools.length === 0) throw new PoolNotFound(options.pool);
  const report: ResealReport = {
    keys: 0,
    resealed: 0,
    sealed: 0,
    revived: 0,
    unchanged: 0,
    undecryptable: [],
    changedMeanwhile: 0,
  };
  const progress: ResealProgress = { read: 0, written: 0 };
  for (const { pool } of pools) {
    let after: string | undefined;
    do {
      const page = await options.store.poolKeysWithSecrets(pool, options.pageSize ?? 100, after);
      const outcomes = await mapLimit(page.keys, options.concurrency ?? 8, (key) => resealKey(options, key));
      outcomes.forEach((outcome, i) => {
        report.keys++;
        if (outcome === 'undecryptable') report.undecryptable.push((page.keys[i] as StoredKey).keyId);
        else report[outcome]++;
        if (outcome === 'resealed' || outcome === 'sealed' || outcome === 'revived') progress.written++;
      });
      progress.read = report.keys;
      options.onProgress?.(progress);
      after = page.lastKeyId;
    } while (after !== undefined);
  }
  return report;
}

async function resealKey(options: ResealOptions, key: StoredKey): Promise<KeyOutcome> {
  const { sealer, store } = options;
  const context = { pool: key.pool, keyId: key.keyId };
  const undecryptable = key.status === 'undecryptable';
  if (key.sealed && !undecryptable && !(await sealer.resealNeeded(key.secret))) return 'unchanged';
  let secret: string;
  if (!key.sealed) secret = key.secret;
  else {
    try {
      secret = await sealer.open(key.secret, context);
    } catch (error) {
      if (!(error instanceof SecretUndecryptable)) throw error;
      if (undecryptable) return 'undecryptable';
      const mark = { ...context, sealed: key.secret, reason: error.reason, at: new Date().toISOString() };
      return (await store.markUndecryptable(mark)) ? 'undecryptable' : 'changedMeanwhile';
    }
  }
  const sealed = await sealer.seal(secret, context);
  const replaced = await store.replaceSecret({
    ...context,
    from: { secret: key.secret, sealed: key.sealed },
    sealed,
    revive: undecryptable,
    // A revive gives back the status the key had before it was marked (kept as `prior`).
    ...(undecryptable && key.prior ? { prior: key.prior } : {}),
    // A plain key may have been set aside by a lease (out of the usage index): sealed, it goes
    // back. Its mask is taken now: once sealed, nothing but a lease could read the secret again.
    ...(key.sealed ? {} : { seenStatus: key.status, maskedKey: maskKey(secret) }),
  });
  if (!replaced) return 'changedMeanwhile';
  return undecryptable ? 'revived' : key.sealed ? 'resealed' : 'sealed';
}
