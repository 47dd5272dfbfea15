/**
 * Audits a table against a log of what callers were granted: uses past the cap, lost
 * increments, double-counted uses; and audits every refusal callers got against a timeline of
 * what they did, for a 409 answered while a key was certainly usable. Shared by the benchmark
 * and the reliability suite.
 */
import { type DynamoCalls, ScanCommand } from '../../lib/adapters/dynamo-wire.js';

/** What the callers know happened to each key. */
export class GrantLog {
  /** uses that must be counted on the key now (granted and not refunded) */
  readonly counted = new Map<string, number>();
  /** grants of any outcome */
  readonly granted = new Map<string, number>();
  /** writes whose fate the caller could not learn (an error, a timeout): at most +1 each */
  readonly maybeCounted = new Map<string, number>();
  /** refunds whose fate the caller could not learn: at most -1 each */
  readonly maybeRefunded = new Map<string, number>();
  /** unknown grants by lease id, until a caller is answered with that very lease (a replay) */
  private readonly pending = new Map<string, string>();
  /** unknown grants a later answer settled: the caller got that lease after all */
  settled = 0;

  private static bump(map: Map<string, number>, keyId: string, by = 1): void {
    map.set(keyId, (map.get(keyId) ?? 0) + by);
  }

  /** A lease granted; when its id is one whose write was of unknown fate, that write applied: no longer unknown. */
  grant(keyId: string, leaseId?: string): void {
    GrantLog.bump(this.granted, keyId);
    GrantLog.bump(this.counted, keyId);
    if (leaseId !== undefined && this.pending.delete(leaseId)) {
      GrantLog.bump(this.maybeCounted, keyId, -1);
      this.settled++;
    }
  }

  refund(keyId: string): void {
    GrantLog.bump(this.counted, keyId, -1);
  }

  /** A lease write whose fate is unknown (it threw); `leaseId` lets a later grant of that very lease settle it. */
  unknownGrant(keyId: string, leaseId?: string): void {
    GrantLog.bump(this.maybeCounted, keyId);
    if (leaseId !== undefined) this.pending.set(leaseId, keyId);
  }

  unknownRefund(keyId: string): void {
    GrantLog.bump(this.maybeRefunded, keyId);
  }

  get totalGranted(): number {
    return sum(this.granted);
  }

  /** lease writes still of unknown fate: each may or may not have counted a use */
  get totalMaybeCounted(): number {
    return sum(this.maybeCounted);
  }

  /** refunds still of unknown fate */
  get totalMaybeRefunded(): number {
    return sum(this.maybeRefunded);
  }
}

function sum(map: Map<string, number>): number {
  let total = 0;
  for (const n of map.values()) total += n;
  return total;
}

/** A refusal (409 no_usable_key) that the timeline shows was answered while `keyId` was certainly usable. */
export interface FalseRefusal {
  fromMs: number;
  untilMs: number;
  keyId: string;
}

type TimelineEvent =
  | { at: number; kind: 'write' | 'refund' | 'held' | 'released'; keyId: string }
  | { at: number; kind: 'refusal'; untilMs: number };

/**
 * What callers know of when each key's count may have gone up, when it certainly went down, and
 * when a report may have taken the key out of the pool; and when each refusal was asked and
 * answered. A refusal is false when some key of the pool was usable for the whole time the
 * lease was being decided: within the cap, in the pool, with a free slot, from the request's
 * start to its answer. Every bound leans towards "maybe not usable", so a refusal is called false
 * only on certainty:
 *  - the count at any moment of [start, answer] is at most the writes that may have counted a
 *    use and had started before the answer, minus the refunds answered before the start;
 *  - a report that may move the key out (rate_limited: until its cooldown ends after the report
 *    is answered; out_of_credits, invalid_key: for good) holds it from the report's start;
 *  - a key under the cap has a free slot (LEASE_SLOTS exceeds the cap plus one: each open lease
 *    holds a counted use).
 * Times are this process's clock, which is also the broker's.
 */
export class KeyTimeline {
  private readonly events: TimelineEvent[] = [];

  /** A lease write to `keyId` that may have counted a use, started at `atMs`. */
  write(keyId: string, atMs: number): void {
    this.events.push({ at: atMs, kind: 'write', keyId });
  }

  /** A refund of a use of `keyId` that certainly applied, answered at `atMs`. */
  refund(keyId: string, atMs: number): void {
    this.events.push({ at: atMs, kind: 'refund', keyId });
  }

  /** A report that may have taken `keyId` out of the pool from `fromMs` until `untilMs` (Infinity: for good). */
  hold(keyId: string, fromMs: number, untilMs: number): void {
    this.events.push({ at: fromMs, kind: 'held', keyId });
    if (untilMs !== Infinity) this.events.push({ at: untilMs, kind: 'released', keyId });
  }

