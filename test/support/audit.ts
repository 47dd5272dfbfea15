/**
 * Audits a table against a log of what callers were granted: uses past the cap, lost
 * increments, double-counted uses. Shared by the benchmark and the reliability suite.
 */
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';

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

  private static bump(map: Map<string, number>, keyId: string, by = 1): void {
    map.set(keyId, (map.get(keyId) ?? 0) + by);
  }

  grant(keyId: string): void {
    GrantLog.bump(this.granted, keyId);
    GrantLog.bump(this.counted, keyId);
  }

  refund(keyId: string): void {
    GrantLog.bump(this.counted, keyId, -1);
  }

  unknownGrant(keyId: string): void {
    GrantLog.bump(this.maybeCounted, keyId);
  }

  unknownRefund(keyId: string): void {
    GrantLog.bump(this.maybeRefunded, keyId);
  }

  get totalGranted(): number {
    let total = 0;
    for (const n of this.granted.values()) total += n;
    return total;
  }
}

export interface AuditResult {
  keys: number;
  /** counted uses beyond maxUses + 1 on a key */
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
export async function storedCounts(
  client: DynamoDBDocumentClient,
  tableName: string,
  pool: string,
): Promise<Map<string, number>> {
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
    result.pastCap += Math.max(0, Math.max(counted, stored) - (maxUses + 1));
    if (stored > maxUses + 1) result.keysOverCap++;
    result.lostIncrements += Math.max(0, low - stored);
    result.doubleCounted += Math.max(0, stored - high);
  }
  result.violations = result.pastCap + result.lostIncrements + result.doubleCounted;
  return result;
}
