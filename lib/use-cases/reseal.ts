/**
 * `keypool reseal`: every stored secret sealed under the current wrapping key. A secret sealed
 * under a previous key is opened and sealed again; one still in plain text (from before
 * sealing) is sealed; one whose ciphertext itself cannot be opened is marked undecryptable (and
 * shown so), and an undecryptable key that opens again (its key was configured back) returns to
 * its pool. One sealed under a wrapping key this run does not hold is a wrong setting, not a
 * verdict: it is left as it is and listed; and when none of the first sealed keys the run reads
 * opens, the run stops before it writes anything (sealing plain keys under a wrong key, or
 * listing every key, would help no one).
 *
 * Each key is one conditional write on the secret as read, so a run can be interrupted at any
 * point and run again: a second run finds nothing to do and writes nothing.
 */
import { PoolNotFound, SealingMisconfigured, SecretUndecryptable } from '../domain/errors.js';
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
  /** told about each key left as it is because its wrapping key is not held (the report lists its id) */
  onKeyNotHeld?: (error: SealingMisconfigured) => void;
}

/**
 * How many sealed keys a run tries, from the first page of each pool in scope, before it writes
 * anything: one that opens (or is under the current key already) lets the run go on; when every
 * one it tried is sealed under a key it does not hold, it stops. Trying costs a header read for
 * each (a key not held is known from its header, with no KMS call), and at most one KMS Decrypt
 * for the first that opens, which the sealer's cache then serves to the run itself.
 */
export const RESEAL_PROBE_KEYS = 25;

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
  /** secrets whose ciphertext does not open (status undecryptable; import the key again) */
  undecryptable: string[];
  /** secrets sealed under a wrapping key this run does not hold: left as they are (configure that key, run again) */
  keyNotHeld: string[];
  /** keys whose secret changed while the run worked on them (a concurrent reseal or import): run again */
  changedMeanwhile: number;
}

type KeyOutcome = 'resealed' | 'sealed' | 'revived' | 'unchanged' | 'undecryptable' | 'keyNotHeld' | 'changedMeanwhile';

/**
 * Reseals every key of the pools in scope. Throws SealingMisconfigured, having written nothing,
 * when none of the first sealed keys opens; throws SealingUnavailable when the key service
 * fails (run again).
 */
export async function reseal(options: ResealOptions): Promise<ResealReport> {
  const pools = (await options.pools.list()).filter((p) => options.pool === undefined || p.pool === options.pool);
  if (options.pool !== undefined && pools.length === 0) throw new PoolNotFound(options.pool);
  await checkKeysHeld(options, pools);
  const report: ResealReport = {
    keys: 0,
    resealed: 0,
    sealed: 0,
    revived: 0,
    unchanged: 0,
    undecryptable: [],
    keyNotHeld: [],
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
        if (outcome === 'undecryptable' || outcome === 'keyNotHeld')
          report[outcome].push((page.keys[i] as StoredKey).keyId);
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
      if (error instanceof SealingMisconfigured) {
        options.onKeyNotHeld?.(error);
        return 'keyNotHeld';
      }
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

/** Whether this run holds a sealed key's wrapping key: it opens (or needs no open), it does not (why), or no telling. */
async function probe(sealer: SecretSealer, key: StoredKey): Promise<'held' | 'unknown' | SealingMisconfigured> {
  if (!(await sealer.resealNeeded(key.secret))) return 'held';
  try {
    await sealer.open(key.secret, { pool: key.pool, keyId: key.keyId });
    return 'held';
  } catch (error) {
    if (error instanceof SealingMisconfigured) return error;
    // Failing authentication means a held key was named; a malformed or copied ciphertext says nothing.
    if (error instanceof SecretUndecryptable) return error.reason === 'authentication-failed' ? 'held' : 'unknown';
    throw error;
  }
}

/**
 * Before anything is written: the first sealed keys of the pools in scope (RESEAL_PROBE_KEYS at
 * most, from each pool's first page) must include one this run holds the wrapping key of.
 * Throws SealingMisconfigured naming the keys they were sealed under when none does; a scope
 * with no sealed key at all (a table from before sealing) has nothing to check.
 */
async function checkKeysHeld(options: ResealOptions, pools: readonly { pool: string }[]): Promise<void> {
  const faults: SealingMisconfigured[] = [];
  let tried = 0;
  for (const { pool } of pools) {
    const page = await options.store.poolKeysWithSecrets(pool, options.pageSize ?? 100);
    for (const key of page.keys.filter((k) => k.sealed)) {
      const held = await probe(options.sealer, key);
      if (held === 'held') return;
      tried++;
      if (held !== 'unknown') faults.push(held);
      if (tried >= RESEAL_PROBE_KEYS) break;
    }
    if (tried >= RESEAL_PROBE_KEYS) break;
  }
  const [first] = faults;
  if (first === undefined) return;
  const sealedUnder = [...new Set(faults.flatMap((fault) => fault.sealedUnder))];
  throw new SealingMisconfigured({ keysRead: tried }, sealedUnder, first.held);
}
