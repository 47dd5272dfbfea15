/**
 * A KeyStore and a PoolStore in memory for unit tests: the same conditions as the DynamoDB
 * adapters, applied with the domain's own rules (lib/domain/rules.ts), and the same paging
 * quirks (a Limit counts the items read before the filter). It has no index lag: tests that
 * need one wrap it. Every answer is a copy, as a database would give. A key's index partition
 * is its home shard (`shard`) while its status keeps it in the index, as the adapter's writes
 * keep `upk` equal to `ush`.
 */
import type {
  CandidatePage,
  CompletionAttempt,
  CompletionAttemptResult,
  IdempotentLease,
  KeyMove,
  KeyMoveResult,
  KeyPageRead,
  KeyPlacement,
  KeyStore,
  KeyUpdate,
  KeyUpdateResult,
  LeaseAttempt,
  LeaseAttemptResult,
  PoolStore,
  SecretReplacement,
  StoredKey,
  UndecryptableMark,
} from '../../lib/domain/key-store.js';
import { withoutSecret } from '../../lib/domain/keys.js';
import { inUsageIndex, isLeasable, isSlotFree, outcomeStatusChange, refundsUse } from '../../lib/domain/rules.js';
import { POOL_DEFAULTS, type KeyRecord, type PoolPolicy, type PoolSettings } from '../../lib/domain/types.js';
import { usageSortKey, usageSortKeyBound, usageSortKeyShift } from '../../lib/table.js';

interface Row {
  key: StoredKey;
  /** the usage index's sort key, as the adapter keeps it */
  usk: number;
  /** a plain key a lease took out of the usage index (the adapter removes its `upk`) */
  aside?: boolean;
}

const copy = (key: StoredKey): StoredKey => structuredClone(key);
const homeOf = (key: StoredKey): number => key.shard ?? 0;

function placementOf(key: StoredKey): KeyPlacement {
  return {
    keyId: key.keyId,
    pool: key.pool,
    shard: homeOf(key),
    indexedIn: inUsageIndex(key.status) ? homeOf(key) : undefined,
  };
}

export class MemoryKeyStore implements KeyStore {
  private readonly rows = new Map<string, Row>();
  private readonly idempotent = new Map<string, IdempotentLease>();
  /** every call by method name, for tests that count requests */
  readonly calls: Record<string, number> = {};

  protected count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  /** The stored key itself (not a copy), for tests that arrange a state directly. */
  peek(keyId: string): StoredKey | undefined {
    return this.rows.get(keyId)?.key;
  }

  insert(key: StoredKey): Promise<{ inserted: boolean; key: KeyRecord }> {
    this.count('insert');
    const existing = this.rows.get(key.keyId);
    if (existing) return Promise.resolve({ inserted: false, key: withoutSecret(copy(existing.key)) });
    const stampMs = Date.parse(key.lastUsedAt ?? key.createdAt);
    this.rows.set(key.keyId, { key: copy(key), usk: usageSortKey(key.usageCount, stampMs) });
    return Promise.resolve({ inserted: true, key: withoutSecret(copy(key)) });
  }

  get(keyId: string): Promise<StoredKey | undefined> {
    this.count('get');
    const row = this.rows.get(keyId);
    return Promise.resolve(row ? copy(row.key) : undefined);
  }

  record(pool: string, keyId: string): Promise<KeyRecord | undefined> {
    this.count('record');
    const row = this.rows.get(keyId);
    return Promise.resolve(row?.key.pool === pool ? withoutSecret(copy(row.key)) : undefined);
  }

  candidates(pool: string, shard: number, maxUses: number, limit: number, nowMs: number): Promise<CandidatePage> {
    this.count('candidates');
    const bound = usageSortKeyBound(maxUses);
    const range = [...this.rows.values()]
      .filter(
        (row) =>
          row.key.pool === pool &&
          inUsageIndex(row.key.status) &&
          !row.aside &&
          homeOf(row.key) === shard &&
          row.usk < bound,
      )
      .sort((a, b) => a.usk - b.usk);
    const page: CandidatePage = { candidates: [] };
    // Page by `limit` read items, skip cooling keys, and go on only while nothing was found.
    let start = 0;
    for (; start < range.length && page.candidates.length === 0; start += limit) {
      for (const { key } of range.slice(start, start + limit)) {
        if ((key.cooldownUntil ?? 0) > nowMs)
          page.coolingUntilMs = Math.min(page.coolingUntilMs ?? Infinity, key.cooldownUntil ?? 0);
        else page.candidates.push({ keyId: key.keyId, usageCount: key.usageCount });
      }
    }
    if (start < range.length) page.more = true;
    return Promise.resolve(page);
  }

  tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    this.count('tryLease');
    const row = this.rows.get(attempt.keyId);
    if (!row) return Promise.resolve({ granted: false, current: undefined });
    const { key } = row;
    const ok =
      inUsageIndex(key.status) &&
      !row.aside &&
      homeOf(key) === attempt.shard &&
      key.usageCount === attempt.seenCount &&
      isLeasable(key, attempt.pool, attempt.maxUses, attempt.nowMs) &&
      isSlotFree(key.slots[String(attempt.slot)], attempt.nowMs) &&
      key.sealed;
    if (!ok) return Promise.resolve({ granted: false, current: copy(key) });
    // The lease and its idempotency record together, the record only where none lives.
    const record = attempt.idempotency;
    if (record) {
      const held = this.idempotent.get(record.id);
      if (held && held.expiresAtMs >= attempt.nowMs) return Promise.resolve({ granted: false, idempotencyTaken: true });
      this.idempotent.set(record.id, { ...record });
    }
    key.usageCount = attempt.seenCount + 1;
    row.usk = usageSortKey(key.usageCount, attempt.nowMs);
    key.lastUsedAt = new Date(attempt.nowMs).toISOString();
    key.status = 'active';
    delete key.cooldownUntil;
    key.slots[String(attempt.slot)] = { nonce: attempt.nonce, expiresAtMs: attempt.expiresAtMs };
    return Promise.resolve({ granted: true, key: copy(key) });
  }

  idempotentLease(id: string): Promise<IdempotentLease | undefined> {
    this.count('idempotentLease');
    const record = this.idempotent.get(id);
    return Promise.resolve(record ? { ...record } : undefined);
  }

  releaseIdempotentLease(id: string, leaseId: string): Promise<boolean> {
    this.count('releaseIdempotentLease');
    const record = this.idempotent.get(id);
    if (record?.leaseId !== leaseId) return Promise.resolve(false);
    record.expiresAtMs = 0;
    return Promise.resolve(true);
  }

  tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    this.count('tryComplete');
    const row = this.rows.get(attempt.keyId);
    if (!row) return Promise.resolve({ applied: false, current: undefined });
    const { key } = row;
    const slot = key.slots[String(attempt.slot)];
    const change = attempt.statusChange === 'none' ? undefined : outcomeStatusChange(attempt.outcome);
    const extendsCooldown = change?.to === 'cooling' && attempt.statusChange === 'apply';
    const refused =
      key.pool !== attempt.pool ||
      slot?.nonce !== attempt.nonce ||
      slot.outcome !== undefined ||
      slot.expiresAtMs < attempt.nowMs ||
      (change !== undefined && !change.from.includes(key.status)) ||
      (extendsCooldown && key.cooldownUntil !== undefined && key.cooldownUntil >= attempt.cooldownUntilMs);
    if (refused) return Promise.resolve({ applied: false, current: copy(key) });
    slot.outcome = attempt.outcome;
    if (refundsUse(attempt.outcome)) {
      // Down one tier only from a count the sort key spells out (refundSortKey in the Dynamo store).
      row.usk += usageSortKeyShift(key.usageCount, key.usageCount - 1);
      key.usageCount -= 1;
    }
    if (change) {
      key.status = change.to;
      if (extendsCooldown) key.cooldownUntil = attempt.cooldownUntilMs;
    }
    return Promise.resolve({ applied: true, key: withoutSecret(copy(key)) });
  }

  markUndecryptable(mark: UndecryptableMark): Promise<boolean> {
    this.count('markUndecryptable');
    const row = this.rows.get(mark.keyId);
    if (row?.key.pool !== mark.pool || !row.key.sealed || row.key.secret !== mark.sealed) return Promise.resolve(false);
    const slot = mark.lease ? row.key.slots[String(mark.lease.slot)] : undefined;
    if (mark.lease && (slot?.nonce !== mark.lease.nonce || slot.outcome !== undefined)) return Promise.resolve(false);
    if (slot) {
      slot.outcome = 'failure';
      row.usk += usageSortKeyShift(row.key.usageCount, row.key.usageCount - 1);
      row.key.usageCount -= 1;
    }
    row.key.status = 'undecryptable';
    delete row.key.cooldownUntil;
    return Promise.resolve(true);
  }

  setAsideUnsealed(key: { keyId: string; pool: string }): Promise<boolean> {
    this.count('setAsideUnsealed');
    const row = this.rows.get(key.keyId);
    if (row?.key.pool !== key.pool || row.key.sealed || !inUsageIndex(row.key.status) || row.aside)
      return Promise.resolve(false);
    row.aside = true;
    return Promise.resolve(true);
  }

  replaceSecret(replacement: SecretReplacement): Promise<boolean> {
    this.count('replaceSecret');
    const row = this.rows.get(replacement.keyId);
    const same =
      row?.key.pool === replacement.pool &&
      row.key.sealed === replacement.from.sealed &&
      row.key.secret === replacement.from.secret;
    if (!row || !same || (replacement.revive && row.key.status !== 'undecryptable')) return Promise.resolve(false);
    const reindex =
      !replacement.from.sealed && replacement.seenStatus !== undefined && inUsageIndex(replacement.seenStatus);
    if (reindex && row.key.status !== replacement.seenStatus) return Promise.resolve(false);
    row.key.secret = replacement.sealed;
    row.key.sealed = true;
    if (reindex) delete row.aside;
    if (replacement.maskedKey !== undefined && !row.key.maskedKey) row.key.maskedKey = replacement.maskedKey;
    if (replacement.revive) row.key.status = 'active';
    return Promise.resolve(true);
  }

  increment(pool: string, keyId: string, nowMs: number): Promise<KeyRecord | undefined> {
    this.count('increment');
    const row = this.rows.get(keyId);
    if (row?.key.pool !== pool) return Promise.resolve(undefined);
    row.usk += usageSortKeyShift(row.key.usageCount, row.key.usageCount + 1);
    row.key.usageCount += 1;
    row.key.lastUsedAt = new Date(nowMs).toISOString();
    return Promise.resolve(withoutSecret(copy(row.key)));
  }

  update(update: KeyUpdate): Promise<KeyUpdateResult> {
    this.count('update');
    const row = this.rows.get(update.keyId);
    if (row?.key.pool !== update.pool) return Promise.resolve({ applied: false, current: undefined });
    if (update.count && row.key.usageCount !== update.count.seen)
      return Promise.resolve({ applied: false, current: withoutSecret(copy(row.key)) });
    if (update.status !== undefined) {
      row.key.status = update.status;
      delete row.key.cooldownUntil;
      // The adapter sets `upk` for active (back into the index) and removes it otherwise.
      delete row.aside;
    }
    if (update.count) {
      row.usk += usageSortKeyShift(update.count.seen, update.count.to);
      row.key.usageCount = update.count.to;
      row.key.slots = {};
    }
    return Promise.resolve({ applied: true, key: withoutSecret(copy(row.key)) });
  }

  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>> {
    this.count('poolKeys');
    const page = this.page(pool, limit, afterKeyId);
    return Promise.resolve({ keys: page.keys.map(withoutSecret), lastKeyId: page.lastKeyId });
  }

  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>> {
    this.count('poolKeysWithSecrets');
    return Promise.resolve(this.page(pool, limit, afterKeyId));
  }

  placements(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyPlacement>> {
    this.count('placements');
    const page = this.page(pool, limit, afterKeyId);
    return Promise.resolve({ keys: page.keys.map(placementOf), lastKeyId: page.lastKeyId });
  }

  rehome(move: KeyMove): Promise<KeyMoveResult> {
    this.count('rehome');
    const row = this.rows.get(move.keyId);
    if (row?.key.pool !== move.pool) return Promise.resolve({ moved: false, current: undefined });
    const now = placementOf(row.key);
    if (now.shard !== move.from.shard || now.indexedIn !== move.from.indexedIn)
      return Promise.resolve({ moved: false, current: now });
    if (move.to === 0) delete row.key.shard;
    else row.key.shard = move.to;
    return Promise.resolve({ moved: true });
  }

  private page(pool: string, limit: number, afterKeyId: string | undefined): KeyPageRead<StoredKey> {
    const ids = [...this.rows.values()]
      .map((row) => row.key)
      .filter((key) => key.pool === pool && (afterKeyId === undefined || key.keyId > afterKeyId))
      .sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
    const keys = ids.slice(0, limit).map(copy);
    return { keys, lastKeyId: ids.length > limit ? keys[keys.length - 1]?.keyId : undefined };
  }
}

/** Pools in memory, with the DynamoDB adapter's create-or-change semantics. */
export class MemoryPoolStore implements PoolStore {
  private readonly pools = new Map<string, PoolPolicy>();
  /** reads by the directory, for tests of the policy cache */
  gets = 0;

  get(pool: string): Promise<PoolPolicy | undefined> {
    this.gets++;
    const policy = this.pools.get(pool);
    return Promise.resolve(policy ? { ...policy } : undefined);
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
    // A change of shards on an existing pool: leases look in the widest layout until a reshard ends.
    if (existing && settings.shards !== undefined && settings.shards !== existing.shards) {
      policy.previousShards = Math.max(existing.shards, existing.previousShards ?? 0);
      policy.shardsChangedAt = nowIso;
    }
    this.pools.set(pool, policy);
    return Promise.resolve({ ...policy });
  }

  finishReshard(pool: string, layout: { shards: number; previousShards: number }): Promise<boolean> {
    const policy = this.pools.get(pool);
    if (policy?.shards !== layout.shards || policy.previousShards !== layout.previousShards)
      return Promise.resolve(false);
    delete policy.previousShards;
    delete policy.shardsChangedAt;
    return Promise.resolve(true);
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
