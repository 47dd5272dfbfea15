/**
 * The DynamoDB implementation of KeyStore, every use case's key port at once, for callers that
 * want them all (the CLI's broker, the tests, the benchmark): the lease path's store and the
 * operator's and sweeps' store over one table, each method handed to the part that owns it.
 * The Lambdas build only the part they use (lib/wiring.ts).
 */
import type { KeyRecord, StoredKey } from '../domain/types.js';
import type { CountedKey } from '../domain/dry-pool.js';
import type { KeyUpdate, KeyUpdateResult, RetireResult, Retirement } from '../ports/key-admin-store.js';
import type { KeyPageRead } from '../ports/key-pages.js';
import type { KeyStore } from '../ports/key-store.js';
import type {
  CandidatePage,
  CandidateQuery,
  CompletionAttempt,
  CompletionAttemptResult,
  IdempotentLease,
  LeaseAttempt,
  LeaseAttemptResult,
  ProxiedRefund,
} from '../ports/lease-store.js';
import type { BudgetSpend } from '../ports/report-budget.js';
import type { SecretReplacement } from '../ports/reseal-store.js';
import type { KeyMove, KeyMoveResult, KeyPlacement } from '../ports/reshard-store.js';
import type { UndecryptableMark } from '../ports/undecryptable.js';
import { DynamoKeyAdminStore } from './dynamo-key-admin-store.js';
import { DynamoLeaseStore } from './dynamo-lease-store.js';
import { DynamoTable, type DynamoTableOptions } from './dynamo-table.js';

export type { CapacityMeter } from './dynamo-table.js';
export { fromKeyItem, toKeyItem } from './key-item.js';

export class DynamoKeyStore extends DynamoTable implements KeyStore {
  readonly leases: DynamoLeaseStore;
  readonly admin: DynamoKeyAdminStore;

  constructor(options: DynamoTableOptions) {
    super(options);
    this.leases = new DynamoLeaseStore(options);
    this.admin = new DynamoKeyAdminStore(options);
  }

  get(keyId: string): Promise<StoredKey | undefined> {
    return this.leases.get(keyId);
  }

  keyStates(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<CountedKey & { keyId: string }>> {
    return this.leases.keyStates(pool, limit, afterKeyId);
  }

  retire(retirement: Retirement): Promise<RetireResult> {
    return this.admin.retire(retirement);
  }

  revive(key: StoredKey, seenPool: string): Promise<{ revived: boolean; key: KeyRecord | undefined }> {
    return this.admin.revive(key, seenPool);
  }

  candidates(...query: CandidateQuery): Promise<CandidatePage> {
    return this.leases.candidates(...query);
  }

  tryLease(attempt: LeaseAttempt): Promise<LeaseAttemptResult> {
    return this.leases.tryLease(attempt);
  }

  idempotentLease(id: string): Promise<IdempotentLease | undefined> {
    return this.leases.idempotentLease(id);
  }

  releaseIdempotentLease(id: string, leaseId: string): Promise<boolean> {
    return this.leases.releaseIdempotentLease(id, leaseId);
  }

  tryComplete(attempt: CompletionAttempt): Promise<CompletionAttemptResult> {
    return this.leases.tryComplete(attempt);
  }

  refundProxied(refund: ProxiedRefund): Promise<CompletionAttemptResult> {
    return this.leases.refundProxied(refund);
  }

  spendReport(pool: string, caller: string, nowMs: number, max: number): Promise<BudgetSpend> {
    return this.leases.spendReport(pool, caller, nowMs, max);
  }

  increment(pool: string, keyId: string, nowMs: number): Promise<Pick<KeyRecord, 'keyId' | 'usageCount'> | undefined> {
    return this.leases.increment(pool, keyId, nowMs);
  }

  setAsideUnsealed(key: { keyId: string; pool: string }): Promise<boolean> {
    return this.leases.setAsideUnsealed(key);
  }

  markUndecryptable(mark: UndecryptableMark): Promise<boolean> {
    return this.leases.markUndecryptable(mark);
  }

  insert(key: StoredKey): Promise<{ inserted: boolean; key: KeyRecord }> {
    return this.admin.insert(key);
  }

  replaceUndecryptable(key: StoredKey, seen: KeyRecord): Promise<{ replaced: boolean; key: KeyRecord | undefined }> {
    return this.admin.replaceUndecryptable(key, seen);
  }

  record(pool: string, keyId: string): Promise<KeyRecord | undefined> {
    return this.admin.record(pool, keyId);
  }

  update(update: KeyUpdate): Promise<KeyUpdateResult> {
    return this.admin.update(update);
  }

  poolKeys(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyRecord>> {
    return this.admin.poolKeys(pool, limit, afterKeyId);
  }

  poolKeysWithSecrets(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<StoredKey>> {
    return this.admin.poolKeysWithSecrets(pool, limit, afterKeyId);
  }

  replaceSecret(replacement: SecretReplacement): Promise<boolean> {
    return this.admin.replaceSecret(replacement);
  }

  placements(pool: string, limit: number, afterKeyId?: string): Promise<KeyPageRead<KeyPlacement>> {
    return this.admin.placements(pool, limit, afterKeyId);
  }

  rehome(move: KeyMove): Promise<KeyMoveResult> {
    return this.admin.rehome(move);
  }
}
