/**
 * The operator's view of a pool's accounts (GET /pools/{pool}/accounts, `keypool account
 * list`): each known account with how many of its keys there are and how many a lease could get
 * now, its balance and its status. Never a secret.
 */
import { ACCOUNT_PATTERN, type AccountPage, type AccountView, effectiveAccountStatus } from '../domain/accounts.js';
import { decodeCursor, DEFAULT_PAGE_LIMIT, encodeCursor, MAX_PAGE_LIMIT, readAllPages } from './page-cursor.js';
import { isLeasable } from '../domain/rules.js';
import type { AccountStore } from '../ports/account-store.js';
import { mapLimit } from '../shared/map-limit.js';
import type { PoolDirectory } from './pool-directory.js';

export interface AccountsViewOptions {
  store: Pick<AccountStore, 'list' | 'keysOf'>;
  pools: PoolDirectory;
  clock?: () => number;
}

export class AccountsView {
  private readonly store: Pick<AccountStore, 'list' | 'keysOf'>;
  private readonly pools: PoolDirectory;
  private readonly clock: () => number;

  constructor(options: AccountsViewOptions) {
    this.store = options.store;
    this.pools = options.pools;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * One page of the pool's accounts in name order: those keypool knows (named at import or by
   * an operator, learned by maintenance, or stopped by a report). A key whose account is not
   * known yet is its own account and is not listed here. Each account's keys are read through
   * the account-keys index (reads cost the page's accounts and their keys, not the pool).
   */
  async list(pool: string, query: { limit?: number; cursor?: string } = {}): Promise<AccountPage> {
    const policy = await this.pools.require(pool);
    const limit = Math.min(query.limit ?? DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
    const after =
      query.cursor === undefined
        ? undefined
        : decodeCursor('a', query.cursor, (account) => ACCOUNT_PATTERN.test(account));
    const page = await this.store.list(pool, limit, after);
    const nowMs = this.clock();
    const accounts = await mapLimit(page.accounts, 8, async (record): Promise<AccountView> => {
      const keys = (await this.store.keysOf(pool, record.account)).filter((key) => key.status !== 'retired');
      const usable = keys.filter((key) => isLeasable(key, pool, policy.maxUses, nowMs));
      const status = effectiveAccountStatus(record, nowMs);
      return {
        account: record.account,
        keys: keys.length,
        usableKeys: usable.length,
        credits: record.credits ?? null,
        creditsCheckedAt: record.creditsCheckedAt ?? null,
        status,
        ...(status !== 'active' && record.cooldownUntil !== undefined
          ? { cooldownUntil: new Date(record.cooldownUntil).toISOString() }
          : {}),
      };
    });
    return { accounts, cursor: page.last === undefined ? null : encodeCursor('a', page.last) };
  }

  /** Every page of list, merged (the CLI). */
  listAll(pool: string): Promise<AccountView[]> {
    return readAllPages(
      (at) => this.list(pool, { limit: MAX_PAGE_LIMIT, ...at }),
      (page) => page.accounts,
    );
  }
}
