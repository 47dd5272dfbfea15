/**
 * The chaos suite's callers and audit, shared by the run through a DynamoDB restart
 * (chaos.test.ts) and the run through the fault proxy (chaos-faults.test.ts). 64 callers lease
 * and complete with random outcomes, abandon some leases and repeat some completions, and write
 * down everything they learn: the grants and refunds (GrantLog) and when each happened
 * (KeyTimeline). Afterwards every abandoned lease is completed late, and the table and every
 * refusal are audited against what the callers wrote down.
 *
 * Size: KEYPOOL_RELIABILITY=full runs 100,000 leases by 64 callers (npm run
 * test:reliability); the default is a short run for `npm test` (a few hundred leases by 16
 * callers: the pool is then small enough to drain in seconds). KEYPOOL_CHAOS_LEASES and
 * KEYPOOL_CHAOS_CALLERS override the two.
 */
import type { DynamoCalls } from '../../lib/adapters/dynamo-wire.js';
import { expect } from 'vitest';
import { DynamoKeyStore } from '../../lib/adapters/dynamo-key-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { Broker } from '../../lib/use-cases/broker.js';
import { KeypoolError, LeaseExpired, LeaseNotFound, NoUsableKey, StoreThrottled } from '../../lib/domain/errors.js';
import type { LeaseAttempt, LeaseAttemptResult } from '../../lib/ports/lease-store.js';
import { formatLeaseId } from '../../lib/domain/lease-id.js';
import { refundsUse, reportChange, type ReportPolicy } from '../../lib/domain/rules.js';
import { type LeaseGrant, type Outcome, POOL_DEFAULTS } from '../../lib/domain/types.js';
import { mapLimit } from '../../lib/shared/map-limit.js';
import { audit, type AuditResult, type FalseRefusal, GrantLog, KeyTimeline, storedCounts } from '../support/audit.js';
import { testSealer } from '../support/sealing.js';
import type { AppliedCompletion, WriteWitness } from '../support/write-witness.js';
import { seedKeys } from '../support/seed.js';
import { registerSecret } from './log-capture.js';

export const FULL = process.env.KEYPOOL_RELIABILITY === 'full';
/** The number of leases of a run: 100,000 at full size, else `short` (KEYPOOL_CHAOS_LEASES overrides both). */
export const chaosLeases = (short: number): number =>
  Number(process.env.KEYPOOL_CHAOS_LEASES ?? (FULL ? 100_000 : short));
export const CALLERS = Number(process.env.KEYPOOL_CHAOS_CALLERS ?? (FULL ? 64 : 16));
export const MAX_USES = 3;
/** Each test of a chaos file may run this long. */
export const CHAOS_TIMEOUT_MS = FULL ? 7_200_000 : 300_000;
const TTL_SECONDS = 5;
const COOLDOWN_SECONDS = 1;
/** How long a caller's report rests a key in the chaos pool (lib/domain/rules.ts, reportChange). */
const REPORT_POLICY: ReportPolicy = {
  cooldownSeconds: COOLDOWN_SECONDS,
  maxClientCooldownSeconds: POOL_DEFAULTS.maxClientCooldownSeconds,
};
const ABANDON_SHARE = 0.1;
const REPEAT_SHARE = 0.05;
/** The pool for `leases` leases: the expected counted share of leases (10% abandoned plus the successes of the rest), in keys of four uses, with room to spare. */
export const keysFor = (leases: number): number => Math.ceil(leases * 0.23) + CALLERS;
/** Consecutive refusals after which a draining caller stops: the pool has been dry for a while. */
const DRY_STREAK = 5;
const OUTCOMES: [Outcome, number][] = [
  ['success', 0.78],
  ['failure', 0.1],
  ['rate_limited', 0.08],
  ['out_of_credits', 0.02],
  ['invalid_key', 0.02],
];

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function randomOutcome(): Outcome {
  let x = Math.random();
  for (const [outcome, weight] of OUTCOMES) {
    if ((x -= weight) < 0) return outcome;
  }
  return 'success';
}

