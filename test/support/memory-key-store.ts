/**
 * The stores in memory, for unit tests: KeyStore and BalanceStore over one map of keys, and
 * PoolStore. The store contract (test/contract/) holds them to what the DynamoDB stores do.
 * Each condition is stated with the domain's own rules (lib/domain/rules.ts), and a key sits
 * in the usage order as the table keeps it: sorted by its count and its last lease (else its
 * import), in its home shard's index partition while its status keeps it there and no lease
 * set it aside. There is no index lag: tests that need one wrap the store. Every answer is a
 * copy, as a database's is.
 */
import type {
  CandidatePage,
  CandidateQuery,
  CompletionAttempt,
  IdempotentLease,
  LeaseAttempt,
  ProxiedRefund,
} from '../../lib/ports/lease-store.js';
import type { KeyMove, KeyPlacement } from '../../lib/ports/reshard-store.js';
import type { KeyStore } from '../../lib/ports/key-store.js';
import type { KeyUpdate, Retirement } from '../../lib/ports/key-admin-store.js';
import type { KeyRecord, LeaseSlot, StoredKey } from '../../lib/domain/types.js';
import type { PoolStore } from '../../lib/ports/pool-store.js';
import type { SecretReplacement } from '../../lib/ports/reseal-store.js';
import type { UndecryptableMark } from '../../lib/ports/undecryptable.js';
import { withoutSecret } from '../../lib/domain/keys.js';
import {
  balanceStamp,
  inUsageIndex,
  isLeasable,
  isOperatorStatus,
  isSlotFree,
  isTemporary,
  operatorStamp,
  refundsUse,
  reportApplies,
  restoredStatus,
  statusStamp,
} from '../../lib/domain/rules.js';
import {
  type Outcome,
  POOL_DEFAULTS,
  type PoolPolicy,
  type PoolSettings,
  PROXIED,
  type StatusStamp,
} from '../../lib/domain/types.js';
import type { BalanceStore, BalanceWrite } from '../../lib/ports/balance-store.js';
import { budgetWindow, secondsToNextWindow } from '../../lib/domain/report-budget.js';
import { usageSortKey, usageSortKeyBound } from '../../lib/table.js';

interface Row {
  key: StoredKey;
  /** the LRU stamp of the usage sort key: the last lease, else the import (an increment keeps it) */
  stamp: number;
  /** a plain key a lease took out of the usage index */
  aside?: boolean;
}

const home = (key: StoredKey): number => key.shard ?? 0;
/** The shard whose index partition holds the key; undefined while it is out of the index. */
const indexedIn = (row: Row): number | undefined =>
  inUsageIndex(row.key.status, row.key.cooldownUntil !== undefined) && !row.aside ? home(row.key) : undefined;
/** Gives the key the status `stamp`: who set it, why, when and until when, each dropped where the stamp has none. */
const stamp = (key: StoredKey, to: StatusStamp): void => {
  // In place: callers hold the stored object.
  delete key.statusBy;
  delete key.statusReason;
  delete key.statusAt;
  delete key.cooldownUntil;
  Object.assign(key, {
    status: to.status,
    ...(to.by === undefined ? {} : { statusBy: to.by }),
    ...(to.reason === undefined ? {} : { statusReason: to.reason }),
    ...(to.at === undefined ? {} : { statusAt: to.at }),
    ...(to.until === undefined ? {} : { cooldownUntil: to.until }),
  });
};
const sortKey = (row: Row): number => usageSortKey(row.key.usageCount, row.stamp);
const placement = (row: Row): KeyPlacement => ({
  keyId: row.key.keyId,
  pool: row.key.pool,
  shard: home(row.key),
  indexedIn: indexedIn(row),
});
/** The key's slot of `lease` while that lease holds it open (`proxied`: while it holds the PROXIED mark). */
const openSlot = (key: StoredKey, lease: { slot: number; nonce: string; proxied?: boolean }): LeaseSlot | undefined => {
  const slot = key.slots[String(lease.slot)];
  return slot?.nonce === lease.nonce && slot.outcome === (lease.proxied ? PROXIED : undefined) ? slot : undefined;
};
/** Closes a lease's slot with its outcome, giving its use back when the outcome does. */
const close = (key: StoredKey, slot: LeaseSlot, outcome: Outcome): void => {
  slot.outcome = outcome;
  if (refundsUse(outcome)) key.usageCount -= 1;
};
type Ports = KeyStore & BalanceStore;
type Answer<M extends keyof Ports> = Awaited<ReturnType<Ports[M]>>;

