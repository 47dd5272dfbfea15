/**
 * Pool maintenance: the provider's balance is the truth about credits and about whether a key
 * is any good. For every pool whose provider keypool can ask (`stability`), read the balance
 * of each key that is not disabled, record it, and move the key between active and exhausted
 * with the pool's minCredits; a suspect key is disabled only when the provider confirms
 * (401/403) and is active again otherwise. In a pool whose provider is `none` nobody can
 * confirm a report, so suspect keys go back into the pool. Usage counts are keypool's own and
 * are never touched here.
 */
import { PoolNotFound, SealingMisconfigured, SecretUndecryptable } from '../../domain/errors.js';
import { reshard, type ReshardReport } from '../reshard.js';
import type { MaintenanceKeyStore } from '../../ports/maintenance-key-store.js';
import type { PoolStore } from '../../ports/pool-store.js';
import type { KeyRecord, PoolPolicy, Provider, StoredKey } from '../../domain/types.js';
import type { SecretSealer } from '../../ports/secret-sealer.js';
import { withoutSecret } from '../../domain/keys.js';
import { effectiveStatus, isOperatorStatus } from '../../domain/rules.js';
import { mapLimit } from '../../shared/map-limit.js';
import { checkOrder } from './check-order.js';
import { Pacer } from './pacer.js';
import { poolHealth, type PoolHealth } from './pool-health.js';
import type { BalanceAnswer, BalanceProvider } from '../../ports/balance-provider.js';
import type { BalanceChange, BalanceStore } from '../../ports/balance-store.js';
import type { MaintenanceRunStore } from '../../ports/maintenance-run-store.js';
import { MAINTENANCE_RUN_ERRORS_KEPT } from '../../domain/maintenance-run.js';
import type { AccountRecord } from '../../domain/accounts.js';
import {
  accountAfterBalance,
  accountBalanceChange,
  type AccountRecordsRead,
  type CheckTarget,
  checkTargets,
  discoverAccounts,
  type MaintenanceAccounts,
} from './accounts.js';

