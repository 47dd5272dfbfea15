/**
 * The operator's import: keys come only from operators who own them. Each secret is sealed
 * (bound to its pool and key id) before it is written; the table never holds it in plain text.
 */
import type { ImportStore } from '../ports/import-store.js';
import type { PoolStore } from '../ports/pool-store.js';
import { keyIdFor, toKeyView } from '../domain/keys.js';
import { sealNewKey } from './new-key.js';
import type { PoolDirectory } from './pool-directory.js';
import type { SecretSealer } from '../ports/secret-sealer.js';
import type {
  ImportOptions,
  ImportResult,
  KeyRecord,
  KeyView,
  NewKey,
  Provider,
  RefusedKey,
  StoredKey,
} from '../domain/types.js';
import type { AccountAnswer, AccountProvider } from '../ports/balance-provider.js';
import { maskKey } from '../domain/keys.js';
import { mapLimit } from '../shared/map-limit.js';
import { inheritedStatus } from '../domain/accounts.js';
import { InvalidRequest } from '../domain/errors.js';
import type { AccountStore } from '../ports/account-store.js';

/** How many keys of an import are sealed, written, or asked about at the provider at once. */
export const DEFAULT_IMPORT_CONCURRENCY = 16;

export interface KeyImportOptions {
  store: ImportStore;
  poolStore: Pick<PoolStore, 'ensure'>;
  pools: PoolDirectory;
  sealer: SecretSealer;
  clock?: () => number;
  /** how many imports run at once */
  importConcurrency?: number;
  /** the accounts a key may be imported into: it takes its account's state (absent: accounts are refused) */
  accounts?: Pick<AccountStore, 'record' | 'ensure'>;
  /** asks the provider about a key before it is stored (an import with `verify`) */
  verifier?: AccountProvider;
}

/** What became of one key of an import. */
interface KeyOutcome {
  outcome: 'imported' | 'duplicate' | 'retired' | 'revived' | RefusedKey['outcome'];
  keyId: string;
  key?: KeyRecord;
  refused?: RefusedKey;
}

export class KeyImport {
  private readonly store: ImportStore;
  private readonly poolStore: Pick<PoolStore, 'ensure'>;
  private readonly pools: PoolDirectory;
  private readonly sealer: SecretSealer;
  private readonly clock: () => number;
  private readonly importConcurrency: number;
  private readonly accounts: Pick<AccountStore, 'record' | 'ensure'> | undefined;
  private readonly verifier: AccountProvider | undefined;

  constructor(options: KeyImportOptions) {
    this.verifier = options.verifier;
    this.accounts = options.accounts;
    this.store = options.store;
    this.poolStore = options.poolStore;
    this.pools = options.pools;
    this.sealer = options.sealer;
    this.clock = options.clock ?? Date.now;
    this.importConcurrency = options.importConcurrency ?? DEFAULT_IMPORT_CONCURRENCY;
  }

  /**
   * Imports keys into the pool, creating the pool with the defaults if it does not exist. A
   * secret already present (in any pool) is a duplicate and is left as it is. A key an operator
   * retired is reported `retired` and nothing is stored for it, unless `options.revive`: then it
   * comes back into this pool, sealed anew, active, its count kept.
   */
  async importKeys(pool: string, keys: NewKey[], options: ImportOptions = {}): Promise<ImportResult> {
    const base = this.clock();
    // Read fresh (not from the policy cache): each new key is homed in its shard for the pool's
    // shard count as it is now. A reshard starts moving keys only RESHARD_SETTLE_MS after a
    // change of shards, longer than an import takes, so it sees every key homed the old way.
    const policy = await this.poolStore.ensure(pool, new Date(base).toISOString());
    this.pools.remember(policy);
    const verifier = options.verify ? this.verifierFor(pool, policy.provider) : undefined;
    const accounts = await this.accountStates(pool, keys, base);
    const ensureAccount = this.accountEnsurer(pool);
    const seen = new Map<string, number>();
    const outcomes = await mapLimit(keys, this.importConcurrency, async (newKey, index): Promise<KeyOutcome> => {
      const keyId = keyIdFor(newKey.apiKey);
      const first = seen.get(keyId);
      if (first !== undefined && first < index) return { outcome: 'duplicate', keyId };
      seen.set(keyId, index);
      let learned: string | undefined;
      if (verifier) {
        const answer = await verifier.account(newKey.apiKey);
        if (answer.kind !== 'account') {
          const refused = refusal(keyId, newKey.apiKey, answer);
          return { outcome: refused.outcome, keyId, refused };
        }
        learned = answer.account;
      }
      const account = newKey.account ?? learned;
      // Each key of a batch gets its own millisecond, so "oldest import first" is the batch order.
      const createdAt = new Date(base + index).toISOString();
      const fields = {
        shards: policy.shards,
        ...(newKey.label === undefined ? {} : { label: newKey.label }),
        // A key imported into an exhausted or cooling account takes the account's state.
        ...(account === undefined ? {} : { account, ...accounts.get(account) }),
      };
      const sealed = await sealNewKey(this.sealer, newKey.apiKey, pool, createdAt, fields);
      const outcome = await this.storeKey(sealed, pool, options);
      // The account's record follows its key: written only once a key of this pool holds the
      // account the import named or the provider answered at verify (a duplicate, refused or
      // retired key leaves no empty account). The same account on a key already stored repairs a
      // record an earlier import left unwritten.
      const stored = outcome.key;
      if (account !== undefined && stored?.pool === pool && stored.account === account) {
        if (stored.status !== 'retired') await ensureAccount(account);
      }
      return outcome;
    });
    const views = new Map<string, KeyView>();
    // (The import's views show each key's own balance: a new key has none yet.)
    for (const outcome of outcomes) if (outcome.key) views.set(outcome.keyId, toKeyView(outcome.key));
    const count = (outcome: KeyOutcome['outcome']): number => outcomes.filter((o) => o.outcome === outcome).length;
    return {
      imported: count('imported'),
      duplicates: count('duplicate'),
      retired: count('retired'),
      revived: count('revived'),
      keys: outcomes.map((o) => views.get(o.keyId)).filter((v): v is KeyView => v !== undefined),
      ...(options.verify
        ? {
            rejected: count('rejected'),
            unverified: count('unverified'),
            refused: outcomes.flatMap((o) => (o.refused ? [o.refused] : [])),
          }
        : {}),
    };
  }

