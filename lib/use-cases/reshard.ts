/**
 * Re-homes a pool's keys after its shard count changed (`keypool pool reshard`, and each
 * maintenance pass while a change is pending): every key whose home is not
 * shardOf(keyId, shards) moves there, its index entry with it if it has one.
 *
 * Each key is one conditional write on its placement as read (ReshardStore.rehome), never on its
 * count, sort key or lease slots: a lease in flight on a key being moved completes as if
 * nothing happened, a lease write that loses to the move is refused and finds the key in its
 * new shard, and a key that enters or leaves the index meanwhile is read again. A run can stop
 * anywhere and run again; a second run moves nothing.
 *
 * Leases keep working throughout: while `previousShards` is set on the pool they read both
 * layouts (shardSpan), and it is removed only by a sweep that found every key home.
 *
 * Why a sweep waits RESHARD_SETTLE_MS after the change: a broker keeps the pool's policy up
 * to POLICY_CACHE_MS, and a broker that has not seen the new count would not look in the
 * new shards: keys moved there would be invisible to it. And an import or a migration batch
 * that read the old count just before the change still homes its new keys the old way: the
 * sweep that ends the reshard must begin after the last of those writes. Writers that put a
 * key back into the index (an operator's activate, maintenance's revive, reseal) copy the
 * key's own home and need no count at all.
 */
import { PoolNotFound } from '../domain/errors.js';
import type { KeyPlacement, ReshardStore } from '../ports/reshard-store.js';
import type { PoolStore } from '../ports/pool-store.js';
import { POLICY_CACHE_MS } from './pool-directory.js';
import { shardOf } from '../domain/shards.js';
import { mapLimit } from '../shared/map-limit.js';

/**
 * The longest a writer of new keys holds a shard count it read: one import call (an API
 * request, at most 29 s; the CLI reads the pool again for each batch of 500) or one migration
 * batch of 100 keys.
 */
const LONGEST_INSERT_MS = 50_000;
/**
 * How long after a change of shards a sweep may begin: every broker's policy cache has
 * expired (POLICY_CACHE_MS) and every import or migration batch that read the old count has
 * written its keys. 60 s.
 */
export const RESHARD_SETTLE_MS = POLICY_CACHE_MS + LONGEST_INSERT_MS;
/** Rereads of one key whose placement keeps changing under the sweep before it is left for the next run. */
const MOVE_TRIES = 5;

export interface ReshardOptions {
  store: ReshardStore;
  pools: Pick<PoolStore, 'get' | 'finishReshard'>;
  pool: string;
  clock?: () => number;
  /** keys moved at once (default 8) */
  concurrency?: number;
  /** keys read per page (default 100) */
  pageSize?: number;
  settleMs?: number;
  /** no page is read after this moment (ms since the epoch); the run then ends unfinished */
  deadlineMs?: number;
  onProgress?: (progress: { read: number; moved: number }) => void;
}

/** What a run did; `keypool pool reshard --json` prints exactly this. */
export interface ReshardReport {
  pool: string;
  shards: number;
  /** the layout being left; null when none was pending */
  previousShards: number | null;
  /** keys looked at */
  keys: number;
  /** keys moved to their home shard */
  moved: number;
  /** keys whose placement kept changing under the run (left for the next run) */
  changedMeanwhile: number;
  /** the pending reshard ended with this run (leases read only the new layout from now on) */
  finished: boolean;
  /** no key was looked at: the change is too recent (see RESHARD_SETTLE_MS); run again from then */
  notBefore: string | null;
}

/** Where a key must go, if anywhere: its home and its index entry both on shardOf(keyId, shards). */
function misplaced(placement: KeyPlacement, shards: number): number | undefined {
  const home = shardOf(placement.keyId, shards);
  const indexed = placement.indexedIn === undefined || placement.indexedIn === home;
  return placement.shard === home && indexed ? undefined : home;
}

/** One sweep of the pool (see the module comment); ends the pending reshard when every key is home. */
export async function reshard(options: ReshardOptions): Promise<ReshardReport> {
  const clock = options.clock ?? Date.now;
  const { store, pool } = options;
  const policy = await options.pools.get(pool);
  if (!policy) throw new PoolNotFound(pool);
  const report: ReshardReport = {
    pool,
    shards: policy.shards,
    previousShards: policy.previousShards ?? null,
    keys: 0,
    moved: 0,
    changedMeanwhile: 0,
    finished: false,
    notBefore: null,
  };
  const startMs = clock();
  if (policy.previousShards !== undefined) {
    const changedMs = Date.parse(policy.shardsChangedAt ?? '');
    const fromMs = (Number.isNaN(changedMs) ? 0 : changedMs) + (options.settleMs ?? RESHARD_SETTLE_MS);
    if (startMs < fromMs) return { ...report, notBefore: new Date(fromMs).toISOString() };
  }
  let after: string | undefined;
  let complete = true;
  do {
    if (options.deadlineMs !== undefined && clock() >= options.deadlineMs) {
      complete = false;
      break;
    }
    const page = await store.placements(pool, options.pageSize ?? 100, after);
    const outcomes = await mapLimit(page.keys, options.concurrency ?? 8, (placement) =>
      moveHome(store, placement, policy.shards),
    );
    for (const outcome of outcomes) {
      report.keys++;
      if (outcome === 'moved') report.moved++;
      if (outcome === 'changedMeanwhile') report.changedMeanwhile++;
    }
    options.onProgress?.({ read: report.keys, moved: report.moved });
    after = page.lastKeyId;
  } while (after !== undefined);
  if (complete && policy.previousShards !== undefined && report.changedMeanwhile === 0) {
    report.finished = await options.pools.finishReshard(pool, {
      shards: policy.shards,
      previousShards: policy.previousShards,
    });
  }
  return report;
}

async function moveHome(
  store: ReshardOptions['store'],
  first: KeyPlacement,
  shards: number,
): Promise<'moved' | 'home' | 'changedMeanwhile'> {
  let placement: KeyPlacement | undefined = first;
  for (let tries = 0; tries < MOVE_TRIES && placement; tries++) {
    const to = misplaced(placement, shards);
    if (to === undefined) return 'home';
    const result = await store.rehome({
      keyId: placement.keyId,
      pool: placement.pool,
      from: { shard: placement.shard, indexedIn: placement.indexedIn },
      to,
    });
    if (result.moved) return 'moved';
    // The key entered or left the index (or moved) since it was read: decide again from where it is.
    placement = result.current;
  }
  // Gone meanwhile: nothing left to move.
  return placement ? 'changedMeanwhile' : 'home';
}
