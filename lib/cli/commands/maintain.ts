/** maintain: the balance reconciliation the schedule runs, on demand. */
import { maintain as maintainPool, type MaintenanceSummary, maintenanceOptions } from '../../maintenance/maintain.js';
import { PoolName } from '../../domain/primitives.js';
import { checked, type Command, json, table, UsageError } from '../framework.js';

function summaryText(summary: MaintenanceSummary): string {
  const head = `checked ${summary.checked}: active ${summary.active}, exhausted ${summary.exhausted}, disabled ${summary.disabled}, cooling ${summary.cooling}; ${summary.errors.length} error(s)`;
  return summary.errors.length ? `${head}\n${table(summary.errors.map((e) => ({ ...e })), ['keyId', 'reason'])}` : head;
}

export const maintain: Command = {
  name: 'maintain',
  summary: "read every key's balance from the provider, exhaust or revive keys by it (the scheduled job)",
  usage: '[--pool P] [--min-credits N] [--json]',
  help: [
    '--pool P          only keys of pool P (default: every pool)',
    '--min-credits N   below N credits a key is exhausted; at or above, an exhausted key is active again (default: KEYPOOL_MIN_CREDITS or 3)',
    '--json            print {"checked","active","exhausted","disabled","cooling","errors":[{"keyId","reason"}]}',
    'Provider: STABILITY_API_BASE_URL; pace: KEYPOOL_BALANCE_RATE requests/s (default 5), KEYPOOL_BALANCE_CONCURRENCY.',
  ],
  options: { pool: { type: 'string' }, 'min-credits': { type: 'string' }, json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pool = args.values.pool === undefined ? undefined : checked(PoolName, args.values.pool, '--pool');
    const rawMin = args.values['min-credits'];
    if (rawMin !== undefined && (typeof rawMin !== 'string' || !/^\d+(\.\d+)?$/.test(rawMin))) {
      throw new UsageError('--min-credits takes a number of credits, 0 or more');
    }
    const { deps, settings } = services.maintenance();
    const report = await maintainPool(
      deps,
      maintenanceOptions(settings, { ...(pool ? { pool } : {}), ...(rawMin === undefined ? {} : { minCredits: Number(rawMin) }) }),
    );
    io.out(args.values.json ? json(report.summary) : summaryText(report.summary));
    return 0;
  },
};
