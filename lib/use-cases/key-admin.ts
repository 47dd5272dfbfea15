/**
 * The operator's use cases over a pool's keys: change a status or a count, list. They depend
 * only on the ports, never read a secret and never return one. (Import, which seals, is
 * KeyImport: only the function that imports bundles the sealing library.)
 */
import { InvalidRequest, KeyNotFound } from '../domain/errors.js';
import { decodeCursor, DEFAULT_PAGE_LIMIT, encodeCursor, MAX_PAGE_LIMIT, readAllPages } from './page-cursor.js';
import type { KeyAdminStore } from '../ports/key-admin-store.js';
import { KEY_ID_PATTERN, toKeyView } from '../domain/keys.js';
import type { PoolDirectory } from './pool-directory.js';
import { effectiveStatus } from '../domain/rules.js';
import type { KeyChange, KeyPage, KeyRecord, KeyView, ListQuery, StatusBy } from '../domain/types.js';
import type { AccountStore } from '../ports/account-store.js';

export interface KeyAdminOptions {
  store: KeyAdminStore;
  /** the account records a key view takes its balance from (absent: each key's own) */
  accounts?: Pick<AccountStore, 'records' | 'setAccount' | 'ensure'>;
  pools: PoolDirectory;
  clock?: () => number;
}

/**
 * A filtered list page stops after reading this many keys, matching or not: a status few keys
 * have costs bounded pages (with a cursor to go on), never a read of the whole pool at once.
 */
export const MAX_LIST_READ = 1000;
/** Index entries read per request while listing. */
const LIST_BATCH = 100;
/** An operator's count reset retries this often when concurrent leases keep moving the count. */
const RESET_TRIES = 10;

export class KeyAdmin {
  private readonly store: KeyAdminStore;
  private readonly accounts: Pick<AccountStore, 'records' | 'setAccount' | 'ensure'> | undefined;
  private readonly pools: PoolDirectory;
  private readonly clock: () => number;