  /** A lease asked at `fromMs` and refused at `untilMs`. */
  refusal(fromMs: number, untilMs: number): void {
    this.events.push({ at: fromMs, kind: 'refusal', untilMs });
  }

  get refusals(): number {
    return this.events.filter((e) => e.kind === 'refusal').length;
  }

  /**
   * Every refusal answered while some key of `keyIds` was certainly usable under `maxUses`,
   * with one such key. A sweep in time order: the keys certainly usable at a refusal's start are
   * kept as a set, and the few writes and reports that started while it was being decided rule
   * out the keys they touch.
   */
  falseRefusals(keyIds: Iterable<string>, maxUses: number): FalseRefusal[] {
    // Events at the same instant: a write or hold before a refusal (it may have been first).
    const order = { write: 0, held: 0, refund: 1, released: 1, refusal: 2 } as const;
    const events = [...this.events].sort((a, b) => a.at - b.at || order[a.kind] - order[b.kind]);
    const count = new Map<string, number>();
    const holds = new Map<string, number>();
    const usable = new Set(keyIds);
    const update = (keyId: string): void => {
      if ((count.get(keyId) ?? 0) <= maxUses && (holds.get(keyId) ?? 0) === 0) usable.add(keyId);
      else usable.delete(keyId);
    };
    const found: FalseRefusal[] = [];
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as TimelineEvent;
      if (event.kind !== 'refusal') {
        const by = event.kind === 'write' || event.kind === 'refund' ? count : holds;
        by.set(event.keyId, (by.get(event.keyId) ?? 0) + (event.kind === 'write' || event.kind === 'held' ? 1 : -1));
        update(event.keyId);
        continue;
      }
      // Writes and reports that started while this lease was decided, before its answer.
      const extra = new Map<string, number>();
      const ruledOut = new Set<string>();
      for (let j = i + 1; j < events.length && (events[j] as TimelineEvent).at < event.untilMs; j++) {
        const later = events[j] as TimelineEvent;
        if (later.kind === 'held') ruledOut.add(later.keyId);
        if (later.kind !== 'write') continue;
        const writes = (extra.get(later.keyId) ?? 0) + 1;
        extra.set(later.keyId, writes);
        if ((count.get(later.keyId) ?? 0) + writes > maxUses) ruledOut.add(later.keyId);
      }
      // At most ruledOut.size + 1 steps: the window touches few keys.
      for (const keyId of usable) {
        if (ruledOut.has(keyId)) continue;
        found.push({ fromMs: event.at, untilMs: event.untilMs, keyId });
        break;
      }
    }
    return found;
  }
}

export interface AuditResult {
  keys: number;
  /** uses certainly counted (stored, or logged and not possibly refunded) beyond maxUses + 1 on a key */
  pastCap: number;
  /** counted uses the table does not show */
  lostIncrements: number;
  /** uses the table shows that no caller was granted (or a completion counted twice) */
  doubleCounted: number;
  violations: number;
  /** keys whose stored count is above maxUses + 1 */
  keysOverCap: number;
}

/** Every key of the pool with its stored count (a full scan, outside any meter). */
export async function storedCounts(client: DynamoCalls, tableName: string, pool: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let start: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: '#pool = :pool',
        ProjectionExpression: 'keyId, usageCount',
        ExpressionAttributeNames: { '#pool': 'pool' },
        ExpressionAttributeValues: { ':pool': pool },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of out.Items ?? []) counts.set(item.keyId as string, item.usageCount as number);
    start = out.LastEvaluatedKey;
  } while (start);
  return counts;
}

/** Compares stored counts with the log; every discrepancy is a violation. */
export function audit(counts: Map<string, number>, log: GrantLog, maxUses: number): AuditResult {
  const result: AuditResult = {
    keys: counts.size,
    pastCap: 0,
    lostIncrements: 0,
    doubleCounted: 0,
    violations: 0,
    keysOverCap: 0,
  };
  const ids = new Set([...counts.keys(), ...log.granted.keys()]);
  for (const keyId of ids) {
    const stored = counts.get(keyId) ?? 0;
    const counted = log.counted.get(keyId) ?? 0;
    const low = counted - (log.maybeRefunded.get(keyId) ?? 0);
    const high = counted + (log.maybeCounted.get(keyId) ?? 0);
    // Certainly counted: a refund of unknown fate may have applied (and the use been leased again).
    result.pastCap += Math.max(0, Math.max(low, stored) - (maxUses + 1));
    if (stored > maxUses + 1) result.keysOverCap++;
    result.lostIncrements += Math.max(0, low - stored);
    result.doubleCounted += Math.max(0, stored - high);
  }
  result.violations = result.pastCap + result.lostIncrements + result.doubleCounted;
  return result;
}