/**
 * The DynamoDB store, writing down every lease write that may have counted a use: when it
 * started (the timeline), and, when its outcome never reached the caller, that its use may or
 * may not be counted (the log; a later grant of that very lease settles it) and its nonce.
 */
class RecordingStore extends DynamoKeyStore {
  constructor(
    options: ConstructorParameters<typeof DynamoKeyStore>[0],
    private readonly log: GrantLog,
    private readonly timeline: KeyTimeline,
    /** nonces of lease writes whose outcome the caller did not learn: it threw, or a replay stood for it */
    private readonly unknown: Set<string>,
  ) {
    super(options);
  }

  override async tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    const startedMs = Date.now();
    let result: LeaseAttemptResult;
    try {
      result = await super.tryLease(attempt);
    } catch (error) {
      this.timeline.write(attempt.keyId, startedMs);
      this.log.unknownGrant(attempt.keyId, formatLeaseId(attempt));
      this.unknown.add(attempt.nonce);
      throw error;
    }
    if ('idempotencyTaken' in result) {
      // Taken by this very write, for all this caller knows: the SDK sent the transaction again
      // after an answer it lost, and the retry met the record the first send wrote. A replay of
      // this lease settles it; if none answers (the record expired before the caller's retry
      // got through, or every retry failed), its use stays counted, as an abandoned lease's.
      this.log.unknownGrant(attempt.keyId, formatLeaseId(attempt));
      this.unknown.add(attempt.nonce);
    }
    // Refused only when the key's item, as the refusal returned it, holds another lease in the
    // slot (or none). Granted, refused with our own nonce (an SDK retry after a lost answer: the
    // broker takes it as granted), an Idempotency-Key taken (by our own earlier try, for all
    // this caller knows), a refusal without the item: the write may have counted a use.
    const refused =
      !result.granted &&
      'current' in result &&
      result.current !== undefined &&
      result.current.slots[String(attempt.slot)]?.nonce !== attempt.nonce;
    if (!refused) this.timeline.write(attempt.keyId, startedMs);
    return result;
  }
}

export interface ChaosRunOptions {
  /** the callers' client (through a fault proxy, or one that gives up fast during an outage) */
  client: DynamoCalls;
  /** seeding and the audit: straight to DynamoDB Local, patient */
  patient: DynamoCalls;
  tableName: string;
  pool: string;
  shards: number;
  /** leases to grant (the pool has keysFor(leases) keys) */
  leases: number;
  /** the share of leases asked with an Idempotency-Key, retried with that key until they are answered (default 0) */
  idempotentShare?: number;
  /**
   * After the leases, every caller goes on leasing until it meets DRY_STREAK refusals in a row:
   * the pool is drained, so the run ends with shards holding a key or two, where a refusal is
   * most easily false.
   */
  drain?: boolean;
  /**
   * What DynamoDB applied, seen on the wire by the fault proxy: the run is then also audited
   * exactly against it, and its refusals against what was applied rather than what callers
   * could tell.
   */
  witness?: WriteWitness;
}

export interface ChaosStats {
  granted: number;
  attempts: number;
  refusals: number;
  errors: number;
  /** lease requests answered StoreThrottled (among errors) */
  throttled: number;
  /** lease retries that sent the Idempotency-Key of a request whose answer had been lost */
  idempotentRetries: number;
  expiredCompletions: number;
  /** completions answered lease_not_found with no error before it (see ExactAudit.notFound) */
  unexpected: number;
  maxCallMs: number;
  maxGrantCount: number;
  repeats: number;
}