  constructor(options: KeyAdminOptions) {
    this.store = options.store;
    this.accounts = options.accounts;
    this.pools = options.pools;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * An operator's change to one key of the pool: its status and/or its count. A new count is
   * one conditional write from the count just read, which moves the key to its place in the
   * usage order; a concurrent lease that changes the count first makes it refuse, and it is
   * tried again from the fresh count.
   */
  async update(pool: string, keyId: string, change: KeyChange): Promise<KeyView> {
    await this.pools.require(pool);
    if (change.status === undefined && change.usageCount === undefined && change.account === undefined) {
      throw new InvalidRequest('give a status, a usageCount, an account, or several', [
        { path: 'body', message: 'nothing to change' },
      ]);
    }
    if (!KEY_ID_PATTERN.test(keyId)) throw new KeyNotFound(keyId);
    if (change.account !== undefined) {
      const accounts = this.accounts;
      if (!accounts) throw new InvalidRequest('this deployment does not keep accounts');
      // The operator's word replaces what maintenance learned; the key keeps its own status
      // (the account's next verdict reaches it like any other key of the account).
      if (!(await accounts.setAccount(pool, keyId, change.account, true))) throw new KeyNotFound(keyId);
      await accounts.ensure(pool, change.account);
      if (change.status === undefined && change.usageCount === undefined) {
        const key = await this.store.record(pool, keyId);
        if (!key) throw new KeyNotFound(keyId);
        return toKeyView(key, this.clock());
      }
    }
    const to = change.usageCount;
    let seen = to === undefined ? undefined : (await this.store.record(pool, keyId))?.usageCount;
    if (to !== undefined && seen === undefined) throw new KeyNotFound(keyId);
    for (let tries = 0; tries < RESET_TRIES; tries++) {
      const result = await this.store.update({
        keyId,
        pool,
        ...(change.status === undefined ? {} : { status: change.status, at: new Date(this.clock()).toISOString() }),
        ...(to === undefined || seen === undefined ? {} : { count: { seen, to } }),
      });
      if (result.applied) return toKeyView(result.key, this.clock());
      if (!result.current) throw new KeyNotFound(keyId);
      if (change.status !== undefined && result.current.status === 'retired') {
        throw new InvalidRequest(
          `key "${keyId}" is retired: its secret is gone; import it again with revive=true to bring it back`,
          [{ path: 'body.status', message: 'a retired key has no status to change' }],
        );
      }
      seen = result.current.usageCount;
    }
    throw new InvalidRequest(`the count of key "${keyId}" kept changing under concurrent leases; try again`);
  }

  /**
   * An operator's enable of every key of the pool the provider disabled (a provider-wide
   * refusal that the breaker did not catch, an account fixed since): one conditional write per
   * key, each only while the key is still disabled by the provider. Answers how many.
   */
  async enableDisabledBy(pool: string, by: Extract<StatusBy, 'provider'>): Promise<{ pool: string; enabled: number }> {
    await this.pools.require(pool);
    const at = new Date(this.clock()).toISOString();
    let enabled = 0;
    let after: string | undefined;
    do {
      const page = await this.store.poolKeys(pool, LIST_BATCH, after);
      for (const key of page.keys) {
        if (key.status !== 'disabled' || key.statusBy !== by) continue;
        const result = await this.store.update({
          keyId: key.keyId,
          pool,
          status: 'active',
          at,
          from: { status: 'disabled', by },
        });
        if (result.applied) enabled++;
      }
      after = page.lastKeyId;
    } while (after !== undefined);
    return { pool, enabled };
  }

  /**
   * One page of the pool's keys in key-id order, never with secrets; reads cost the page, not
   * the table. With a status filter a page may hold fewer keys than asked (at most
   * MAX_LIST_READ are read per page); `cursor` continues where it stopped.
   */
  async list(pool: string, query: ListQuery = {}): Promise<KeyPage> {
    await this.pools.require(pool);
    const limit = Math.min(query.limit ?? DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
    const nowMs = this.clock();
    let after =
      query.cursor === undefined ? undefined : decodeCursor('k', query.cursor, (keyId) => KEY_ID_PATTERN.test(keyId));
    const keys: KeyRecord[] = [];
    let read = 0;
    const answer = async (cursor: string | null): Promise<KeyPage> => ({
      keys: await this.views(pool, keys, nowMs),
      cursor,
    });
    for (;;) {
      // Unfiltered, read exactly what the page still needs; filtered, read in batches.
      const want = query.status === undefined ? limit - keys.length : LIST_BATCH;
      const page = await this.store.poolKeys(pool, want, after);
      let consumed = 0;
      for (const key of page.keys) {
        consumed++;
        read++;
        after = key.keyId;
        if (query.status === undefined || effectiveStatus(key, nowMs) === query.status) keys.push(key);
        if (keys.length === limit) break;
      }
      const more = consumed < page.keys.length || page.lastKeyId !== undefined;
      if (!more) return answer(null);
      if (consumed === page.keys.length && page.lastKeyId !== undefined) after = page.lastKeyId;
      if (keys.length === limit || read >= MAX_LIST_READ || after === undefined)
        return answer(after === undefined ? null : encodeCursor('k', after));
    }
  }

  /**
   * The views of a page's keys, each key of a known account with its account's balance (one
   * batch read per 100 accounts on the page; a key whose account was never read shows none).
   */
  async views(pool: string, keys: readonly KeyRecord[], nowMs: number): Promise<KeyView[]> {
    const named = keys.flatMap((key) => (key.account === undefined ? [] : [key.account]));
    const records = this.accounts && named.length > 0 ? await this.accounts.records(pool, named) : undefined;
    return keys.map((key) => {
      if (!records || key.account === undefined) return toKeyView(key, nowMs);
      const record = records.get(key.account);
      return toKeyView(key, nowMs, record ?? {});
    });
  }

  /** Every page of list, merged (the CLI's --json). */
  listAll(pool: string, query: Omit<ListQuery, 'cursor' | 'limit'> = {}): Promise<KeyView[]> {
    return readAllPages(
      (at) => this.list(pool, { ...query, limit: MAX_PAGE_LIMIT, ...at }),
      (page) => page.keys,
    );
  }
}
