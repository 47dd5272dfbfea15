/**
 * Pool maintenance: the provider's balance is the truth about credits. For every key that is
 * not disabled, read the balance, record it, and move the key between active and exhausted
 * (or to disabled on a 401). Usage counts are keypool's own and are never touched here.
 */
import { mapLimit } from '../shared/map-limit.js';
import type { KeyStore, StoredKey } from '../domain/key-store.js';
import type { KeyStatus } from '../domain/types.js';
import { checkOrder } from './check-order.js';
import { Pacer } from './pacer.js';
import { poolHealth, type PoolHealth } from './pool-health.js';
import type { BalanceAnswer, BalanceChange, BalanceProvider, BalanceStore, MaintainedKey } from './ports.js';

export interface MaintenanceDeps {
  keys: Pick<KeyStore, 'scan'>;
  balances: BalanceStore;
  provider: BalanceProvider;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface MaintenanceOptions {
  /** only this pool; every pool when absent */
  pool?: string;
  minCredits: number;
  /** the cap "usable" is counted under */
  defaultMaxUses: number;
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
  minCredits: number;
  defaultMaxUses: number;
  balanceRate: number;
  balanceConcurrency: number;
}

/** What one run may override: only this pool, another minimum, a deadline. */
export interface MaintenanceRun {
  pool?: string;
  minCredits?: number;
  deadlineMs?: number;
}

/** The options of one pass: the settings, with the run's overrides. */
export function maintenanceOptions(settings: MaintenanceSettings, run: MaintenanceRun = {}): MaintenanceOptions {
  return {
    ...(run.pool === undefined ? {} : { pool: run.pool }),
    minCredits: run.minCredits ?? settings.minCredits,
    defaultMaxUses: settings.defaultMaxUses,
    rate: settings.balanceRate,
    concurrency: settings.balanceConcurrency,
    ...(run.deadlineMs === undefined ? {} : { deadlineMs: run.deadlineMs }),
  };
}

export interface MaintenanceError {
  keyId: string;
  reason: string;
}

/** The printed summary; `keypool maintain --json` prints exactly this. */
export interface MaintenanceSummary {
  /** keys whose balance was asked for */
  checked: number;
  /** every key in scope after the run, by status */
  active: number;
  exhausted: number;
  disabled: number;
  cooling: number;
  errors: MaintenanceError[];
}

export interface PoolReport extends PoolHealth {
  /** keys of the pool whose balance could not be read in this run */
  balanceErrors: number;
}

export interface MaintenanceReport {
  summary: MaintenanceSummary;
  pools: PoolReport[];
}

/**
 * The status change a balance answer asks for, from the status it was seen with. `revive`
 * false: the key's status changed after the balance was read, and a read that old must not
 * bring back a key a caller just reported out of credits.
 */
export function balanceChange(status: KeyStatus, answer: { credits: number } | 'invalid_key', minCredits: number, revive = true): BalanceChange {
  if (status === 'disabled') return 'none';
  if (answer === 'invalid_key') return 'disable';
  if (answer.credits < minCredits) return status === 'exhausted' ? 'none' : 'exhaust';
  return status === 'exhausted' && revive ? 'reactivate' : 'none';
}

function stateOf(key: StoredKey): MaintainedKey {
  return {
    keyId: key.keyId,
    pool: key.pool,
    status: key.status,
    usageCount: key.usageCount,
    ...(key.cooldownUntil === undefined ? {} : { cooldownUntil: key.cooldownUntil }),
    ...(key.credits === undefined ? {} : { credits: key.credits }),
    ...(key.creditsCheckedAt === undefined ? {} : { creditsCheckedAt: key.creditsCheckedAt }),
  };
}

async function scanAll(keys: MaintenanceDeps['keys'], pool: string | undefined, nowMs: number): Promise<StoredKey[]> {
  const all: StoredKey[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await keys.scan({ ...(pool === undefined ? {} : { pool }), nowMs }, 500, start);
    all.push(...page.keys);
    start = page.next;
  } while (start);
  return all;
}

/**
 * Records a definitive answer (a balance or a 401) with one conditional write; if the key's
 * status changed since it was seen, decides again from the status it has now. Returns the
 * key's state afterwards, or undefined if the key is gone.
 */
async function apply(balances: BalanceStore, key: StoredKey, answer: { credits: number } | 'invalid_key', minCredits: number, checkedAt: string): Promise<MaintainedKey | undefined> {
  let current: MaintainedKey = stateOf(key);
  let revive = true;
  for (let tries = 0; tries < 3; tries++) {
    const change = balanceChange(current.status, answer, minCredits, revive);
    const credits = answer === 'invalid_key' ? undefined : answer.credits;
    if (change === 'none' && credits === undefined) return current;
    const result = await balances.write({ keyId: key.keyId, seenStatus: current.status, change, checkedAt, ...(credits === undefined ? {} : { credits }) });
    if (result.applied) return result.key;
    if (!result.current) return undefined;
    current = result.current;
    revive = false;
  }
  return current;
}

/**
 * Runs one maintenance pass. Keys are asked about in check order (check-order.ts: least
 * recently checked first), at most `maxChecks` of them, so runs that stop early (deadline or
 * cap) still reach every key in turn. Each key is asked about once: a 429 halves the run's rate and
 * leaves that key for the next run, 5xx / timeouts / network errors leave the key as it is.
 * Never waits out a provider timeout and never starts a request after the deadline.
 */
export async function maintain(deps: MaintenanceDeps, options: MaintenanceOptions): Promise<MaintenanceReport> {
  const clock = deps.clock ?? Date.now;
  const pacer = new Pacer({ rate: options.rate, clock, ...(deps.sleep ? { sleep: deps.sleep } : {}) });
  const all = await scanAll(deps.keys, options.pool, clock());
  const states = new Map<string, MaintainedKey>(all.map((key) => [key.keyId, stateOf(key)]));
  const errors: (MaintenanceError & { pool: string })[] = [];
  let checked = 0;
  // Least recently checked first: a run cut short leaves the keys checked most recently.
  const eligible = checkOrder(all.filter((key) => key.status !== 'disabled'));
  const targets = options.maxChecks === undefined ? eligible : eligible.slice(0, Math.max(0, options.maxChecks));
  await mapLimit(targets, options.concurrency, async (key) => {
    if (!(await pacer.acquire(options.deadlineMs))) {
      errors.push({ keyId: key.keyId, pool: key.pool, reason: 'not checked: the run reached its deadline' });
      return;
    }
    checked++;
    const answer: BalanceAnswer = await deps.provider.balance(key.apiKey);
    if (answer.kind === 'rate_limited') {
      pacer.halve();
      errors.push({ keyId: key.keyId, pool: key.pool, reason: `rate limited (429): left for the next run; rate now ${round(pacer.rate)}/s` });
      return;
    }
    if (answer.kind === 'error') {
      errors.push({ keyId: key.keyId, pool: key.pool, reason: answer.reason });
      return;
    }
    const definitive = answer.kind === 'invalid_key' ? 'invalid_key' : { credits: answer.credits };
    const after = await apply(deps.balances, key, definitive, options.minCredits, new Date(clock()).toISOString());
    if (after) states.set(key.keyId, after);
    else states.delete(key.keyId);
  });
  const nowMs = clock();
  const health = poolHealth(states.values(), options.defaultMaxUses, nowMs);
  const pools = health.map((h) => ({ ...h, balanceErrors: errors.filter((e) => e.pool === h.pool).length }));
  const sum = (field: 'active' | 'exhausted' | 'disabled' | 'cooling'): number => health.reduce((n, h) => n + h[field], 0);
  return {
    summary: {
      checked,
      active: sum('active'),
      exhausted: sum('exhausted'),
      disabled: sum('disabled'),
      cooling: sum('cooling'),
      errors: errors.map(({ keyId, reason }) => ({ keyId, reason })),
    },
    pools,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