/** The run audited against what DynamoDB applied (the witness): exact, where the log has bounds. */
export interface ExactAudit {
  /** keys whose stored count is not the lease writes applied minus the refunds applied */
  miscounted: number;
  /** leases answered to a caller whose write never applied: a use handed out uncounted */
  grantsUncounted: number;
  /** leases answered twice */
  grantedTwice: number;
  /** lease writes applied that no caller was answered and none failed on: a use counted in silence */
  silentWrites: number;
  /** refunds a caller was told applied that did not */
  refundsLost: number;
  /** refunds applied that no caller asked for (or was told were refused) */
  refundsUnasked: number;
  /** leases completed twice */
  completedTwice: number;
  /** applied writes the witness could not read: its reading of the adapter's requests is out of date */
  unclassified: number;
  /** lease writes whose outcome the caller did not learn (it failed, or a replay stood for it) */
  unknown: {
    total: number;
    /** applied, and a replay answered that very lease: then completed like any other */
    replayed: number;
    /** applied and never answered: the use stays counted, its lease expires */
    orphaned: number;
    /** never applied: nothing counted */
    notApplied: number;
  };
  /** completions whose refund the caller could not tell: applied, or not */
  unknownRefunds: { applied: number; notApplied: number };
  /**
   * Completions answered lease_not_found with no error the caller saw: `applied` when the SDK
   * had retried a completion that applied and lost its answer, and the slot was leased again
   * meanwhile (so the retry met another lease); `unexplained` otherwise (none may be).
   */
  notFound: { applied: number; unexplained: number };
}

export interface ChaosAudit {
  /** the stored counts against the log */
  counts: AuditResult;
  /** the stored counts and the callers' knowledge against what DynamoDB applied (with a witness) */
  exact?: ExactAudit;
  /** refusals answered while some key was certainly usable (none may be) */
  falseRefusals: FalseRefusal[];
  /** lease writes that threw and were never settled: each may or may not have counted a use */
  unknownGrants: number;
  /** lease writes that threw and were settled by a replay of that very lease */
  settledGrants: number;
  /** completions whose refund may or may not have applied */
  unknownRefunds: number;
  /** abandoned leases that answered lease_expired when completed after their expiry */
  lateExpired: number;
}

export class ChaosRun {
  readonly stats: ChaosStats = {
    granted: 0,
    attempts: 0,
    refusals: 0,
    errors: 0,
    throttled: 0,
    idempotentRetries: 0,
    expiredCompletions: 0,
    unexpected: 0,
    maxCallMs: 0,
    maxGrantCount: 0,
    repeats: 0,
  };
  readonly abandoned: LeaseGrant[] = [];
  private readonly log = new GrantLog();
  /** what the callers can tell of each key's count and status over time */
  private readonly timeline = new KeyTimeline();
  /** when each refused lease was asked and answered */
  private readonly refusals: [number, number][] = [];
  /** nonces of the leases answered to callers, with how often */
  private readonly granted = new Map<string, number>();
  private readonly unknownLeases = new Set<string>();
  /** nonces of the leases whose refund a caller was told applied, or could not tell */
  private readonly refunded = new Set<string>();
  private readonly maybeRefunded = new Set<string>();
  /** nonces of the leases whose completion answered lease_not_found with no error before it */
  private readonly notFound = new Set<string>();
  private readonly store: RecordingStore;
  private readonly poolStore: DynamoPoolStore;
  private keyIds: string[] = [];

  constructor(private readonly options: ChaosRunOptions) {
    this.store = new RecordingStore(
      { client: options.client, tableName: options.tableName },
      this.log,
      this.timeline,
      this.unknownLeases,
    );
    this.poolStore = new DynamoPoolStore({ client: options.client, tableName: options.tableName });
  }

  /** Writes the pool's keysFor(leases) fresh keys and its policy, straight to DynamoDB Local. */
  async seed(): Promise<void> {
    this.keyIds = await seedKeys({
      client: this.options.patient,
      tableName: this.options.tableName,
      pool: this.options.pool,
      count: keysFor(this.options.leases),
      sealer: testSealer(),
      onSecret: registerSecret,
      policy: {
        maxUses: MAX_USES,
        leaseTtlSeconds: TTL_SECONDS,
        cooldownSeconds: COOLDOWN_SECONDS,
        shards: this.options.shards,
        // Every caller here is one identity: a budget of 30 reports a minute would leave most
        // reports without effect, and the keys they rest are what makes a refusal hard to judge.
        maxClientReportsPerMinute: 10_000,
      },
    });
  }

