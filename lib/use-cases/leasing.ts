/**
 * The client's use cases: lease a key, complete the lease, count a use without one. They
 * depend only on the LeaseStore port; which key to try is decided here, whether a write may
 * happen is decided by the store's conditional writes.
 */
import {
  IdempotencyConflict,
  InvalidRequest,
  KeyNotFound,
  LeaseExpired,
  LeaseNotFound,
  NoUsableKey,
  ReportBudgetExceeded,
  SecretUndecryptable,
  StoreThrottled,
} from '../domain/errors.js';
import type { Candidate, CandidatePage, CompletedKey, IdempotentLease, LeaseStore } from '../ports/lease-store.js';
import { type AnswerVerdict, slotOutcome } from '../domain/provider-answers.js';
import type {
  CompletionReport,
  CompletionResult,
  LeaseGrant,
  LeaseRequest,
  Outcome,
  PoolPolicy,
  StoredKey,
} from '../domain/types.js';
import { PROXIED } from '../domain/types.js';
import type { BudgetSpend } from '../ports/report-budget.js';
import { KEY_ID_PATTERN } from '../domain/keys.js';
import { callerDigest, idempotencyId, leaseRequestHash, replayRefusal } from '../domain/idempotency.js';
import { formatLeaseId, LEASE_SLOTS, newNonce, parseLeaseId } from '../domain/lease-id.js';
import type { PoolDirectory } from './pool-directory.js';
import { bearsStamp, effectiveStatus, isLeasable, isSlotFree, type Reporter, reportChange } from '../domain/rules.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import { MAX_SHARDS, ShardMemory, shardSpan } from '../domain/shards.js';
import type { DryPoolCounts } from './dry-pool-counts.js';
import { rememberSecret } from '../shared/redact.js';
import type { AccountStore } from '../ports/account-store.js';
import { spreadToAccount } from './account-states.js';

export interface LeasingOptions {
  store: LeaseStore;
  /** pools' policies: the cap, the lease TTL, the cooldown */
  pools: PoolDirectory;
  /** opens the sealed secret of a key it grants */
  sealer: Pick<SecretSealer, 'open'>;
  /** told about a key whose secret cannot be opened (it is taken out of the pool first) */
  onUndecryptable?: (error: SecretUndecryptable) => void;
  /** told (once per key and process) about a key still stored in plain text: never leased until `keypool reseal` */
  onUnsealed?: (key: { keyId: string; pool: string }) => void;
  /** told about each report or lease-less count a caller made past its budget in a pool (it took no effect) */
  onReportOverBudget?: (pool: string) => void;
  clock?: () => number;
  /** a number in [0, 1): which candidate a contending broker tries (tests pass a seeded one) */
  random?: () => number;
  /** candidates read per index query */
  candidateLimit?: number;
  /** index queries that found candidates one lease may make before it concludes no key is usable (dry shards come on top: at most one Query each) */
  maxRounds?: number;
  /** how long a page read serves the next leases (default PAGE_REUSE_MS; 0 reads for every lease) */
  pageReuseMs?: number;
  /**
   * what a refusal says about its pool (DryPoolCounts: counted at most once a minute per pool,
   * waited for at most DRY_POOL_WAIT_MS); absent, a refusal carries no counts (a process that
   * only completes and counts never refuses)
   */
  dryPool?: Pick<DryPoolCounts, 'dry'>;
  /**
   * accounts above keys: what a completion says about a key's account (out of credits, rate
   * limited where the pool's limit is per account) is put on the account's other keys before it
   * returns; absent, a report stops only its own key
   */
  accounts?: AccountStore;
}

/** What a lease under an Idempotency-Key is recorded and replayed by. */
type IdempotencyRequest = Pick<IdempotentLease, 'id' | 'requestHash' | 'callerDigest'>;

/** The rest of a page read of one shard (Leasing's `carried`). */
interface CarriedPage {
  candidates: Candidate[];
  /** when the read that answered it was asked for */
  readAtMs: number;
  /** when the first cooling key the read skipped is usable again */
  coolingUntilMs: number | undefined;
}

/**
 * A use taken for a proxied call (Leasing.takeUse): the key and its secret, its count before
 * the use, and the slot and nonce its refund names.
 */
export interface ProxyUse {
  keyId: string;
  apiKey: string;
  pool: string;
  usageCount: number;
  slot: number;
  nonce: string;
}

/** What one lease write took: a lease's grant (without its pool) and the slot its nonce holds. */
type Taken = Omit<LeaseGrant, 'pool'> & { slot: number; nonce: string };

/**
 * How trying one candidate went, for the lease loop: taken (`usageCount`, the count before the
 * use, moves the broker's memory of the shard; absent for a replayed lease), not taken (`usable`:
 * it may still be leasable, lost to a race), or `again`: try the same candidate once more.
 */
type Tried<R> = { grant: R; usageCount?: number } | { usable: boolean } | { again: true };

const NO_KEYS: ReadonlySet<string> = new Set();

/**
 * How long past the pool's proxyTimeoutSeconds a proxied use holds its slot (isSlotFree): the
 * provider call is bounded by proxyTimeoutSeconds; the margin covers reading the answer and the
 * refund.
 */
export const PROXY_SLOT_MARGIN_SECONDS = 30;

