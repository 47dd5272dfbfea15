/**
 * An account's state put on its keys when it changes (rare), so that a lease never reads more
 * than a key's own status: what a completion (a client's report, or the provider's answer in
 * proxy mode) says about a key's account is written on every key of that account before the
 * completion returns.
 */
import { accountChange, accountStatusOf } from '../domain/accounts.js';
import type { Reporter } from '../domain/rules.js';
import type { CompletionReport, Outcome, PoolPolicy } from '../domain/types.js';
import type { AccountStore } from '../ports/account-store.js';
import { mapLimit } from '../shared/map-limit.js';

/** How many of an account's keys are written at once. */
const FAN_OUT_CONCURRENCY = 16;

/**
 * Puts what `outcome` says about the account of `keyId` on the account's other keys (the key
 * itself got its own change from the completion) and on the account's record; answers how many
 * keys it stopped. Nothing for an outcome about the key alone (accountChange), or for a key
 * whose account is not known (it is its own account). Each key's write is conditional, as a
 * report on the key itself would be: it never replaces an operator's disabled, a verdict, or a
 * longer rest. A client's report does not replace the provider's verdict on the record either.
 */
export async function spreadToAccount(
  store: AccountStore,
  pool: string,
  keyId: string,
  outcome: Outcome,
  reporter: Reporter['by'],
  policy: Pick<PoolPolicy, 'cooldownSeconds' | 'maxClientCooldownSeconds' | 'rateLimitScope'>,
  report: Pick<CompletionReport, 'retryAfterSeconds'>,
  nowMs: number,
): Promise<number> {
  const change = accountChange(outcome, reporter, policy, report.retryAfterSeconds, nowMs);
  if (!change) return 0;
  const account = await store.accountOf(pool, keyId);
  if (account === undefined) return 0;
  const siblings = (await store.accountKeys(pool, account)).filter((id) => id !== keyId);
  const stopped = await mapLimit(siblings, FAN_OUT_CONCURRENCY, (id) => store.stopKey(pool, id, change, nowMs));
  await store.writeRecord({ pool, account, ...accountStatusOf(change) }, { change, nowMs });
  return stopped.filter(Boolean).length;
}