  /**
   * Stores one sealed key: inserted, or what became of the key already stored under its id (a
   * duplicate, an undecryptable one replaced, a retired one left or revived).
   */
  private async storeKey(sealed: StoredKey, pool: string, options: ImportOptions): Promise<KeyOutcome> {
    const keyId = sealed.keyId;
    const result = await this.store.insert(sealed);
    if (result.inserted) return { outcome: 'imported', keyId, key: result.key };
    if (result.key.status === 'undecryptable' && result.key.pool === pool) {
      // Its stored ciphertext does not open; the secret brought again is sealed anew.
      const replaced = await this.store.replaceUndecryptable(sealed, result.key);
      return { outcome: replaced.replaced ? 'revived' : 'duplicate', keyId, key: replaced.key ?? result.key };
    }
    if (result.key.status !== 'retired') return { outcome: 'duplicate', keyId, key: result.key };
    if (!options.revive) return { outcome: 'retired', keyId, key: result.key };
    // Sealed anew for this pool (the ciphertext sealed by the caller is bound to it and this key id).
    const revived = await this.store.revive(sealed, result.key.pool);
    const key = revived.key ?? result.key;
    return { outcome: revived.revived ? 'revived' : key.status === 'retired' ? 'retired' : 'duplicate', keyId, key };
  }

  /** Ensures an account's record of the pool, once per import whatever the number of its keys. */
  private accountEnsurer(pool: string): (account: string) => Promise<void> {
    const ensured = new Map<string, Promise<void>>();
    return (account) => {
      let done = ensured.get(account);
      if (!done) {
        // accountStates refused an import naming accounts where none are kept.
        const accounts = this.accounts;
        done = accounts ? accounts.ensure(pool, account) : Promise.resolve();
        ensured.set(account, done);
      }
      return done;
    };
  }

  /** The provider an import with `verify` asks: the pool's, which keypool must be able to reach. */
  private verifierFor(pool: string, provider: Provider): AccountProvider {
    if (provider !== 'stability')
      throw new InvalidRequest(
        `pool "${pool}" has no provider keypool can ask (provider ${provider}); import without verify`,
        [{ path: 'query.verify', message: 'only for a pool whose provider is stability' }],
      );
    if (!this.verifier) throw new InvalidRequest('this deployment cannot reach the provider to verify keys');
    return this.verifier;
  }

  /**
   * The state each account the import names gives its new keys (none for an account in service).
   * Read only: a record is written once a key of the account is stored (importKeys).
   */
  private async accountStates(
    pool: string,
    keys: readonly NewKey[],
    nowMs: number,
  ): Promise<Map<string, NonNullable<ReturnType<typeof inheritedStatus>>>> {
    // Accounts the provider answers at verify are learned, not named: their keys take no state here.
    const named = [...new Set(keys.flatMap((key) => (key.account === undefined ? [] : [key.account])))];
    const states = new Map<string, NonNullable<ReturnType<typeof inheritedStatus>>>();
    if (named.length === 0) return states;
    const accounts = this.accounts;
    if (!accounts) throw new InvalidRequest('this deployment does not keep accounts');
    await mapLimit(named, this.importConcurrency, async (account) => {
      const state = inheritedStatus(await accounts.record(pool, account), nowMs);
      if (state) states.set(account, state);
    });
    return states;
  }
}

/** Why the provider's answer keeps a key out: a documented refusal, or no answer in its documented shape. */
function refusal(keyId: string, apiKey: string, answer: Exclude<AccountAnswer, { kind: 'account' }>): RefusedKey {
  const base = { keyId, maskedKey: maskKey(apiKey) };
  switch (answer.kind) {
    case 'invalid_key':
      return {
        ...base,
        outcome: 'rejected',
        reason: 'the provider refused the key (401/403 in its documented error shape)',
      };
    case 'rate_limited':
      return { ...base, outcome: 'unverified', reason: 'the provider answered 429: try again later' };
    default:
      return { ...base, outcome: 'unverified', reason: answer.reason };
  }
}