/** How long a lost race keeps a broker spreading its first tries (see Leasing.lease). */
export const CONTENTION_MEMORY_MS = 2_000;
/**
 * How long a candidate page this broker read serves its next leases before it reads the shard
 * again (Leasing's `carried`): well within the delay DynamoDB allows a global secondary index.
 */
export const PAGE_REUSE_MS = 1_000;
/** The most pools whose pages one broker carries (a process serving more reads the rest). */
export const CARRIED_POOLS = 1_000;
/**
 * The most pages one pool's carry holds (one per shard and cap asked for): a page for every
 * shard at two caps. Callers choose the cap they ask for (up to the pool's, which may be 1,000),
 * so without a bound their pages, and each lease's strike through them, would grow with it.
 */
export const CARRIED_PAGES_PER_POOL = 2 * MAX_SHARDS;
/** The most candidates a page read past this process's other leases asks for (Leasing.takeFrom). */
export const MAX_WIDENED_PAGE = 100;
/** The most shards one lease reads at once, once it has seen one dry. */
export const MAX_PARALLEL_SHARD_READS = 8;

/** A free lease slot on the key as last seen, searching from `preferred`. */
function freeSlot(key: StoredKey, nowMs: number, preferred: number): number | undefined {
  for (let offset = 0; offset < LEASE_SLOTS; offset++) {
    const slot = (preferred + offset) % LEASE_SLOTS;
    if (isSlotFree(key.slots[String(slot)], nowMs)) return slot;
  }
  return undefined;
}

/** Takes a random item out of `items` (undefined when empty). */
function takeRandom<T>(items: T[], random: () => number): T | undefined {
  if (items.length === 0) return undefined;
  const [picked] = items.splice(Math.floor(random() * items.length), 1);
  return picked;
}

/** Fewer candidates than this at the lowest count, and a spreading broker also considers the next count. */
export const SPREAD_MIN = 4;

/**
 * Takes a random candidate out of `items` (in index order: fewest uses first) among those with
 * the fewest uses, or the next count too when fewer than SPREAD_MIN have the fewest: contending
 * brokers spread over keys as little used as the head, not over the whole page. A page of a
 * shard can hold its every key, several counts deep; a random one of those would give a key
 * its fifth use while others of the shard have one.
 */
function takeSpread(items: Candidate[], random: () => number): Candidate | undefined {
  const lowest = items[0]?.usageCount;
  if (lowest === undefined) return undefined;
  const atLowest = items.filter((c) => c.usageCount === lowest).length;
  const limit = atLowest < SPREAD_MIN ? lowest + 1 : lowest;
  const within = items.filter((c) => c.usageCount <= limit).length;
  // The candidates are in index order, so the ones within the limit are a prefix.
  const [picked] = items.splice(Math.floor(random() * within), 1);
  return picked;
}

export class Leasing {
  private readonly store: LeaseStore;
  private readonly pools: PoolDirectory;
  private readonly sealer: Pick<SecretSealer, 'open'>;
  private readonly onUndecryptable: ((error: SecretUndecryptable) => void) | undefined;
  private readonly onUnsealed: ((key: { keyId: string; pool: string }) => void) | undefined;
  private readonly onReportOverBudget: ((pool: string) => void) | undefined;
  private readonly unsealedSeen = new Set<string>();
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly candidateLimit: number;
  private readonly maxRounds: number;
  /** Keys this process is trying to lease right now: concurrent leases here try other keys first. */
  private readonly inFlight = new Map<string, number>();
  /**
   * Candidate reads under way in this process, by pool, shard and cap: a lease that needs the
   * same page while one is being read shares it rather than sending the same query again.
   * Requests that arrive together (a process serving many callers at once) then read a shard
   * once and, spread by inFlight, try different keys of the page. A shared page may have been
   * asked for a moment before the request arrived: one read's time older, well within what the
   * index's eventual consistency allows anyway, and every write still checks the key itself.
   */
  private readonly reading = new Map<string, Promise<CandidatePage>>();
  /**
   * The rest of the last page read of each shard (by pool, then `shard:maxUses`): while no other
   * process contends, it is what the next query would answer, so the next lease within
   * pageReuseMs of the read takes from it rather than reading again. A key tried is struck
   * from it, and so is every key more used than a key just taken: the taken key now sorts
   * before them. Anything that moves a key here ends a page: a use given back or counted
   * without a lease, the end of a cooldown the read skipped, or age (and a read under way then
   * is not carried); none is used while a lost race says another process is leasing from the
   * pool (contendedUntilMs). Every write still checks the key itself, so a stale page costs a
   * refused write, never a use over the cap.
   */
  private readonly carried = new Map<string, Map<string, CarriedPage>>();
  /** Counts the drops of carried pages: a read that began before one is not carried. */
  private carriedDrops = 0;
  private readonly pageReuseMs: number;
  /**
   * Until when this broker spreads its first try over the candidate page instead of taking the
   * head: set by a lost race, so only callers that are actually contending leave strict LRU.
   */
  private contendedUntilMs = 0;
  /** What this broker last saw of each shard's head: which shard a lease reads first. */
  private readonly shardMemory = new ShardMemory();
  /** what a refusal says about its pool: counted at most once a minute per pool */
  private readonly dryPool: Pick<DryPoolCounts, 'dry'> | undefined;
  private readonly accounts: AccountStore | undefined;