  /**
   * Runs CALLERS callers until the leases are granted (or twice that many requests were
   * answered); draining, until each caller meets DRY_STREAK refusals in a row.
   */
  async callers(): Promise<void> {
    await Promise.all(Array.from({ length: CALLERS }, (_, i) => this.caller(i)));
  }

  private async timed<T>(work: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await work();
    } finally {
      this.stats.maxCallMs = Math.max(this.stats.maxCallMs, performance.now() - t);
    }
  }

  private async caller(index: number): Promise<void> {
    const { pool, leases, idempotentShare = 0, drain = false } = this.options;
    const { stats } = this;
    let dryStreak = 0;
    const going = (): boolean =>
      drain ? dryStreak < DRY_STREAK : stats.granted < leases && stats.attempts - stats.errors < leases * 2;
    const broker = new Broker({ store: this.store, poolStore: this.poolStore, sealer: testSealer() });
    let serial = 0;
    /** the Idempotency-Key of the request being asked, kept through errors (its answer may have been lost) */
    let idempotencyKey: string | undefined;
    // Errors do not end the run (outages and faults are part of it); a dry pool would, after 2x
    // the leases (draining: once this caller has seen it dry for a while).
    while (going()) {
      stats.attempts++;
      if (idempotencyKey === undefined && Math.random() < idempotentShare)
        idempotencyKey = `chaos-${index}-${serial++}`;
      else if (idempotencyKey !== undefined) stats.idempotentRetries++;
      const askedMs = Date.now();
      let grant: LeaseGrant;
      try {
        grant = await this.timed(() => broker.lease(pool, {}, idempotencyKey));
      } catch (error) {
        if (error instanceof NoUsableKey) {
          dryStreak++;
          stats.refusals++;
          this.refusals.push([askedMs, Date.now()]);
          idempotencyKey = undefined;
        } else {
          stats.errors++;
          if (error instanceof StoreThrottled) stats.throttled++;
        }
        await sleep(error instanceof NoUsableKey ? 20 : 100);
        continue;
      }
      idempotencyKey = undefined;
      dryStreak = 0;
      stats.granted++;
      stats.maxGrantCount = Math.max(stats.maxGrantCount, grant.usageCount);
      this.log.grant(grant.keyId, grant.leaseId);
      const nonce = nonceOf(grant.leaseId);
      this.granted.set(nonce, (this.granted.get(nonce) ?? 0) + 1);
      if (Math.random() < ABANDON_SHARE) {
        this.abandoned.push(grant);
        continue;
      }
      await this.complete(broker, grant, randomOutcome());
      if (Math.random() < REPEAT_SHARE) {
        // A client retrying a completion it already made: whatever it answers, nothing may change.
        stats.repeats++;
        const outcome = randomOutcome();
        const startedMs = Date.now();
        await this.timed(() => broker.complete(pool, grant.leaseId, { outcome })).catch(() => undefined);
        this.holdFor(grant.keyId, outcome, startedMs);
      }
    }
  }

  /** Completes until answered; writes down the refund (certain or not) and how long the report may hold the key out. */
  private async complete(broker: Broker, grant: LeaseGrant, outcome: Outcome): Promise<void> {
    const startedMs = Date.now();
    try {
      await this.completeUntilAnswered(broker, grant, outcome);
    } finally {
      this.holdFor(grant.keyId, outcome, startedMs);
    }
  }

  private async completeUntilAnswered(broker: Broker, grant: LeaseGrant, outcome: Outcome): Promise<void> {
    const { stats } = this;
    let errored = false;
    const giveUp = Date.now() + 120_000;
    for (;;) {
      try {
        await this.timed(() => broker.complete(this.options.pool, grant.leaseId, { outcome }));
        if (refundsUse(outcome)) {
          this.log.refund(grant.keyId);
          this.timeline.refund(grant.keyId, Date.now());
          this.refunded.add(nonceOf(grant.leaseId));
        }
        return;
      } catch (error) {
        if (error instanceof LeaseExpired || error instanceof LeaseNotFound) {
          // Documented policy: an expired lease's use stays counted. After an attempt of
          // unknown fate the slot may have been completed and reused, so a refund may have
          // happened; so too when the attempt was the SDK's own, after an answer it lost.
          const unexplained = error instanceof LeaseNotFound && !errored;
          if (unexplained) {
            stats.unexpected++;
            this.notFound.add(nonceOf(grant.leaseId));
          }
          stats.expiredCompletions++;
          if ((errored || unexplained) && refundsUse(outcome)) {
            this.log.unknownRefund(grant.keyId);
            this.maybeRefunded.add(nonceOf(grant.leaseId));
          }
          return;
        }
        stats.errors++;
        errored = true;
        if (Date.now() > giveUp) throw error;
        await sleep(100);
      }
    }
  }

  /** A report asked from `startedMs` may hold the key out of the pool: until its rest ends (a client's report always ends). */
  private holdFor(keyId: string, outcome: Outcome, startedMs: number): void {
    // The rest is counted from the broker's clock when the report was applied; from its answer is later still.
    const until = reportChange(outcome, 'client', REPORT_POLICY, undefined, Date.now())?.stamp.until;
    if (until !== undefined) this.timeline.hold(keyId, startedMs, until + 50);
  }

  /**
   * Once every abandoned lease has expired, completes each (a few at a time) and audits: the
   * stored counts against the log, every refusal against the timeline.
   */
  async finish(): Promise<ChaosAudit> {
    const lastExpiry = Math.max(0, ...this.abandoned.map((g) => Date.parse(g.expiresAt)));
    await sleep(Math.max(0, lastExpiry - Date.now() + 200));
    const lateBroker = new Broker({ store: this.store, poolStore: this.poolStore, sealer: testSealer() });
    // Bounded: 10,000 late completions at once overran the impatient client's 3 s timeout.
    // Each is asked again after an error that is not an answer (a busy table, a lost
    // connection), as a client would; an answer other than lease_expired counts against it.
    const late = await mapLimit(this.abandoned, 16, async (g) => {
      for (let tries = 1; ; tries++) {
        try {
          await lateBroker.complete(this.options.pool, g.leaseId, { outcome: randomOutcome() });
          return false;
        } catch (error) {
          if (error instanceof LeaseExpired) return true;
          if (error instanceof KeypoolError && !(error instanceof StoreThrottled)) return false;
          if (tries >= 5) return false;
          await sleep(100);
        }
      }
    });
    const { patient, tableName, pool, witness } = this.options;
    const stored = await storedCounts(patient, tableName, pool);
    // With a witness, refusals are checked against what DynamoDB applied; else against what callers could tell.
    const timeline = witness ? new KeyTimeline() : this.timeline;
    witness?.feed(timeline);
    for (const [from, until] of this.refusals) timeline.refusal(from, until);
    return {
      counts: audit(stored, this.log, MAX_USES),
      ...(witness ? { exact: this.exactAudit(witness, stored) } : {}),
      falseRefusals: timeline.falseRefusals(this.keyIds, MAX_USES),
      unknownGrants: this.log.totalMaybeCounted,
      settledGrants: this.log.settled,
      unknownRefunds: this.log.totalMaybeRefunded,
      lateExpired: late.filter(Boolean).length,
    };
  }

  /** The figures every chaos run prints, with `extra` ones of its own. */
  summary(result: ChaosAudit, runSeconds: number, extra: Record<string, unknown>): Record<string, unknown> {
    const { stats } = this;
    return {
      leases: stats.granted,
      attempts: stats.attempts,
      runSeconds,
      keys: keysFor(this.options.leases),
      ...extra,
      refusals: stats.refusals,
      falseRefusals: result.falseRefusals.length,
      errorsSeen: stats.errors,
      maxCallMs: Math.round(stats.maxCallMs),
      abandoned: this.abandoned.length,
      lateExpired: result.lateExpired,
      expiredCompletions: stats.expiredCompletions,
      repeats: stats.repeats,
      unknownGrants: result.unknownGrants,
      settledGrants: result.settledGrants,
      unknownRefunds: result.unknownRefunds,
      audit: result.counts,
    };
  }

  /**
   * What every chaos run must keep: the leases granted, none past the cap, every key accounted,
   * no count lost or doubled, no false refusal, every abandoned lease expired counted.
   */
  expectInvariants(result: ChaosAudit): void {
    const { stats } = this;
    expect(stats.granted).toBeGreaterThanOrEqual(this.options.leases);
    expect(stats.maxGrantCount).toBeLessThanOrEqual(MAX_USES);
    expect(result.counts.keys).toBe(keysFor(this.options.leases));
    expect(result.counts).toMatchObject({
      pastCap: 0,
      lostIncrements: 0,
      doubleCounted: 0,
      violations: 0,
      keysOverCap: 0,
    });
    expect(result.falseRefusals).toEqual([]);
    expect(this.abandoned.length).toBeGreaterThan(0);
    expect(result.lateExpired).toBe(this.abandoned.length);
  }

  private exactAudit(witness: WriteWitness, stored: Map<string, number>): ExactAudit {
    const expected = new Map<string, number>();
    const bump = (keyId: string, by: number): void => void expected.set(keyId, (expected.get(keyId) ?? 0) + by);
    for (const lease of witness.leases.values()) bump(lease.keyId, 1);
    const refunds = [...witness.completions].filter(([, done]) => done.refund).map(([nonce]) => nonce);
    for (const nonce of refunds) bump((witness.completions.get(nonce) as AppliedCompletion).keyId, -1);
    const applied = (nonce: string): boolean => witness.leases.has(nonce);
    const refundApplied = new Set(refunds);
    const unknown = [...this.unknownLeases];
    const unknownRefunds = [...this.maybeRefunded];
    return {
      miscounted: [...new Set([...stored.keys(), ...expected.keys()])].filter(
        (keyId) => (stored.get(keyId) ?? 0) !== (expected.get(keyId) ?? 0),
      ).length,
      grantsUncounted: [...this.granted.keys()].filter((nonce) => !applied(nonce)).length,
      grantedTwice: [...this.granted.values()].filter((n) => n > 1).length,
      silentWrites: [...witness.leases.keys()].filter(
        (nonce) => !this.granted.has(nonce) && !this.unknownLeases.has(nonce),
      ).length,
      refundsLost: [...this.refunded].filter((nonce) => !refundApplied.has(nonce)).length,
      refundsUnasked: refunds.filter((nonce) => !this.refunded.has(nonce) && !this.maybeRefunded.has(nonce)).length,
      completedTwice: witness.completedTwice,
      unclassified: witness.unclassified,
      unknown: {
        total: unknown.length,
        replayed: unknown.filter((nonce) => applied(nonce) && this.granted.has(nonce)).length,
        orphaned: unknown.filter((nonce) => applied(nonce) && !this.granted.has(nonce)).length,
        notApplied: unknown.filter((nonce) => !applied(nonce)).length,
      },
      unknownRefunds: {
        applied: unknownRefunds.filter((nonce) => refundApplied.has(nonce)).length,
        notApplied: unknownRefunds.filter((nonce) => !refundApplied.has(nonce)).length,
      },
      notFound: {
        applied: [...this.notFound].filter((nonce) => witness.completions.has(nonce)).length,
        unexplained: [...this.notFound].filter((nonce) => !witness.completions.has(nonce)).length,
      },
    };
  }
}

/** The nonce of a lease id (the last of its four parts). */
function nonceOf(leaseId: string): string {
  return leaseId.slice(leaseId.lastIndexOf('.') + 1);
}