export class MemoryKeyStore implements KeyStore, BalanceStore {
  private readonly rows = new Map<string, Row>();
  private readonly idempotent = new Map<string, IdempotentLease>();
  /** reports spent per pool, caller and window */
  private readonly budgets = new Map<string, number>();
  /** every call by method name, for tests that count requests */
  readonly calls: Record<string, number> = {};

  /** The stored key itself (not a copy), for tests that arrange a state directly. */
  peek(keyId: string): StoredKey | undefined {
    return this.rows.get(keyId)?.key;
  }

  /** Counts a call to `method` and answers a copy of `value`, typed as the port's answer. */
  private answer<M extends keyof Ports>(method: M, value: Answer<M>): Promise<Answer<M>> {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    return Promise.resolve(structuredClone(value));
  }

  /** The key's row, if it is one of `pool`'s. */
  private row(keyId: string, pool: string): Row | undefined {
    const row = this.rows.get(keyId);
    return row?.key.pool === pool ? row : undefined;
  }

  insert(key: StoredKey) {
    const existing = this.rows.get(key.keyId)?.key;
    if (existing) return this.answer('insert', { inserted: false, key: withoutSecret(existing) });
    this.rows.set(key.keyId, { key: structuredClone(key), stamp: Date.parse(key.lastUsedAt ?? key.createdAt) });
    return this.answer('insert', { inserted: true, key: withoutSecret(key) });
  }

  get(keyId: string) {
    return this.answer('get', this.rows.get(keyId)?.key);
  }

  record(pool: string, keyId: string) {
    const row = this.row(keyId, pool);
    return this.answer('record', row && withoutSecret(row.key));
  }

  candidates(...[pool, shard, maxUses, limit, nowMs, skip]: CandidateQuery) {
    const range = [...this.rows.values()]
      .filter((row) => row.key.pool === pool && indexedIn(row) === shard && sortKey(row) < usageSortKeyBound(maxUses))
      .sort((a, b) => sortKey(a) - sortKey(b));
    const page: CandidatePage = { candidates: [] };
    // As the index Query: pages of `limit` keys read, cooling and skipped ones passed, on only while none is found.
    let start = 0;
    for (; start < range.length && page.candidates.length === 0; start += limit) {
      for (const { key } of range.slice(start, start + limit)) {
        if ((key.cooldownUntil ?? 0) > nowMs)
          page.coolingUntilMs = Math.min(page.coolingUntilMs ?? Infinity, key.cooldownUntil ?? 0);
        else if (!skip?.has(key.keyId)) page.candidates.push({ keyId: key.keyId, usageCount: key.usageCount });
      }
    }
    if (start < range.length) page.more = true;
    return this.answer('candidates', page);
  }

  tryLease(attempt: LeaseAttempt) {
    const record = attempt.idempotency;
    const held = record && this.idempotent.get(record.id);
    // The record's condition is judged first, as DynamoDB reports a cancelled transaction.
    if (held && held.expiresAtMs >= attempt.nowMs)
      return this.answer('tryLease', { granted: false, idempotencyTaken: true });
    const row = this.rows.get(attempt.keyId);
    const key = row?.key;
    const leasable =
      row !== undefined &&
      key !== undefined &&
      indexedIn(row) === attempt.shard &&
      key.usageCount === attempt.seenCount &&
      isLeasable(key, attempt.pool, attempt.maxUses, attempt.nowMs) &&
      isSlotFree(key.slots[String(attempt.slot)], attempt.nowMs) &&
      key.sealed;
    if (!leasable) return this.answer('tryLease', { granted: false, current: key });
    if (record) this.idempotent.set(record.id, { ...record });
    Object.assign(key, { usageCount: attempt.seenCount + 1, lastUsedAt: new Date(attempt.nowMs).toISOString() });
    stamp(key, { status: 'active' });
    key.slots[String(attempt.slot)] = {
      nonce: attempt.nonce,
      expiresAtMs: attempt.expiresAtMs,
      ...(attempt.proxied ? { outcome: PROXIED } : {}),
    };
    row.stamp = attempt.nowMs;
    return this.answer('tryLease', { granted: true, key });
  }