  constructor(options: LeasingOptions) {
    this.accounts = options.accounts;
    this.store = options.store;
    this.pools = options.pools;
    this.sealer = options.sealer;
    this.onUndecryptable = options.onUndecryptable;
    this.onUnsealed = options.onUnsealed;
    this.onReportOverBudget = options.onReportOverBudget;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.candidateLimit = options.candidateLimit ?? 25;
    this.maxRounds = options.maxRounds ?? 20;
    this.pageReuseMs = options.pageReuseMs ?? PAGE_REUSE_MS;
    this.dryPool = options.dryPool;
  }

  /**
   * Grants the least-used, then least recently used, leasable key of a shard of the pool
   * whose count is <= maxUses (the pool's cap, or less if the caller asks), counting the use in
   * the same conditional write. With one shard that is the pool's least used key. Refuses with
   * NoUsableKey only when every shard was seen, in this request, to hold no candidate, or only
   * candidates that are, on inspection, not leasable; the refusal says when a cooling key
   * comes back and why the pool's keys are not usable (counted at most once a minute per pool
   * and process, and told only when the count is there within DRY_POOL_WAIT_MS: DryPoolCounts).
   */
  async lease(pool: string, request: LeaseRequest = {}, idempotencyKey?: string, caller?: string): Promise<LeaseGrant> {
    const policy = await this.pools.require(pool);
    const maxUses = withinPolicy('maxUses', request.maxUses, policy.maxUses, pool);
    const ttlMs = withinPolicy('ttlSeconds', request.ttlSeconds, policy.leaseTtlSeconds, pool) * 1000;
    // The same Idempotency-Key from the same caller while its lease stands: that lease again,
    // nothing counted.
    const idempotency =
      idempotencyKey === undefined
        ? undefined
        : {
            id: idempotencyId(pool, idempotencyKey),
            requestHash: leaseRequestHash(request),
            callerDigest: callerDigest(caller),
          };
    if (idempotency) {
      const again = await this.replay(pool, idempotency);
      if (again) return again;
    }
    return this.takeFrom<LeaseGrant>(pool, policy, maxUses, NO_KEYS, async (keyId, seenCount, shard) => {
      const tried = await this.attempt(keyId, seenCount, pool, shard, maxUses, { ttlMs, idempotency });
      if ('taken' in tried) {
        const { slot: _slot, nonce: _nonce, ...grant } = tried.taken;
        return { grant: { ...grant, pool }, usageCount: grant.usageCount };
      }
      if ('idempotencyTaken' in tried && idempotency) {
        // A concurrent request with the same key won: its lease is ours to answer with.
        const again = await this.replay(pool, idempotency);
        return again ? { grant: again } : { again: true };
      }
      return { usable: 'usable' in tried && tried.usable };
    });
  }

  /**
   * Takes one use of the pool's least recently used usable key for a proxied call: the lease
   * loop and its write, the cap checked in it, but the slot written with the PROXIED mark, so a
   * success (or an unknown outcome) needs no other write; settleUse gives the use back for the
   * outcomes that do. The slot is held until the call's bound (proxyTimeoutSeconds and a margin)
   * unless given back, so no other lease takes it while the call may still refund. Never a key
   * in `exclude` (the keys this request already tried). Refuses with NoUsableKey as a lease does.
   */
  async takeUse(pool: string, options: { exclude?: ReadonlySet<string>; maxUses?: number } = {}): Promise<ProxyUse> {
    const policy = await this.pools.require(pool);
    const maxUses = withinPolicy('maxUses', options.maxUses, policy.maxUses, pool);
    const ttlMs = (policy.proxyTimeoutSeconds + PROXY_SLOT_MARGIN_SECONDS) * 1000;
    return this.takeFrom<ProxyUse>(
      pool,
      policy,
      maxUses,
      options.exclude ?? NO_KEYS,
      async (keyId, seenCount, shard) => {
        const tried = await this.attempt(keyId, seenCount, pool, shard, maxUses, { ttlMs, proxied: true });
        if (!('taken' in tried)) return { usable: 'usable' in tried && tried.usable };
        const { keyId: id, apiKey, usageCount, slot, nonce } = tried.taken;
        return { grant: { keyId: id, apiKey, pool, usageCount, slot, nonce }, usageCount };
      },
    );
  }

  /**
   * What follows a completion's or a proxied refund's write once it applied (its answer in hand
   * or, lost, recognised by its stamp): anything but a success may put the key back ahead of a
   * carried page, dropped so a page read while the write was under way is not carried past it;
   * the change the key got goes on its account's other keys before the answer, so no lease
   * grants a sibling until the account comes back.
   */
  private async afterApplied(done: {
    pool: string;
    keyId: string;
    outcome: Outcome;
    by: Reporter['by'];
    policy: PoolPolicy;
    report: Pick<CompletionReport, 'retryAfterSeconds'>;
    nowMs: number;
    changed: boolean;
  }): Promise<void> {
    const { pool, keyId, outcome, by, policy, report, nowMs } = done;
    if (outcome !== 'success') this.dropCarried(pool);
    if (done.changed && this.accounts)
      await spreadToAccount(this.accounts, pool, keyId, outcome, by, policy, report, nowMs);
  }