export interface MaintenanceDeps {
  pools: Pick<PoolStore, 'list' | 'get' | 'finishReshard'>;
  keys: MaintenanceKeyStore;
  /** opens each sealed secret to ask the provider about it */
  sealer: Pick<SecretSealer, 'open'>;
  balances: BalanceStore;
  provider: BalanceProvider;
  /**
   * the provider's account endpoint and the account store: keys learn their account and each
   * account's balance is read once per run; absent, every key is checked on its own
   */
  accounts?: MaintenanceAccounts;
  /** where the run leaves its record (the console's "last runs"); none: the run is not recorded */
  runs?: Pick<MaintenanceRunStore, 'record'>;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface MaintenanceOptions {
  /** only this pool; every pool when absent */
  pool?: string;
  /** instead of each pool's minCredits */
  minCredits?: number;
  /** balance requests per second for the whole run */
  rate: number;
  /** balance requests in flight at once */
  concurrency: number;
  /** no request starts after this moment (ms since the epoch): the Lambda's time left */
  deadlineMs?: number;
  /** ask for at most this many balances in the run (the first keys in check order); every key when absent */
  maxChecks?: number;
}

/** The deployment's maintenance settings (lib/config.ts reads them from the environment). */
export interface MaintenanceSettings {
  balanceRate: number;
  balanceConcurrency: number;
}

/** What one run may override: only this pool, another minimum, a deadline, a cap on checks. */
export type MaintenanceRun = Pick<MaintenanceOptions, 'pool' | 'minCredits' | 'deadlineMs' | 'maxChecks'>;

/** The options of one pass: the settings, with the run's overrides. */
export function maintenanceOptions(settings: MaintenanceSettings, run: MaintenanceRun = {}): MaintenanceOptions {
  return { ...run, rate: settings.balanceRate, concurrency: settings.balanceConcurrency };
}

export interface MaintenanceError {
  keyId: string;
  reason: string;
}

/** The printed summary; `keypool maintain --json` prints exactly this. */
export interface MaintenanceSummary {
  /** balance requests made (one per account once accounts are known) */
  checked: number;
  /** every key in scope after the run, by status */
  active: number;
  exhausted: number;
  disabled: number;
  cooling: number;
  suspect: number;
  /** keys whose stored ciphertext itself does not open (never leased) */
  undecryptable: number;
  errors: MaintenanceError[];
  /**
   * The run's documented refusals (401/403) of keys not yet disabled, against its definitive
   * answers (balances and those refusals): open, the run disabled none of them
   * (authBreakerOpen).
   */
  providerAuthBreaker: { open: boolean; refusals: number; answers: number };
}

export interface PoolReport extends PoolHealth {
  /** keys of the pool whose balance could not be read in this run */
  balanceErrors: number;
  /** the run's provider-auth breaker opened and this pool's provider is one maintenance asks */
  providerAuthBreakerOpen: boolean;
  /**
   * suspect keys the run was to settle and did not (leftUnsettled): reported before it began,
   * still suspect at its end. `suspect` counts the reports made while it ran as well.
   */
  unsettledSuspect: number;
}

/** At least this many refusals before the breaker may open: a handful of dead keys is normal. */
export const AUTH_BREAKER_MIN_REFUSALS = 5;

/**
 * Whether a run's documented refusals look like the provider (or whatever answers for it)
 * refusing everyone rather than a verdict on some keys: at least AUTH_BREAKER_MIN_REFUSALS of
 * them, and more than half of the run's definitive answers. Then none is applied.
 */
export function authBreakerOpen(refusals: number, answers: number): boolean {
  return refusals >= AUTH_BREAKER_MIN_REFUSALS && refusals * 2 > answers;
}

export interface MaintenanceReport {
  summary: MaintenanceSummary;
  /** every pool in scope, keys or not: what the metrics publish */
  pools: PoolReport[];
  /** the pools in scope whose change of shards was pending, and what this run did about it */
  reshards: ReshardReport[];
  /** keys whose status this run changed */
  changed: number;
  /** account requests made for keys whose account was not known yet, and accounts so learned */
  accounts: { asked: number; learned: number };
  /**
   * keys not checked because their secret was sealed under a wrapping key this process does not
   * hold (a wrong setting: nothing was changed for them), and the first such error, which names
   * the keys; undefined when there was none
   */
  keyNotHeld?: { keys: number; first: SealingMisconfigured };
}

/**
 * The status change a definitive answer asks for, from the key as it was seen. The provider's
 * word confirms or clears what a client reported: a suspect key is disabled on a documented
 * 401/403 and active again on a balance (or exhausted by the balance rule); a client's
 * exhausted is the provider's exhausted below minCredits and active at or above it. An
 * operator's disabled or retired and an undecryptable key are never changed here. `revive` false: the
 * key's status changed after the balance was read, and a read that old must not bring back a
 * key a caller just reported.
 */
export function balanceChange(
  key: Pick<KeyRecord, 'status' | 'statusBy'>,
  answer: { credits: number } | 'invalid_key',
  minCredits: number,
  revive = true,
): BalanceChange {
  if (key.status === 'undecryptable' || isOperatorStatus(key)) return 'none';
  if (answer === 'invalid_key') return key.status === 'disabled' ? 'none' : 'disable';
  if (answer.credits < minCredits)
    return key.status === 'exhausted' && key.statusBy === 'provider' ? 'none' : 'exhaust';
  const outOfUse = key.status === 'exhausted' || key.status === 'suspect' || key.status === 'disabled';
  return outOfUse && revive ? 'reactivate' : 'none';
}

/**
 * In a pool no provider checks, what nobody can confirm does not keep a key out: a suspect key
 * without an end (a caller's report from before reports had one, or the provider's from proxy
 * mode) and an exhausted one without a setter (from before setters were kept) go back into the
 * pool. A client's report with an end simply ends.
 */
export function unconfirmable(key: Pick<KeyRecord, 'status' | 'statusBy' | 'cooldownUntil'>): boolean {
  if (key.cooldownUntil !== undefined) return false;
  return key.status === 'suspect' || (key.status === 'exhausted' && key.statusBy === undefined);
}

/**
 * Whether a key, as a run ends, is a report the run was to settle and did not: still suspect,
 * reported before the run began (a report with no time is older than any run), in a pool whose
 * provider the run asks; in a pool no provider checks, only a report nobody can confirm
 * (unconfirmable) is the run's to settle, a client's report with an end ends by itself. A key
 * reported while the run went on is the next run's: under a steady trickle of reports every
 * run ends with some suspect key, and none of them is left unsettled.
 */
export function leftUnsettled(
  key: Pick<KeyRecord, 'status' | 'statusBy' | 'statusAt' | 'cooldownUntil'>,
  provider: Provider | undefined,
  runStartMs: number,
  nowMs: number,
): boolean {
  if (effectiveStatus(key, nowMs) !== 'suspect') return false;
  if (key.statusAt !== undefined && Date.parse(key.statusAt) >= runStartMs) return false;
  return provider === 'none' ? unconfirmable(key) : true;
}

/** Every key of the pools, with secrets, a page of the pool-keys index at a time. */
async function keysOf(keys: MaintenanceDeps['keys'], pools: readonly PoolPolicy[]): Promise<StoredKey[]> {
  const all: StoredKey[] = [];
  for (const { pool } of pools) {
    let after: string | undefined;
    do {
      const page = await keys.poolKeysWithSecrets(pool, 100, after);
      all.push(...page.keys);
      after = page.lastKeyId;
    } while (after !== undefined);
  }
  return all;
}

/**
 * Records a definitive answer (a balance, a 401/403, or a cleared report) with one conditional
 * write; if the key's status changed since it was seen, decides again from the status it has
 * now. Returns the key's state afterwards, or undefined if the key is gone.
 */
async function apply(
  balances: BalanceStore,
  key: KeyRecord,
  decide: (current: KeyRecord, revive: boolean) => BalanceChange,
  checkedAt: string,
  credits?: number,
): Promise<KeyRecord | undefined> {
  let current = key;
  let revive = true;
  for (let tries = 0; tries < 3; tries++) {
    const change = decide(current, revive);
    if (change === 'none' && credits === undefined) return current;
    const result = await balances.write({
      keyId: key.keyId,
      seenStatus: current.status,
      ...(current.statusBy === undefined ? {} : { seenBy: current.statusBy }),
      change,
      checkedAt,
      ...(credits === undefined ? {} : { credits }),
    });
    if (result.applied) return result.key;
    if (!result.current) return undefined;
    current = result.current;
    revive = false;
  }
  return current;
}

/**
 * Runs one maintenance pass over every pool (or one). Keys are asked about in check order
 * (check-order.ts: reported keys first, then least recently checked, then keys the provider
 * disabled), at most `maxChecks` of them, so runs that stop early (deadline or cap) still reach
 * every key in turn. Each key is asked about once: a 429 halves the run's rate and leaves that
 * key for the next run; 5xx, timeouts, network errors and refusals outside the provider's
 * documented error shape leave the key as it is. Documented refusals are applied at the end of
 * the run, unless they are most of its answers (authBreakerOpen): then none is. Never waits out
 * a provider timeout and never starts a request after the deadline.
 */
export async function maintain(deps: MaintenanceDeps, options: MaintenanceOptions): Promise<MaintenanceReport> {
  const clock = deps.clock ?? Date.now;
  const startMs = clock();
  const startedAt = new Date(startMs).toISOString();
  const pacer = new Pacer({ rate: options.rate, clock, ...(deps.sleep ? { sleep: deps.sleep } : {}) });
  const pools = (await deps.pools.list()).filter((p) => options.pool === undefined || p.pool === options.pool);
  if (options.pool !== undefined && pools.length === 0) throw new PoolNotFound(options.pool);
  const policy = new Map(pools.map((p) => [p.pool, p]));
  const minCredits = (pool: string): number => options.minCredits ?? policy.get(pool)?.minCredits ?? 0;
  const all = await keysOf(deps.keys, pools);
  const states = new Map<string, KeyRecord>(all.map((key) => [key.keyId, withoutSecret(key)]));
  const settle = (keyId: string, after: KeyRecord | undefined): void => {
    if (after) states.set(keyId, after);
    else states.delete(keyId);
  };
  const errors: (MaintenanceError & { pool: string })[] = [];
  let checked = 0;
  let keyNotHeld: MaintenanceReport['keyNotHeld'];

  // A pool no provider checks: what cannot be confirmed does not keep a key out.
  const unchecked = all.filter((key) => unconfirmable(key) && policy.get(key.pool)?.provider === 'none');
  await mapLimit(unchecked, options.concurrency, async (key) => {
    const clear = (current: KeyRecord): BalanceChange => (unconfirmable(current) ? 'reactivate' : 'none');
    settle(key.keyId, await apply(deps.balances, withoutSecret(key), clear, new Date(clock()).toISOString()));
  });

  // Reported keys first, then least recently checked, then keys the provider disabled (re-checked:
  // a readable balance brings them back): a run cut short leaves the keys checked most recently.
  // An operator's disabled is never asked about.
  const eligible = checkOrder(
    all.filter(
      (key) =>
        !isOperatorStatus(key) && key.status !== 'undecryptable' && policy.get(key.pool)?.provider === 'stability',
    ),
  );
  // Disables wait for the end of the run: applied only if the breaker stays closed, each as of
  // its request.
  const refused: { key: KeyRecord; checkedAt: string }[] = [];
  let answers = 0;
  // Each key's secret is opened once a run (discovery and the balance read both need it): one
  // decryption, and for a secret that does not open one error, one mark, one count of a wrapping
  // key not held. The run's opened secrets go with the run.
  const openings = new Map<string, Promise<string | undefined>>();
  const opened = (key: StoredKey): Promise<string | undefined> => {
    let opening = openings.get(key.keyId);
    if (!opening) openings.set(key.keyId, (opening = openOnce(key)));
    return opening;
  };
  const openOnce = async (key: StoredKey): Promise<string | undefined> => {
    const secret = await openSecret(deps, key);
    if (typeof secret === 'string') return secret;
    if (secret.undecryptable) settle(key.keyId, { ...withoutSecret(key), status: 'undecryptable' });
    if (secret.notHeld) keyNotHeld = { keys: (keyNotHeld?.keys ?? 0) + 1, first: keyNotHeld?.first ?? secret.notHeld };
    errors.push({ keyId: key.keyId, pool: key.pool, reason: secret.reason });
    return undefined;
  };
  // Keys whose account is not known yet: asked once each, remembered (the first run after an
  // import or a migration).
  const discovery = deps.accounts
    ? await discoverAccounts(
        deps.accounts,
        eligible,
        opened,
        () => pacer.acquire(options.deadlineMs),
        () => pacer.halve(),
        options.concurrency,
      )
    : { asked: 0, learned: 0, errors: [] };
  errors.push(...discovery.errors);
  for (const key of eligible) {
    const state = states.get(key.keyId);
    if (key.account !== undefined && state && state.account === undefined)
      states.set(key.keyId, { ...state, account: key.account });
  }
  // The known accounts' records, read once: their last reads place their keys in the check
  // order, and their balances show on keys whose account this run does not read.
  const records: AccountRecordsRead = deps.accounts ? await accountRecords(deps.accounts, states.values()) : new Map();
  // One read per account (through any of its keys), one per key that needs a verdict of its own.
  const allTargets: CheckTarget[] = deps.accounts
    ? checkTargets(eligible, records)
    : eligible.map((key) => ({ keys: [key] }));
  const targets = options.maxChecks === undefined ? allTargets : allTargets.slice(0, Math.max(0, options.maxChecks));
  /** balances read per account in this run (`<pool>#<account>`) */
  const accountCredits = new Map<string, number>();
  await mapLimit(targets, options.concurrency, async (target) => {
    // An account's keys in turn, until one gives an answer about the account.
    for (const key of target.keys) {
      if (!(await pacer.acquire(options.deadlineMs))) {
        errors.push({ keyId: key.keyId, pool: key.pool, reason: 'not checked: the run reached its deadline' });
        return;
      }
      const secret = await opened(key);
      if (secret === undefined) continue;
      // maxChecks bounds requests, not targets: an account read through its keys in turn (each
      // refused) would otherwise ask once per key. Checked and counted with no wait between.
      if (options.maxChecks !== undefined && checked >= options.maxChecks) return;
      checked++;
      // The answer is as old as the request: a status set while it was in flight is newer.
      const checkedAt = new Date(clock()).toISOString();
      const answer: BalanceAnswer = await deps.provider.balance(secret);
      if (answer.kind === 'rate_limited') {
        pacer.halve();
        errors.push({
          keyId: key.keyId,
          pool: key.pool,
          reason: `rate limited (429): left for the next run; rate now ${round(pacer.rate)}/s`,
        });
        return;
      }
      if (answer.kind === 'error' || answer.kind === 'provider_unavailable') {
        errors.push({ keyId: key.keyId, pool: key.pool, reason: answer.reason });
        return;
      }
      if (answer.kind === 'invalid_key') {
        // A refusal that would disable the key waits for the breaker; one of a key the provider
        // already disabled changes nothing. An account is read through its next key.
        if (balanceChange(key, 'invalid_key', minCredits(key.pool)) !== 'disable') continue;
        refused.push({ key: withoutSecret(key), checkedAt });
        answers++;
        continue;
      }
      answers++;
      const min = minCredits(key.pool);
      if (target.account === undefined || !deps.accounts) {
        const decide = (current: KeyRecord, revive: boolean): BalanceChange =>
          balanceChange(current, { credits: answer.credits }, min, revive);
        settle(key.keyId, await apply(deps.balances, withoutSecret(key), decide, checkedAt, answer.credits));
        return;
      }
      // The account's balance: on its record, and its state on each of its keys that it changes.
      const account = target.account;
      accountCredits.set(`${key.pool}#${account}`, answer.credits);
      await deps.accounts.store.writeRecord(accountAfterBalance(key.pool, account, answer.credits, min, checkedAt));
      await mapLimit(target.keys, options.concurrency, async (sibling) => {
        const decide = (current: KeyRecord, revive: boolean): BalanceChange =>
          accountBalanceChange(current, answer.credits, min, revive);
        settle(sibling.keyId, await apply(deps.balances, withoutSecret(sibling), decide, checkedAt));
      });
      return;
    }
  });

  const breaker = { open: authBreakerOpen(refused.length, answers), refusals: refused.length, answers };
  if (!breaker.open) {
    await mapLimit(refused, options.concurrency, async ({ key, checkedAt }) => {
      const decide = (current: KeyRecord): BalanceChange => balanceChange(current, 'invalid_key', minCredits(key.pool));
      settle(key.keyId, await apply(deps.balances, key, decide, checkedAt));
    });
  }

  // A pending change of shards: each pass moves keys home (and ends the reshard once all are),
  // so an operator's `keypool pool set --shards` needs no other step.
  const reshards: ReshardReport[] = [];
  for (const { pool } of pools.filter((p) => p.previousShards !== undefined)) {
    if (options.deadlineMs !== undefined && clock() >= options.deadlineMs) break;
    reshards.push(
      await reshard({
        store: deps.keys,
        pools: deps.pools,
        pool,
        clock,
        concurrency: options.concurrency,
        ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
      }),
    );
  }

  const endMs = clock();
  const health = poolHealth(withAccountBalances(states.values(), records, accountCredits), pools, endMs);
  const unsettled = [...states.values()].filter((key) =>
    leftUnsettled(key, policy.get(key.pool)?.provider, startMs, endMs),
  );
  const reports = health.map((h) => ({
    ...h,
    balanceErrors: errors.filter((e) => e.pool === h.pool).length,
    providerAuthBreakerOpen: breaker.open && policy.get(h.pool)?.provider === 'stability',
    unsettledSuspect: unsettled.filter((key) => key.pool === h.pool).length,
  }));
  const sum = (field: 'active' | 'exhausted' | 'disabled' | 'cooling' | 'suspect' | 'undecryptable'): number =>
    health.reduce((n, h) => n + h[field], 0);
  const changed = all.filter((key) => {
    const after = states.get(key.keyId);
    return after !== undefined && after.status !== key.status;
  }).length;
  await deps.runs?.record({
    startedAt,
    finishedAt: new Date(clock()).toISOString(),
    pool: options.pool ?? null,
    checked,
    changed,
    errors: errors.length,
    firstErrors: errors.slice(0, MAINTENANCE_RUN_ERRORS_KEPT).map(({ keyId, reason }) => ({ keyId, reason })),
  });
  return {
    summary: {
      checked,
      active: sum('active'),
      exhausted: sum('exhausted'),
      disabled: sum('disabled'),
      cooling: sum('cooling'),
      suspect: sum('suspect'),
      undecryptable: sum('undecryptable'),
      errors: errors.map(({ keyId, reason }) => ({ keyId, reason })),
      providerAuthBreaker: breaker,
    },
    pools: reports,
    reshards,
    changed,
    accounts: { asked: discovery.asked, learned: discovery.learned },
    ...(keyNotHeld ? { keyNotHeld } : {}),
  };
}

/**
 * The key's secret for the balance request: a plain one (stored before sealing) as it is, a
 * sealed one opened. One whose ciphertext cannot be opened is taken out of its pool (status
 * undecryptable) in a conditional write; one sealed under a wrapping key this process does not
 * hold (a wrong setting) and a key service that failed leave the key as it is.
 */
async function openSecret(
  deps: MaintenanceDeps,
  key: StoredKey,
): Promise<string | { reason: string; undecryptable: boolean; notHeld?: SealingMisconfigured }> {
  if (!key.sealed) return key.secret;
  try {
    return await deps.sealer.open(key.secret, { pool: key.pool, keyId: key.keyId });
  } catch (error) {
    if (error instanceof SealingMisconfigured)
      return {
        reason: `not checked: sealed under ${error.sealedUnder.join(', ')}, a wrapping key this process does not hold; nothing changed`,
        undecryptable: false,
        notHeld: error,
      };
    if (!(error instanceof SecretUndecryptable))
      return {
        reason: `not checked: ${error instanceof Error ? error.message : 'the secret could not be opened'}`,
        undecryptable: false,
      };
    const marked = await deps.keys.markUndecryptable({
      keyId: key.keyId,
      pool: key.pool,
      sealed: key.secret,
      reason: error.reason,
      at: new Date(deps.clock?.() ?? Date.now()).toISOString(),
    });
    return {
      reason: `${error.message}; ${marked ? 'marked undecryptable' : 'changed meanwhile, left for the next run'}`,
      undecryptable: marked,
    };
  }
}

/** The records of the accounts the keys belong to, by `<pool>#<account>` (one batch read per 100 accounts). */
async function accountRecords(accounts: MaintenanceAccounts, keys: Iterable<KeyRecord>): Promise<AccountRecordsRead> {
  const wanted = new Map<string, Set<string>>();
  for (const key of keys)
    if (key.account !== undefined) wanted.set(key.pool, (wanted.get(key.pool) ?? new Set()).add(key.account));
  const read = new Map<string, AccountRecord>();
  for (const [pool, names] of wanted)
    for (const [name, record] of await accounts.store.records(pool, [...names])) read.set(`${pool}#${name}`, record);
  return read;
}

/**
 * The keys' states with each key of a known account showing its account's balance: read in
 * this run, else from the account's record as the run read it.
 */
function withAccountBalances(
  states: Iterable<KeyRecord>,
  records: AccountRecordsRead,
  read: ReadonlyMap<string, number>,
): KeyRecord[] {
  return [...states].map((key) => {
    if (key.account === undefined) return key;
    const id = `${key.pool}#${key.account}`;
    const credits = read.has(id) ? read.get(id) : records.get(id)?.credits;
    const { credits: _own, ...rest } = key;
    return credits === undefined ? rest : { ...rest, credits };
  });
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