  idempotentLease(id: string) {
    return this.answer('idempotentLease', this.idempotent.get(id));
  }

  releaseIdempotentLease(id: string, leaseId: string) {
    const record = this.idempotent.get(id);
    if (record?.leaseId === leaseId) record.expiresAtMs = 0;
    return this.answer('releaseIdempotentLease', record?.leaseId === leaseId);
  }

  tryComplete(attempt: CompletionAttempt) {
    return this.closeSlot('tryComplete', attempt, false);
  }

  refundProxied(refund: ProxiedRefund) {
    return this.closeSlot('refundProxied', refund, true);
  }

  /** A completion, or (`proxied`) a proxied use's refund: the same rules but the slot's mark and no expiry. */
  private closeSlot(method: 'tryComplete' | 'refundProxied', attempt: CompletionAttempt, proxied: boolean) {
    const row = this.rows.get(attempt.keyId);
    const key = row?.key;
    const slot = key && openSlot(key, { ...attempt, proxied });
    const { change } = attempt;
    const refused =
      !row ||
      !key ||
      !slot ||
      key.pool !== attempt.pool ||
      (!proxied && slot.expiresAtMs < attempt.nowMs) ||
      (change && !reportApplies(key, change, attempt.nowMs));
    if (refused)
      return this.answer(method, {
        applied: false,
        current: key && { ...withoutSecret(key), slots: key.slots },
      });
    close(key, slot, attempt.outcome);
    // A verdict without an end takes the key out of the index (stamp); a rest keeps it there.
    if (change) stamp(key, change.stamp);
    const { keyId, usageCount, status, cooldownUntil } = key;
    const resting = isTemporary(status) && cooldownUntil !== undefined ? { cooldownUntil } : {};
    return this.answer(method, { applied: true, key: { keyId, usageCount, status, ...resting } });
  }

  spendReport(pool: string, caller: string, nowMs: number, max: number) {
    const window = `${pool}#${caller}#${budgetWindow(nowMs)}`;
    const spent = this.budgets.get(window) ?? 0;
    if (spent >= max)
      return this.answer('spendReport', { spent: false, retryAfterSeconds: secondsToNextWindow(nowMs) });
    this.budgets.set(window, spent + 1);
    return this.answer('spendReport', { spent: true });
  }

  increment(pool: string, keyId: string, nowMs: number) {
    const key = this.row(keyId, pool)?.key;
    if (key) Object.assign(key, { usageCount: key.usageCount + 1, lastUsedAt: new Date(nowMs).toISOString() });
    return this.answer('increment', key && { keyId, usageCount: key.usageCount });
  }

  markUndecryptable(mark: UndecryptableMark) {
    const key = this.row(mark.keyId, mark.pool)?.key;
    const slot = key && mark.lease && openSlot(key, mark.lease);
    if (!key?.sealed || key.secret !== mark.sealed || (mark.lease && !slot))
      return this.answer('markUndecryptable', false);
    if (slot) close(key, slot, 'failure');
    if (key.status !== 'undecryptable') {
      // The status it had is kept for a revive.
      key.prior = statusStamp(key);
      const reason = mark.reason === undefined ? {} : { reason: mark.reason };
      stamp(key, { status: 'undecryptable', by: 'sealing', ...reason, at: mark.at ?? new Date().toISOString() });
    }
    return this.answer('markUndecryptable', true);
  }

  setAsideUnsealed({ keyId, pool }: { keyId: string; pool: string }) {
    const row = this.row(keyId, pool);
    const setAside = row !== undefined && !row.key.sealed && indexedIn(row) !== undefined;
    if (setAside) row.aside = true;
    return this.answer('setAsideUnsealed', setAside);
  }