  /**
   * Settles a taken use by the provider's answer (the outcome table's verdict): success and
   * unknown write nothing (the use stays counted); every other outcome gives it back once, with
   * the provider's status change (reportChange by `provider`) in the same write where the key's
   * status allows it (else the refund alone). A slot leased again since (possible only past its
   * expiry, the call's bound) refuses the refund: the use stays counted, the safe side.
   */
  async settleUse(use: ProxyUse, verdict: AnswerVerdict): Promise<void> {
    if (!verdict.givesBack) return;
    const policy = await this.pools.require(use.pool);
    const outcome = slotOutcome(verdict.outcome);
    const nowMs = this.clock();
    let change = reportChange(outcome, 'provider', policy, verdict.retryAfterSeconds, nowMs);
    const { keyId, pool, slot, nonce } = use;
    // The provider's 402 (or 429, where the pool's limit is per account) stops the key's whole
    // account before the proxied call answers, as a completion's does.
    const report = verdict.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: verdict.retryAfterSeconds };
    const applied = (): Promise<void> =>
      this.afterApplied({ pool, keyId, outcome, by: 'provider', policy, report, nowMs, changed: change !== undefined });
    for (let tries = 0; tries < 2; tries++) {
      const result = await this.store.refundProxied({
        keyId,
        pool,
        slot,
        nonce,
        outcome,
        nowMs,
        ...(change ? { change } : {}),
      });
      if (result.applied) return applied();
      const current = result.current?.pool === pool ? result.current : undefined;
      const held = current?.slots[String(slot)];
      // Given back with this outcome, the key bearing this very change: this refund applied and
      // only its answer was lost.
      if (held?.nonce === nonce && held.outcome === outcome && change && current && bearsStamp(current, change.stamp))
        return applied();
      // Given back already, leased again since, or gone: nothing more to do.
      if (!change || held?.nonce !== nonce || held.outcome !== PROXIED) return;
      // Still ours, yet refused: the key's status forbids the change (a verdict, an operator's
      // disabled). The refund alone.
      change = undefined;
    }
  }

  /**
   * The secret of a key of `pool` for a poll of a job it started (nothing counted, no slot):
   * undefined when the key is not in the pool, is retired or not sealed, or its secret does not
   * open (it is then taken out of the pool, as a lease would). A key service that fails throws.
   */
  async openKey(pool: string, keyId: string): Promise<string | undefined> {
    if (!KEY_ID_PATTERN.test(keyId)) return undefined;
    const key = await this.store.get(keyId);
    if (!key || key.pool !== pool || !key.sealed || key.status === 'retired' || key.status === 'undecryptable')
      return undefined;
    return this.openSecret(key, pool);
  }

  /**
   * The lease loop, shared by lease and takeUse: reads candidate pages shard by shard and tries
   * them with `tryKey` (which writes) until one is taken, or refuses with NoUsableKey when every
   * shard was seen dry in this request. Keys in `exclude` are never tried: the store reads past
   * them, and a shard with no other is dry for this request (not for the broker's memory of it).
   */
  private async takeFrom<R>(
    pool: string,
    policy: PoolPolicy,
    maxUses: number,
    exclude: ReadonlySet<string>,
    tryKey: (keyId: string, seenCount: number, shard: number) => Promise<Tried<R>>,
  ): Promise<R> {
    // Both layouts while a reshard is pending: a key not yet moved is still found.
    const span = shardSpan(policy);
    /** shards seen dry in this request: a 409 needs all of them */
    const dry = new Set<number>();
    /** pages read but not yet tried (a parallel batch reads several) */
    const ready: { shard: number; page: CandidatePage }[] = [];
    /** whether this request read past its process's other leases once already */
    let widened = false;
    let coolingUntilMs: number | undefined;
    /** whether a key this request tried was leasable, and taken by another lease first */
    let lostRace = false;
    let round = 0;
    while (round < this.maxRounds && dry.size < span) {
      // One shard first; once some are seen dry, the next ones in parallel: 1, 2, 4, then 8 at
      // a time while every read comes back dry, so a pool dry everywhere answers in a few
      // round trips whatever its shard count (and still reads each shard once).
      const batch = Math.min(MAX_PARALLEL_SHARD_READS, dry.size + 1);
      if (ready.length === 0) ready.push(...(await this.readShards(pool, span, dry, batch, maxUses, exclude)));
      const next = ready.shift();
      if (!next) break;
      const { shard, page } = next;
      const nowMs = this.clock();
      const candidates = page.candidates;
      if (page.coolingUntilMs !== undefined) coolingUntilMs = Math.min(coolingUntilMs ?? Infinity, page.coolingUntilMs);
      if (candidates.length === 0) {
        // Keys this request excluded may be usable by others.
        if (exclude.size === 0) this.markDry(pool, shard, maxUses, dry, nowMs);
        else dry.add(shard);
        continue;
      }
      // Strict LRU for the first try: the head of the index, unless this process is already
      // trying it or lost a race moments ago. Callers in other processes (other Lambda
      // containers) read the same head, so once contention is seen the first try is a random
      // one of the page's least used candidates (takeSpread); after a lost race, another.
      const free = candidates.filter((c) => !this.inFlight.has(c.keyId));
      const busy = candidates.filter((c) => this.inFlight.has(c.keyId));
      // Every candidate is one that another lease of this process is trying (more callers at
      // once than a page holds): read past them, once, rather than race for them.
      if (free.length === 0 && !widened) {
        widened = true;
        const limit = Math.min(this.candidateLimit + this.inFlight.size, MAX_WIDENED_PAGE);
        ready.unshift(...(await this.readShards(pool, span, dry, 1, maxUses, exclude, limit)));
        continue;
      }
      round++;
      this.shardMemory.seen(pool, shard, (candidates[0] as Candidate).usageCount, nowMs);
      const spread = nowMs < this.contendedUntilMs;
      let candidate = (spread ? takeSpread(free, this.random) : free.shift()) ?? busy.shift();
      let stillUsable = false;
      while (candidate) {
        const tried = await tryKey(candidate.keyId, candidate.usageCount, shard);
        // A replayed lease (its twin's, under the same Idempotency-Key) wrote nothing to this
        // key: it keeps its place in the carried page.
        if ('usable' in tried || ('grant' in tried && tried.usageCount !== undefined))
          this.strike(pool, shard, candidate.keyId, 'grant' in tried ? tried.usageCount : undefined);
        if ('grant' in tried) {
          if (tried.usageCount !== undefined) {
            // The shard's head is now the next candidate of the page (or, if none, one use
            // more): the next lease of this broker goes to another shard if that one is less used.
            const taken = candidate.keyId;
            const after = candidates
              .filter((c) => c.keyId !== taken)
              .reduce((low, c) => Math.min(low, c.usageCount), tried.usageCount + 1);
            this.shardMemory.seen(pool, shard, after, this.clock());
          }
          return tried.grant;
        }
        if ('again' in tried) continue;
        stillUsable ||= tried.usable;
        lostRace ||= tried.usable;
        candidate = takeSpread(free, this.random) ?? takeRandom(busy, this.random);
      }
      // Every candidate of this page was seen not leasable and the page is the whole range: the
      // index lagged; this shard has nothing for now. If some were leasable but lost to races,
      // or the range goes on past the page (a short page can be one whose cooling keys were
      // skipped), it may be read again. Keys this request excluded may be usable by others.
      if (!stillUsable && !page.more) {
        if (exclude.size === 0) this.markDry(pool, shard, maxUses, dry, this.clock());
        else dry.add(shard);
      }
    }
    // Out of rounds with shards not seen dry, having lost races for keys that were leasable: the
    // table is busy, not the pool dry (a 409 here would be false). The caller tries again.
    if (dry.size < span && lostRace)
      throw new StoreThrottled({ reason: 'conflict', dynamoCode: 'ConditionalCheckFailedException' });
    const wait =
      coolingUntilMs === undefined ? undefined : Math.max(1, Math.ceil((coolingUntilMs - this.clock()) / 1000));
    throw new NoUsableKey(pool, maxUses, wait, await this.dryPool?.dry(pool, maxUses));
  }

  /**
   * Reads the candidate pages of up to `batch` shards not seen dry yet, in parallel, best shard
   * first; `widened`: a page of that many read past this process's other leases.
   */
  private async readShards(
    pool: string,
    span: number,
    dry: ReadonlySet<number>,
    batch: number,
    maxUses: number,
    exclude: ReadonlySet<string>,
    widened?: number,
  ): Promise<{ shard: number; page: CandidatePage }[]> {
    const nowMs = this.clock();
    const picked = new Set(dry);
    const shards: number[] = [];
    while (shards.length < batch) {
      const shard = this.shardMemory.next(pool, span, picked, maxUses, nowMs, this.random);
      if (shard === undefined) break;
      picked.add(shard);
      shards.push(shard);
    }
    const pages = await Promise.all(
      shards.map((shard) => this.readPage(pool, shard, maxUses, nowMs, exclude, widened)),
    );
    return shards.map((shard, i) => ({ shard, page: pages[i] as CandidatePage }));
  }

  /**
   * One shard's candidate page: the rest of a page read moments ago (unless `widened`), or one
   * read now, shared with the leases of this process reading it at the same time. A request
   * that excludes keys (a proxied call failing over) reads past them: its page is its own,
   * neither carried nor shared, and a carried rest of only those keys is not a dry shard.
   */
  private readPage(
    pool: string,
    shard: number,
    maxUses: number,
    nowMs: number,
    exclude: ReadonlySet<string>,
    widened: number | undefined,
  ): Promise<CandidatePage> {
    const limit = widened ?? this.candidateLimit;
    if (exclude.size > 0) return this.store.candidates(pool, shard, maxUses, limit, nowMs, exclude);
    const id = `${shard}:${maxUses}`;
    const kept = widened === undefined ? this.carried.get(pool)?.get(id) : undefined;
    if (
      kept &&
      kept.candidates.length > 0 &&
      nowMs - kept.readAtMs < this.pageReuseMs &&
      nowMs >= this.contendedUntilMs &&
      (kept.coolingUntilMs === undefined || nowMs < kept.coolingUntilMs)
    ) {
      // A remainder: keys past it may be usable, so one whose keys all refuse is not the shard's end.
      return Promise.resolve({ candidates: [...kept.candidates], more: true });
    }
    const readId = `${id}:${limit}:${pool}`;
    const under = this.reading.get(readId);
    if (under) return under;
    const drops = this.carriedDrops;
    const read = this.store.candidates(pool, shard, maxUses, limit, nowMs).then((page) => {
      if (this.pageReuseMs > 0 && drops === this.carriedDrops) {
        // The pools read last stay; past CARRIED_POOLS the one read longest ago goes. In a pool,
        // pages past their reuse are never served again, and past CARRIED_PAGES_PER_POOL the page
        // read longest ago goes.
        const pages = this.carried.get(pool) ?? new Map<string, CarriedPage>();
        this.carried.delete(pool);
        for (const [other, kept] of pages) if (nowMs - kept.readAtMs >= this.pageReuseMs) pages.delete(other);
        pages.delete(id);
        pages.set(id, { candidates: [...page.candidates], readAtMs: nowMs, coolingUntilMs: page.coolingUntilMs });
        if (pages.size > CARRIED_PAGES_PER_POOL) pages.delete(pages.keys().next().value ?? id);
        this.carried.set(pool, pages);
        if (this.carried.size > CARRIED_POOLS) this.carried.delete(this.carried.keys().next().value ?? pool);
      }
      return page;
    });
    this.reading.set(readId, read);
    const done = (): void => {
      this.reading.delete(readId);
    };
    read.then(done, done);
    return read;
  }

  /**
   * Strikes a key just tried from the shard's carried pages and, when it was taken at
   * `takenCount`, every key more used than its new count (it now sorts before them).
   */
  private strike(pool: string, shard: number, keyId: string, takenCount: number | undefined): void {
    const pages = this.carried.get(pool);
    if (!pages) return;
    const prefix = `${shard}:`;
    for (const [id, kept] of pages) {
      if (!id.startsWith(prefix)) continue;
      kept.candidates = kept.candidates.filter(
        (c) => c.keyId !== keyId && (takenCount === undefined || c.usageCount <= takenCount + 1),
      );
    }
  }

  /** Drops the pool's carried pages: a key's place in them is stale (a use given back or counted without a lease). */
  private dropCarried(pool: string): void {
    this.carried.delete(pool);
    this.carriedDrops++;
  }

  private markDry(pool: string, shard: number, maxUses: number, dry: Set<number>, nowMs: number): void {
    dry.add(shard);
    this.shardMemory.dry(pool, shard, maxUses, nowMs);
  }

  private warnUnsealed(key: { keyId: string; pool: string }): void {
    if (this.unsealedSeen.has(key.keyId)) return;
    if (this.unsealedSeen.size < 10_000) this.unsealedSeen.add(key.keyId);
    this.onUnsealed?.({ keyId: key.keyId, pool: key.pool });
  }

  /**
   * The secret of a key this lease holds in `pool`, opened with `pool` (the requested one, never
   * the pool the item names) in the encryption context: a ciphertext sealed for another pool
   * does not open here, whatever a write to the table made the item say. A secret that cannot be
   * opened takes the key out of the pool (and, for a lease or proxied use just written, ends it
   * and gives its use back) and answers undefined; a key service that failed gives the use back
   * and fails the lease.
   */
  private async openSecret(
    key: StoredKey,
    pool: string,
    lease?: { slot: number; nonce: string; proxied?: boolean },
  ): Promise<string | undefined> {
    try {
      const secret = await this.sealer.open(key.secret, { pool, keyId: key.keyId });
      rememberSecret(secret);
      return secret;
    } catch (error) {
      if (error instanceof SecretUndecryptable) {
        const mark = {
          keyId: key.keyId,
          pool,
          sealed: key.secret,
          reason: error.reason,
          at: new Date(this.clock()).toISOString(),
        };
        // With the lease when it is still open, or a proxied use not given back (its use given
        // back in the same write), else alone.
        if (!lease || !(await this.store.markUndecryptable({ ...mark, lease })))
          await this.store.markUndecryptable(mark);
        this.onUndecryptable?.(error);
        return undefined;
      }
      if (lease) {
        const { proxied, ...slot } = lease;
        const failure = { keyId: key.keyId, pool, ...slot, outcome: 'failure' as const, nowMs: this.clock() };
        await (proxied ? this.store.refundProxied(failure) : this.store.tryComplete(failure));
        // Given back, the key sorts by its lease's stamp now, not where a carried page has it.
        this.dropCarried(pool);
      }
      throw error;
    }
  }

  /**
   * The live lease recorded under this Idempotency-Key, with its secret read from the key, or
   * undefined when there is none (or it expired: the key may lease anew). The same key used for
   * another request is refused (400); one whose lease no longer stands (completed, ended,
   * expired, its key no longer leasable in this pool) or that another caller made is refused
   * with IdempotencyConflict. A live lease whose key's secret no longer opens (the key is out
   * of its pool now) cannot be answered: its record is ended and the key may lease anew (left
   * live, it would refuse every new lease under the same key, and the lease loop would retry
   * until it expired).
   */
  private async replay(pool: string, idempotency: IdempotencyRequest): Promise<LeaseGrant | undefined> {
    const record = await this.store.idempotentLease(idempotency.id);
    if (!record || record.expiresAtMs < this.clock() || record.pool !== pool) return undefined;
    if (record.requestHash !== idempotency.requestHash) {
      throw new InvalidRequest(
        'this Idempotency-Key was used for another lease request; use a new key for a new request',
        [{ path: 'headers.idempotency-key', message: 'already used with another request' }],
      );
    }
    if (record.callerDigest !== idempotency.callerDigest) throw new IdempotencyConflict('another caller made it');
    const key = await this.store.get(record.keyId);
    // The record and the key are items of the table: neither is trusted to say which pool a
    // secret belongs to, and a lease that no longer stands is not answered again.
    const refusal = replayRefusal(key, record.leaseId, pool, this.clock());
    if (refusal !== undefined || !key) throw new IdempotencyConflict(refusal ?? 'its key is gone');
    const apiKey = await this.openSecret(key, pool);
    if (apiKey === undefined) {
      await this.store.releaseIdempotentLease(idempotency.id, record.leaseId);
      return undefined;
    }
    return {
      leaseId: record.leaseId,
      keyId: record.keyId,
      apiKey,
      pool,
      usageCount: record.usageCount,
      expiresAt: new Date(record.expiresAtMs).toISOString(),
    };
  }

  /**
   * Tries one key, retrying it while it stays leasable and only our view of it was stale. The
   * write is a lease (open slot, with its Idempotency-Key record when there is one) or a
   * proxied use (`proxied`: the slot written with the PROXIED mark, needing no completion).
   */
  private async attempt(
    keyId: string,
    seenCount: number,
    pool: string,
    seenShard: number,
    maxUses: number,
    write: { ttlMs: number; idempotency?: IdempotencyRequest | undefined; proxied?: boolean },
  ): Promise<{ taken: Taken } | { usable: boolean } | { idempotencyTaken: true }> {
    const { ttlMs, idempotency, proxied } = write;
    this.inFlight.set(keyId, (this.inFlight.get(keyId) ?? 0) + 1);
    try {
      let count = seenCount;
      let shard = seenShard;
      let slot = count % LEASE_SLOTS;
      for (let tries = 0; tries < 3; tries++) {
        const nowMs = this.clock();
        const nonce = newNonce();
        const expiresAtMs = nowMs + ttlMs;
        const leaseId = formatLeaseId({ keyId, slot, expiresAtMs, nonce });
        const result = await this.store.tryLease({
          keyId,
          pool,
          shard,
          seenCount: count,
          maxUses,
          slot,
          nonce,
          expiresAtMs,
          nowMs,
          ...(proxied ? { proxied } : {}),
          ...(idempotency
            ? { idempotency: { ...idempotency, leaseId, keyId, pool, usageCount: count, expiresAtMs } }
            : {}),
        });
        if ('idempotencyTaken' in result) return { idempotencyTaken: true };
        // A refusal whose item holds our own nonce in the slot is our grant: the write applied
        // and only its answer was lost (the SDK retried it, and the retry found it done).
        const ours = result.granted
          ? result.key
          : result.current?.slots[String(slot)]?.nonce === nonce
            ? result.current
            : undefined;
        if (ours) {
          // A lease undone here (its use given back) must not be replayed under its
          // Idempotency-Key: its record goes with it, so a retry, or the next candidate of this
          // very request, records a lease that stands.
          const undone = async (): Promise<void> => {
            if (idempotency) await this.store.releaseIdempotentLease(idempotency.id, leaseId);
          };
          let apiKey: string | undefined;
          try {
            apiKey = await this.openSecret(ours, pool, { slot, nonce, ...(proxied ? { proxied } : {}) });
          } catch (error) {
            await undone();
            throw error;
          }
          // Undecryptable: the key is out of the pool now (and this lease undone): try another.
          if (apiKey === undefined) {
            await undone();
            return { usable: false };
          }
          return {
            taken: {
              leaseId,
              keyId,
              apiKey,
              usageCount: count,
              expiresAt: new Date(expiresAtMs).toISOString(),
              slot,
              nonce,
            },
          };
        }
        this.contendedUntilMs = nowMs + CONTENTION_MEMORY_MS;
        const current = result.granted ? undefined : result.current;
        if (current && !current.sealed) {
          this.warnUnsealed(current);
          // Out of the usage index until `keypool reseal` seals it: left there, it would be tried
          // by every lease, and a page of such keys would hide the pool's sealed keys for good.
          await this.store.setAsideUnsealed({ keyId: current.keyId, pool: current.pool });
        }
        if (!current || !current.sealed || !isLeasable(current, pool, maxUses, nowMs)) return { usable: false };
        const open = freeSlot(current, nowMs, current.usageCount % LEASE_SLOTS);
        if (open === undefined) return { usable: false };
        count = current.usageCount;
        // A key a reshard has just moved is tried once more in its new shard.
        shard = current.shard ?? 0;
        slot = open;
      }
      return { usable: true };
    } finally {
      const left = (this.inFlight.get(keyId) ?? 1) - 1;
      if (left > 0) this.inFlight.set(keyId, left);
      else this.inFlight.delete(keyId);
    }
  }

  /**
   * Completes a lease of the pool: success keeps the use counted, every other outcome refunds
   * it, and invalid_key / out_of_credits / rate_limited change the key's status as
   * reportChange says for who reports: a client's report (the HTTP route) is a hypothesis that
   * rests the key for a bounded time and is spent from the caller's report budget (past it, the
   * report changes no status and the answer says `reportIgnored`); the provider's own answer
   * (proxy mode, in process) is a verdict. Whether the lease is still open — ours, not
   * completed, not expired — is decided by the write's condition on the stored slot, never by
   * the lease id the caller sends. A repeated completion changes nothing and answers with the
   * key as it stands.
   */
  async complete(
    pool: string,
    leaseId: string,
    report: CompletionReport = {},
    reporter: Reporter = { by: 'client' },
  ): Promise<CompletionResult> {
    const policy = await this.pools.require(pool);
    const outcome = report.outcome ?? 'success';
    if (report.retryAfterSeconds !== undefined && outcome !== 'rate_limited') {
      throw new InvalidRequest('retryAfterSeconds goes with the outcome rate_limited', [
        { path: 'body.retryAfterSeconds', message: 'only with outcome rate_limited' },
      ]);
    }
    const ref = parseLeaseId(leaseId);
    if (!ref) throw new LeaseNotFound(leaseId);
    const nowMs = this.clock();
    let change = reportChange(outcome, reporter.by, policy, report.retryAfterSeconds, nowMs);
    let ignored: CompletionResult['reportIgnored'];
    if (change && reporter.by === 'client' && !(await this.spendReport(pool, policy, reporter.caller, nowMs)).spent) {
      change = undefined;
      ignored = 'over_budget';
    }
    const answer = (key: CompletedKey): CompletionResult => ({
      keyId: key.keyId,
      usageCount: key.usageCount,
      status: effectiveStatus(key, nowMs),
      ...(ignored === undefined ? {} : { reportIgnored: ignored }),
    });
    const applied = async (key: CompletedKey): Promise<CompletionResult> => {
      const changed = change !== undefined;
      await this.afterApplied({ pool, keyId: ref.keyId, outcome, by: reporter.by, policy, report, nowMs, changed });
      return answer(key);
    };
    for (let tries = 0; tries < 3; tries++) {
      const result = await this.store.tryComplete({
        keyId: ref.keyId,
        pool,
        slot: ref.slot,
        nonce: ref.nonce,
        outcome,
        nowMs,
        ...(change ? { change } : {}),
      });
      if (result.applied) return applied(result.key);
      const current = result.current;
      const slot = current?.slots[String(ref.slot)];
      if (!current || current.pool !== pool) throw new LeaseNotFound(leaseId);
      if (slot?.nonce !== ref.nonce) {
        // The slot holds another lease, or none (an operator's reset): this lease ended. Past the
        // expiry its id states, it expired and its slot was taken again; the id only chooses the
        // answer here, nothing is written.
        if (ref.expiresAtMs < nowMs) throw new LeaseExpired(leaseId, new Date(ref.expiresAtMs).toISOString());
        throw new LeaseNotFound(leaseId);
      }
      // Closed with this outcome and the key bearing this very change: this write applied and
      // only its answer was lost (the store's client sent it again, and the retry was refused).
      if (slot.outcome === outcome && change && bearsStamp(current, change.stamp)) return applied(current);
      if (slot.outcome !== undefined) return answer(current);
      if (slot.expiresAtMs < nowMs) throw new LeaseExpired(leaseId, new Date(slot.expiresAtMs).toISOString());
      // Ours, open and in time, yet refused: the key's status forbids the change (a more
      // severe or longer rest, a verdict, an operator's disabled). Only the outcome is recorded.
      change = undefined;
    }
    throw new LeaseNotFound(leaseId);
  }

  /**
   * The old increment_usage: +1, atomic, no lease and no cap, on a key of this pool. Spent from
   * the caller's report budget: past it, nothing is counted (ReportBudgetExceeded).
   */
  async increment(pool: string, keyId: string, caller?: string): Promise<{ keyId: string; usageCount: number }> {
    const policy = await this.pools.require(pool);
    if (!KEY_ID_PATTERN.test(keyId)) throw new KeyNotFound(keyId);
    const nowMs = this.clock();
    const spend = await this.spendReport(pool, policy, caller, nowMs);
    if (!spend.spent) throw new ReportBudgetExceeded(pool, policy.maxClientReportsPerMinute, spend.retryAfterSeconds);
    const key = await this.store.increment(pool, keyId, nowMs);
    // The key is more used now: where a carried page holds it, its place there is stale.
    this.dropCarried(pool);
    if (!key) throw new KeyNotFound(keyId);
    return { keyId: key.keyId, usageCount: key.usageCount };
  }

  /** Spends one of the caller's reports in the pool; tells onReportOverBudget when there is none left. */
  private async spendReport(
    pool: string,
    policy: Pick<PoolPolicy, 'maxClientReportsPerMinute'>,
    caller: string | undefined,
    nowMs: number,
  ): Promise<BudgetSpend> {
    const spend = await this.store.spendReport(pool, callerDigest(caller), nowMs, policy.maxClientReportsPerMinute);
    if (!spend.spent) this.onReportOverBudget?.(pool);
    return spend;
  }
}

/** A caller's value for a policy limit: at most the pool's, which is also the default. */
function withinPolicy(field: 'maxUses' | 'ttlSeconds', asked: number | undefined, limit: number, pool: string): number {
  if (asked === undefined) return limit;
  if (asked > limit) {
    const what = field === 'maxUses' ? 'cap' : 'leaseTtlSeconds';
    throw new InvalidRequest(`${field} ${asked} is above pool "${pool}"'s ${what} of ${limit}`, [
      { path: `body.${field}`, message: `at most ${limit} in pool "${pool}"` },
    ]);
  }
  return asked;
}
