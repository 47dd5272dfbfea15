/**
 * Maintenance's accounts: which account each key belongs to (asked of the provider once per
 * key, remembered), which keys are checked as their account (one balance read for all of them)
 * and which still need a verdict of their own, and what an account's balance does to its keys.
 */
import { ACCOUNT_OUT_OF_CREDITS, ACCOUNT_RATE_LIMITED, type AccountRecord } from '../../domain/accounts.js';
import { isOperatorStatus } from '../../domain/rules.js';
import type { KeyRecord, StoredKey } from '../../domain/types.js';
import type { AccountStore } from '../../ports/account-store.js';
import type { AccountProvider } from '../../ports/balance-provider.js';
import type { BalanceChange } from '../../ports/balance-store.js';
import { mapLimit } from '../../shared/map-limit.js';
import { checkOrder } from './check-order.js';

/** What maintenance needs to know keys' accounts: the provider's account endpoint and the store. */
export interface MaintenanceAccounts {
  provider: AccountProvider;
  store: AccountStore;
}

/** One balance read of a run: a key on its own, or an account (read through any of its keys, in turn). */
export interface CheckTarget {
  keys: StoredKey[];
  /** the account the read is for; absent: the key alone */
  account?: string;
}

/**
 * Whether a key's status is about its account (checked with it) rather than about the key
 * itself: active or resting keys, and those stopped for the account's sake or out of credits
 * by the provider's word. A suspect key, one the provider disabled, and a client's report about
 * the key alone still need a verdict of their own.
 */
export function followsAccount(key: Pick<KeyRecord, 'status' | 'statusBy' | 'statusReason'>): boolean {
  if (key.status === 'active') return true;
  const accountReason = key.statusReason === ACCOUNT_OUT_OF_CREDITS || key.statusReason === ACCOUNT_RATE_LIMITED;
  if (key.statusBy === 'client') return accountReason;
  return key.status === 'cooling' || key.status === 'exhausted';
}

/** Account records by `<pool>#<account>`, as a run reads them. */
export type AccountRecordsRead = ReadonlyMap<string, Pick<AccountRecord, 'credits' | 'creditsCheckedAt'>>;

/**
 * The run's balance reads in check order: each key whose account is unknown or that needs a
 * verdict of its own alone, and every other key with its account's siblings, one read for
 * them all (its place is its first key's). A key checked with its account takes its place from
 * the account's last read (`records`; none: never read), since a read of an account writes none
 * of its keys: by the keys' own checks, runs cut short would read the same accounts every time
 * and never the rest. An account's active keys are tried first.
 */
export function checkTargets(eligible: readonly StoredKey[], records: AccountRecordsRead): CheckTarget[] {
  const targets: CheckTarget[] = [];
  const groups = new Map<string, CheckTarget>();
  const placed = eligible.map((key) => {
    if (key.account === undefined || !followsAccount(key)) return { ...key, key };
    const { creditsCheckedAt: _own, ...rest } = key;
    const read = records.get(`${key.pool}#${key.account}`)?.creditsCheckedAt;
    return { ...rest, ...(read === undefined ? {} : { creditsCheckedAt: read }), key };
  });
  for (const { key } of checkOrder(placed)) {
    if (key.account === undefined || !followsAccount(key)) {
      targets.push({ keys: [key] });
      continue;
    }
    const name = `${key.pool}#${key.account}`;
    const group = groups.get(name);
    if (group) group.keys.push(key);
    else {
      const created: CheckTarget = { keys: [key], account: key.account };
      groups.set(name, created);
      targets.push(created);
    }
  }
  for (const group of groups.values())
    group.keys.sort((a, b) => Number(b.status === 'active') - Number(a.status === 'active'));
  return targets;
}

/**
 * What an account's balance does to one of its keys: below the minimum, every key in service or
 * resting is exhausted for the account's sake (by the provider: out of the pool until a balance
 * read shows credits); at or above it, a key exhausted by the provider or by a client's report
 * about the account comes back. `revive` false: the key changed after the balance was read.
 */
export function accountBalanceChange(
  key: Pick<KeyRecord, 'status' | 'statusBy'>,
  credits: number,
  minCredits: number,
  revive = true,
): BalanceChange {
  if (key.status === 'undecryptable' || isOperatorStatus(key)) return 'none';
  if (key.status === 'disabled' || key.status === 'suspect') return 'none';
  if (credits < minCredits)
    return key.status === 'exhausted' && key.statusBy === 'provider' ? 'none' : 'exhaust_account';
  return key.status === 'exhausted' && revive ? 'reactivate' : 'none';
}

/** The account record a balance read leaves: its credits, and exhausted (by the provider) below the minimum. */
export function accountAfterBalance(
  pool: string,
  account: string,
  credits: number,
  minCredits: number,
  checkedAt: string,
): AccountRecord {
  return {
    pool,
    account,
    credits,
    creditsCheckedAt: checkedAt,
    ...(credits < minCredits
      ? { status: 'exhausted', statusBy: 'provider', statusReason: ACCOUNT_OUT_OF_CREDITS, statusAt: checkedAt }
      : { status: 'active' }),
  };
}

/** What discovery did: accounts asked for, accounts learned, and why some were not. */
export interface Discovery {
  asked: number;
  learned: number;
  errors: { keyId: string; pool: string; reason: string }[];
}

/**
 * Asks the provider for the account of each key that has none yet (one call per key, paced by
 * `acquire`), and remembers it with a write that applies only while the key still has none, so
 * an operator's value wins. Keys learn their account in place (`key.account`). A key the
 * provider disabled is not asked: the provider refuses it there too, and asked again each run
 * (ahead of every balance read) enough of them would take a run's every request; its own
 * balance read says whether it came back, and a key back in service is asked the next run.
 */
export async function discoverAccounts(
  accounts: MaintenanceAccounts,
  keys: readonly StoredKey[],
  open: (key: StoredKey) => Promise<string | undefined>,
  acquire: () => Promise<boolean>,
  onRateLimited: () => void,
  concurrency: number,
): Promise<Discovery> {
  const discovery: Discovery = { asked: 0, learned: 0, errors: [] };
  /** each learned account's record, made once a run however many of its keys learn it */
  const ensured = new Map<string, Promise<void>>();
  await mapLimit(
    keys.filter((key) => key.account === undefined && key.status !== 'disabled'),
    concurrency,
    async (key) => {
      if (!(await acquire())) return;
      const secret = await open(key);
      if (secret === undefined) return;
      discovery.asked++;
      const answer = await accounts.provider.account(secret);
      if (answer.kind !== 'account') {
        if (answer.kind === 'rate_limited') onRateLimited();
        if (answer.kind !== 'invalid_key')
          discovery.errors.push({
            keyId: key.keyId,
            pool: key.pool,
            reason: `account not learned: ${'reason' in answer ? answer.reason : 'rate limited (429)'}`,
          });
        return;
      }
      if (await accounts.store.setAccount(key.pool, key.keyId, answer.account, false)) {
        const id = `${key.pool}#${answer.account}`;
        let ensure = ensured.get(id);
        if (!ensure) ensured.set(id, (ensure = accounts.store.ensure(key.pool, answer.account)));
        await ensure;
        key.account = answer.account;
        discovery.learned++;
      }
    },
  );
  return discovery;
}
