/**
 * The client's use cases: lease a key, complete the lease, count a use without one. They
 * depend only on the KeyStore port; which key to try is decided here, whether a write may
 * happen is decided by the store's conditional writes.
 */
import { KeyNotFound, LeaseExpired, LeaseNotFound, NoUsableKey } from './errors.js';
import type { KeyStore, StoredKey } from './key-store.js';
import { KEY_ID_PATTERN, toKeyView } from './keys.js';
import { formatLeaseId, LEASE_SLOTS, newNonce, parseLeaseId } from './lease-id.js';
import { isLeasable, isSlotFree } from './rules.js';
import {
  type CompletionResult,
  DEFAULT_COOLDOWN_SECONDS,
  DEFAULT_LEASE_TTL_SECONDS,
  DEFAULT_MAX_USES,
  DEFAULT_POOL,
  type LeaseGrant,
  type LeaseRequest,
  type Outcome,
} from './types.js';

export interface LeasingOptions {
  store: KeyStore;
  clock?: () => number;
  /** a number in [0, 1): which candidate a contending broker tries (tests pass a seeded one) */
  random?: () => number;
  cooldownSeconds?: number;
  /** candidates read per index query */
  candidateLimit?: number;
  /** index queries one lease may make before it concludes no key is usable */
  maxRounds?: number;
}

/** How long a lost race keeps a broker spreading its first tries (see Leasing.lease). */
export const CONTENTION_MEMORY_MS = 2_000;

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

export class Leasing {
  private readonly store: KeyStore;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly cooldownMs: number;
  private readonly candidateLimit: number;
  private readonly maxRounds: number;
  /** Keys this process is trying to lease right now: concurrent leases here try other keys first. */
  private readonly inFlight = new Map<string, number>();
  /**
   * Until when this broker spreads its first try over the candidate page instead of taking the
   * head: set by a lost race, so only callers that are actually contending leave strict LRU.
   */
  private contendedUntilMs = 0;

  constructor(options: LeasingOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.cooldownMs = (options.cooldownSeconds ?? DEFAULT_COOLDOWN_SECONDS) * 1000;
    this.candidateLimit = options.candidateLimit ?? 25;
    this.maxRounds = options.maxRounds ?? 20;
  }

  /**
   * Grants the least-used, then least recently used, leasable key of the pool whose count is
   * <= maxUses, counting the use in the same conditional write. Refuses with NoUsableKey only
   * when the index holds no candidate or every candidate is, on inspection, not leasable.
   */
  async lease(request: LeaseRequest = {}): Promise<LeaseGrant> {
    const pool = request.pool ?? DEFAULT_POOL;
    const maxUses = request.maxUses ?? DEFAULT_MAX_USES;
    const ttlMs = (request.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS) * 1000;
    for (let round = 0; round < this.maxRounds; round++) {
      const nowMs = this.clock();
      const candidates = await this.store.candidates(pool, maxUses, this.candidateLimit, nowMs);
      if (candidates.length === 0) break;
      // Strict LRU for the first try: the head of the index, unless this process is already
      // trying it or lost a race moments ago. Callers in other processes (other Lambda
      // containers) read the same head, so once contention is seen the first try is a random
      // candidate of the page; after a lost race, a random other candidate.
      const free = candidates.filter((c) => !this.inFlight.has(c.keyId));
      const busy = candidates.filter((c) => this.inFlight.has(c.keyId));
      const spread = nowMs < this.contendedUntilMs;
      let next = (spread ? takeRandom(free, this.random) : free.shift()) ?? busy.shift();
      let stillUsable = false;
      while (next) {
        const outcome = await this.attempt(next.keyId, next.usageCount, pool, maxUses, ttlMs);
        if ('grant' in outcome) return outcome.grant;
        stillUsable ||= outcome.usable;
        next = takeRandom(free, this.random) ?? takeRandom(busy, this.random);
      }
      // Every candidate of this page was seen not leasable: the index lagged; a fresh query
      // either finds others or nothing. If some were leasable but lost to races, go again.
      if (!stillUsable && candidates.length < this.candidateLimit) break;
    }
    throw new NoUsableKey(pool, maxUses);
  }