  replaceSecret(replacement: SecretReplacement) {
    const { from, seenStatus, maskedKey, revive } = replacement;
    const row = this.row(replacement.keyId, replacement.pool);
    const key = row?.key;
    const reindex = !from.sealed && seenStatus !== undefined && inUsageIndex(seenStatus);
    const replaced =
      row !== undefined &&
      key !== undefined &&
      key.sealed === from.sealed &&
      key.secret === from.secret &&
      (!reindex || key.status === seenStatus) &&
      (!revive ||
        (key.status === 'undecryptable' &&
          JSON.stringify(key.prior ?? null) === JSON.stringify(replacement.prior ?? null)));
    if (!replaced) return this.answer('replaceSecret', false);
    Object.assign(key, { secret: replacement.sealed, sealed: true });
    if (maskedKey !== undefined && !key.maskedKey) key.maskedKey = maskedKey;
    if (reindex) delete row.aside;
    if (revive) {
      // Back to the status it had before it was marked.
      stamp(key, restoredStatus(key.prior));
      delete key.prior;
    }
    return this.answer('replaceSecret', true);
  }

  update(update: KeyUpdate) {
    const row = this.row(update.keyId, update.pool);
    if (!row) return this.answer('update', { applied: false, current: undefined });
    const { key } = row;
    const moved = update.from && (key.status !== update.from.status || key.statusBy !== update.from.by);
    if ((update.count && key.usageCount !== update.count.seen) || moved)
      return this.answer('update', { applied: false, current: withoutSecret(key) });
    if (update.status !== undefined) {
      // An operator's status: back into the index at the key's home, or out of it.
      stamp(key, operatorStamp(update.status, update.at ?? new Date().toISOString()));
      delete key.prior;
      delete row.aside;
    }
    if (update.count) {
      // A new count ends the key's open leases.
      key.usageCount = update.count.to;
      key.slots = {};
    }
    return this.answer('update', { applied: true, key: withoutSecret(key) });
  }

  poolKeys(pool: string, limit: number, afterKeyId?: string) {
    const { rows, lastKeyId } = this.page(pool, limit, afterKeyId);
    return this.answer('poolKeys', { keys: rows.map((row) => withoutSecret(row.key)), lastKeyId });
  }

  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string) {
    const { rows, lastKeyId } = this.page(pool, limit, afterKeyId);
    // A retired key has no secret left: no sweep that opens secrets looks at it.
    const keys = rows.filter((row) => row.key.status !== 'retired').map((row) => row.key);
    return this.answer('poolKeysWithSecrets', { keys, lastKeyId });
  }

  keyStates(pool: string, limit: number, afterKeyId?: string) {
    const { rows, lastKeyId } = this.page(pool, limit, afterKeyId);
    const keys = rows.map(({ key: { keyId, status, usageCount, cooldownUntil } }) => ({
      keyId,
      status,
      usageCount,
      ...(cooldownUntil === undefined ? {} : { cooldownUntil }),
    }));
    return this.answer('keyStates', { keys, lastKeyId });
  }

  retire(retirement: Retirement) {
    const row = this.row(retirement.keyId, retirement.pool);
    if (!row || row.key.status === 'retired' || !row.key.sealed)
      return this.answer('retire', { retired: false, current: row && withoutSecret(row.key) });
    const { key } = row;
    // Out of the index, its secret destroyed; its count and lease slots stay.
    stamp(key, { status: 'retired', by: 'operator', reason: retirement.reason, at: retirement.at });
    delete key.prior;
    Object.assign(key, { secret: '', sealed: false });
    return this.answer('retire', { retired: true, key: withoutSecret(key) });
  }

  revive(key: StoredKey, seenPool: string) {
    const row = this.rows.get(key.keyId);
    const revived = row?.key.pool === seenPool && row.key.status === 'retired';
    if (row && revived) {
      const kept = row.key;
      stamp(kept, { status: 'active' });
      Object.assign(kept, { pool: key.pool, secret: key.secret, sealed: true });
      if (key.label !== undefined) kept.label = key.label;
      if (key.shard === undefined) delete kept.shard;
      else kept.shard = key.shard;
      delete row.aside;
    }
    return this.answer('revive', { revived, key: row && withoutSecret(row.key) });
  }

  replaceUndecryptable(key: StoredKey, seen: KeyRecord) {
    const row = this.row(key.keyId, key.pool);
    const replaced =
      row !== undefined &&
      row.key.status === 'undecryptable' &&
      JSON.stringify(row.key.prior ?? null) === JSON.stringify(seen.prior ?? null);
    if (row && replaced) {
      Object.assign(row.key, { secret: key.secret, sealed: true });
      stamp(row.key, restoredStatus(row.key.prior));
      delete row.key.prior;
    }
    return this.answer('replaceUndecryptable', { replaced, key: row && withoutSecret(row.key) });
  }

  placements(pool: string, limit: number, afterKeyId?: string) {
    const { rows, lastKeyId } = this.page(pool, limit, afterKeyId);
    return this.answer('placements', { keys: rows.map(placement), lastKeyId });
  }

  rehome(move: KeyMove) {
    const row = this.row(move.keyId, move.pool);
    const now = row && placement(row);
    if (!row || now?.shard !== move.from.shard || now.indexedIn !== move.from.indexedIn)
      return this.answer('rehome', { moved: false, current: now });
    if (move.to === 0) delete row.key.shard;
    else row.key.shard = move.to;
    return this.answer('rehome', { moved: true });
  }

  write(write: BalanceWrite) {
    const row = this.rows.get(write.keyId);
    const to = balanceStamp(write.change, write.checkedAt);
    const refused =
      !row ||
      (to !== undefined &&
        (row.key.status !== write.seenStatus ||
          row.key.statusBy !== write.seenBy ||
          isOperatorStatus(row.key) ||
          (to.status === 'active' && row.key.statusAt !== undefined && row.key.statusAt > write.checkedAt)));
    if (!row || refused) return this.answer('write', { applied: false, current: row && withoutSecret(row.key) });
    const { key } = row;
    if (write.credits !== undefined) Object.assign(key, { credits: write.credits, creditsCheckedAt: write.checkedAt });
    if (to) stamp(key, to);
    if (to?.status === 'active') delete row.aside;
    return this.answer('write', { applied: true, key: withoutSecret(key) });
  }

  /** One page of the pool in key-id order; as a DynamoDB Query with a Limit, a full page names its last key. */
  private page(pool: string, limit: number, afterKeyId: string | undefined): { rows: Row[]; lastKeyId?: string } {
    const rows = [...this.rows.values()]
      .filter(({ key }) => key.pool === pool && (afterKeyId === undefined || key.keyId > afterKeyId))
      .sort((a, b) => (a.key.keyId < b.key.keyId ? -1 : 1))
      .slice(0, limit);
    return { rows, lastKeyId: rows.length === limit ? rows.at(-1)?.key.keyId : undefined };
  }
}

