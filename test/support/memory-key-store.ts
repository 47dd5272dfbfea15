/**
 * A KeyStore in memory for unit tests: the same conditions as the DynamoDB adapter, applied
 * with the domain's own rules (lib/domain/rules.ts), and the same paging quirks (a Limit
 * counts the items read before the filter). It has no index lag: tests that need one wrap it.
 * Every answer is a copy, as a database would give.
 */
import type {
  Candidate,
  CompletionAttempt,
  CompletionAttemptResult,
  KeyStore,
  LeaseAttempt,
  LeaseAttemptResult,
  ScanPage,
  StoredKey,
} from '../../lib/domain/key-store.js';
import { effectiveStatus, inUsageIndex, isLeasable, isSlotFree, outcomeStatusChange, refundsUse } from '../../lib/domain/rules.js';
import type { KeyStatus } from '../../lib/domain/types.js';
import { USAGE_TIER, usageSortKey, usageSortKeyBound } from '../../lib/table.js';

interface Row {
  key: StoredKey;
  /** the usage index's sort key, as the adapter keeps it */
  usk: number;
}

const copy = (key: StoredKey): StoredKey => structuredClone(key);

export class MemoryKeyStore implements KeyStore {
  private readonly rows = new Map<string, Row>();
  /** every call by method name, for tests that count requests */
  readonly calls: Record<string, number> = {};

  private count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  /** The stored key itself (not a copy), for tests that arrange a state directly. */
  peek(keyId: string): StoredKey | undefined {
    return this.rows.get(keyId)?.key;
  }

  insert(key: StoredKey): Promise<{ inserted: boolean; key: StoredKey }> {
    this.count('insert');
    const existing = this.rows.get(key.keyId);
    if (existing) return Promise.resolve({ inserted: false, key: copy(existing.key) });
    const stampMs = Date.parse(key.lastUsedAt ?? key.createdAt);
    this.rows.set(key.keyId, { key: copy(key), usk: usageSortKey(key.usageCount, stampMs) });
    return Promise.resolve({ inserted: true, key: copy(key) });
  }

  get(keyId: string): Promise<StoredKey | undefined> {
    this.count('get');
    const row = this.rows.get(keyId);
    return Promise.resolve(row ? copy(row.key) : undefined);
  }

  candidates(pool: string, maxUses: number, limit: number, nowMs: number): Promise<Candidate[]> {
    this.count('candidates');
    const bound = usageSortKeyBound(maxUses);
    const range = [...this.rows.values()]
      .filter((row) => row.key.pool === pool && inUsageIndex(row.key.status) && row.usk < bound)
      .sort((a, b) => a.usk - b.usk);
    // Page by `limit` read items, filter out cooling keys, and go on only while nothing was found.
    for (let start = 0; start < range.length; start += limit) {
      const found = range
        .slice(start, start + limit)
        .filter((row) => (row.key.cooldownUntil ?? 0) <= nowMs)
        .map((row) => ({ keyId: row.key.keyId, usageCount: row.key.usageCount }));
      if (found.length > 0) return Promise.resolve(found);
    }
    return Promise.resolve([]);
  }

  tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    this.count('tryLease');
    const row = this.rows.get(attempt.keyId);
    if (!row) return Promise.resolve({ granted: false, current: undefined });
    const { key } = row;
    const ok =
      inUsageIndex(key.status) &&
      key.usageCount === attempt.seenCount &&
      isLeasable(key, attempt.pool, attempt.maxUses, attempt.nowMs) &&
      isSlotFree(key.slots[String(attempt.slot)], attempt.nowMs);
    if (!ok) return Promise.resolve({ granted: false, current: copy(key) });
    key.usageCount = attempt.seenCount + 1;
    row.usk = usageSortKey(key.usageCount, attempt.nowMs);
    key.lastUsedAt = new Date(attempt.nowMs).toISOString();
    key.status = 'active';
    delete key.cooldownUntil;
    key.slots[String(attempt.slot)] = { nonce: attempt.nonce, expiresAtMs: attempt.expiresAtMs };
    return Promise.resolve({ granted: true, key: copy(key) });
  }

  tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    this.count('tryComplete');
    const row = this.rows.get(attempt.keyId);
    if (!row) return Promise.resolve({ applied: false, current: undefined });
    const { key } = row;
    const slot = key.slots[String(attempt.slot)];
    const change = attempt.applyStatus ? outcomeStatusChange(attempt.outcome) : undefined;
    const refused = slot?.nonce !== attempt.nonce || slot.outcome !== undefined || (change?.from !== undefined && !change.from.includes(key.status));
    if (refused) return Promise.resolve({ applied: false, current: copy(key) });
    slot.outcome = attempt.outcome;
    if (refundsUse(attempt.outcome)) {
      key.usageCount -= 1;
      row.usk -= USAGE_TIER;
    }
    if (change) {
      key.status = change.to;
      if (change.to === 'cooling') key.cooldownUntil = attempt.cooldownUntilMs;
    }
    return Promise.resolve({ applied: true, key: copy(key) });
  }

  increment(keyId: string, nowMs: number): Promise<StoredKey | undefined> {
    this.count('increment');
    const row = this.rows.get(keyId);
    if (!row) return Promise.resolve(undefined);
    row.key.usageCount += 1;
    row.usk += USAGE_TIER;
    row.key.lastUsedAt = new Date(nowMs).toISOString();
    return Promise.resolve(copy(row.key));
  }

  setStatus(keyId: string, status: Extract<KeyStatus, 'active' | 'disabled'>): Promise<StoredKey | undefined> {
    this.count('setStatus');
    const row = this.rows.get(keyId);
    if (!row) return Promise.resolve(undefined);
    row.key.status = status;
    delete row.key.cooldownUntil;
    return Promise.resolve(copy(row.key));
  }

  scan(filter: { pool?: string; status?: KeyStatus; nowMs: number }, limit: number, start?: Record<string, unknown>): Promise<ScanPage> {
    this.count('scan');
    const all = [...this.rows.values()].map((row) => row.key).sort((a, b) => a.keyId.localeCompare(b.keyId));
    const from = start ? all.findIndex((key) => key.keyId > String(start.keyId)) : 0;
    const read = from < 0 ? [] : all.slice(from, from + limit);
    const last = read[read.length - 1];
    const more = from >= 0 && from + limit < all.length;
    const keys = read.filter(
      (key) => (filter.pool === undefined || key.pool === filter.pool) && (filter.status === undefined || effectiveStatus(key, filter.nowMs) === filter.status),
    );
    return Promise.resolve({ keys: keys.map(copy), next: more && last ? { keyId: last.keyId } : undefined });
  }
}