  /** Tries one key, retrying it while it stays leasable and only our view of it was stale. */
  private async attempt(
    keyId: string,
    seenCount: number,
    pool: string,
    maxUses: number,
    ttlMs: number,
  ): Promise<{ grant: LeaseGrant } | { usable: boolean }> {
    this.inFlight.set(keyId, (this.inFlight.get(keyId) ?? 0) + 1);
    try {
      let count = seenCount;
      let slot = count % LEASE_SLOTS;
      for (let tries = 0; tries < 3; tries++) {
        const nowMs = this.clock();
        const nonce = newNonce();
        const expiresAtMs = nowMs + ttlMs;
        const result = await this.store.tryLease({ keyId, pool, seenCount: count, maxUses, slot, nonce, expiresAtMs, nowMs });
        if (result.granted) {
          return {
            grant: {
              leaseId: formatLeaseId({ keyId, slot, expiresAtMs, nonce }),
              keyId,
              apiKey: result.key.apiKey,
              pool,
              usageCount: count,
              expiresAt: new Date(expiresAtMs).toISOString(),
            },
          };
        }
        this.contendedUntilMs = nowMs + CONTENTION_MEMORY_MS;
        const current = result.current;
        if (!current || !isLeasable(current, pool, maxUses, nowMs)) return { usable: false };
        const open = freeSlot(current, nowMs, current.usageCount % LEASE_SLOTS);
        if (open === undefined) return { usable: false };
        count = current.usageCount;
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
   * Completes a lease: success keeps the use counted, every other outcome refunds it, and
   * invalid_key / out_of_credits / rate_limited change the key's status. A repeated completion
   * changes nothing and answers with the key as it stands.
   */
  async complete(leaseId: string, outcome: Outcome = 'success'): Promise<CompletionResult> {
    const ref = parseLeaseId(leaseId);
    if (!ref) throw new LeaseNotFound(leaseId);
    const nowMs = this.clock();
    const answer = (key: StoredKey): CompletionResult => ({ keyId: key.keyId, usageCount: key.usageCount, status: toKeyView(key, nowMs).status });
    const slotOf = (key: StoredKey | undefined) => key?.slots[String(ref.slot)];
    if (nowMs > ref.expiresAtMs) {
      // Past expiry the use stays counted; a completion recorded in time is still answered.
      const key = await this.store.get(ref.keyId);
      const slot = slotOf(key);
      if (key && slot?.nonce === ref.nonce && slot.outcome !== undefined) return answer(key);
      throw new LeaseExpired(leaseId, new Date(ref.expiresAtMs).toISOString());
    }
    let applyStatus = true;
    for (let tries = 0; tries < 2; tries++) {
      const result = await this.store.tryComplete({
        keyId: ref.keyId,
        slot: ref.slot,
        nonce: ref.nonce,
        outcome,
        nowMs,
        cooldownUntilMs: nowMs + this.cooldownMs,
        applyStatus,
      });
      if (result.applied) return answer(result.key);
      const slot = slotOf(result.current);
      if (!result.current || slot?.nonce !== ref.nonce) throw new LeaseNotFound(leaseId);
      if (slot.outcome !== undefined) return answer(result.current);
      // Open but refused: the key's status forbids the change the outcome asks for.
      applyStatus = false;
    }
    throw new LeaseNotFound(leaseId);
  }

  /** The old increment_usage: +1, atomic, no lease and no cap. */
  async increment(keyId: string): Promise<{ keyId: string; usageCount: number }> {
    const key = KEY_ID_PATTERN.test(keyId) ? await this.store.increment(keyId, this.clock()) : undefined;
    if (!key) throw new KeyNotFound(keyId);
    return { keyId: key.keyId, usageCount: key.usageCount };
  }
}