/** Pools in memory, with the DynamoDB adapter's create-or-change semantics. */
export class MemoryPoolStore implements PoolStore {
  private readonly pools = new Map<string, PoolPolicy>();
  /** reads by the directory, for tests of the policy cache */
  gets = 0;

  get(pool: string): Promise<PoolPolicy | undefined> {
    this.gets++;
    return Promise.resolve(structuredClone(this.pools.get(pool)));
  }

  put(pool: string, settings: Partial<PoolSettings>, nowIso: string): Promise<PoolPolicy> {
    const existing = this.pools.get(pool);
    const policy: PoolPolicy = {
      ...POOL_DEFAULTS,
      ...existing,
      ...settings,
      pool,
      createdAt: existing?.createdAt ?? nowIso,
      updatedAt: nowIso,
    };
    // A change of shards on an existing pool: leases read the widest layout until a reshard ends.
    if (existing && settings.shards !== undefined && settings.shards !== existing.shards) {
      policy.previousShards = Math.max(existing.shards, existing.previousShards ?? 0);
      policy.shardsChangedAt = nowIso;
    }
    this.pools.set(pool, policy);
    return Promise.resolve({ ...policy });
  }

  finishReshard(pool: string, layout: { shards: number; previousShards: number }): Promise<boolean> {
    const policy = this.pools.get(pool);
    const finished = policy?.shards === layout.shards && policy.previousShards === layout.previousShards;
    if (finished) {
      delete policy.previousShards;
      delete policy.shardsChangedAt;
    }
    return Promise.resolve(finished);
  }

  remove(pool: string): Promise<boolean> {
    return Promise.resolve(this.pools.delete(pool));
  }

  ensure(pool: string, nowIso: string): Promise<PoolPolicy> {
    const existing = this.pools.get(pool);
    return existing ? Promise.resolve({ ...existing }) : this.put(pool, {}, nowIso);
  }

  list(): Promise<PoolPolicy[]> {
    return Promise.resolve(
      [...this.pools.values()].map((p) => ({ ...p })).sort((a, b) => a.pool.localeCompare(b.pool)),
    );
  }
}
