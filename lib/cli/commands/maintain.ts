/** maintain: the balance reconciliation the schedule runs, on demand. */
import * as z from 'zod/mini';
import { MinCredits } from '../../domain/primitives.js';
import {
  maintain as maintainPools,
  maintenanceOptions,
  type MaintenanceSummary,
} from '../../use-cases/maintenance/maintain.js';
import { type Command, json, numberFlag, table } from '../framework.js';
import { optionalPoolFlag } from './pool-flag.js';

/** How many balances one run may ask for; 0 asks for none (a run that only clears a `none` pool's suspects and counts). */
const MaxChecks = z.int().check(z.minimum(0), z.maximum(1_000_000));

function summaryText(summary: MaintenanceSummary): string {
  const breaker = summary.providerAuthBreaker;
  const head = [
    // The status counts are of every key in scope after the run, not of the keys checked: said so,
    // or a run whose every check failed reads as a run that found keys active.
    `checked ${summary.checked}, ${summary.errors.length} error(s); keys after the run: active ${summary.active}, exhausted ${summary.exhausted}, disabled ${summary.disabled}, cooling ${summary.cooling}, suspect ${summary.suspect}, undecryptable ${summary.undecryptable}`,
    ...(breaker.open
      ? [
          `provider-auth breaker open: ${breaker.refusals} of ${breaker.answers} answers were 401/403; no key was disabled (check the account, the provider or a proxy in between)`,
        ]
      : []),
  ].join('\n');
  return summary.errors.length
    ? `${head}\n${table(
        summary.errors.map((e) => ({ ...e })),
        ['keyId', 'reason'],
      )}`
    : head;
}

/**
 * Why a run did not do its job, though it printed its report: it asked about keys and had no
 * answer from the provider at all (unreachable, 5xx, 429, secrets that did not open), or the
 * provider-auth breaker opened (the provider refused most keys: none could be judged).
 * Undefined for a run that read balances, errors or not: keys it could not read are asked
 * about again by the next run.
 */
function maintainFailure(summary: MaintenanceSummary, providerBaseUrl: string): string | undefined {
  const { errors, providerAuthBreaker: breaker } = summary;
  if (breaker.open)
    return `provider-auth breaker open: ${breaker.refusals} of ${breaker.answers} answers were 401/403 and no key was disabled`;
  const [first] = errors;
  if (first && breaker.answers === 0)
    return `no balance was read from ${providerBaseUrl} (STABILITY_API_BASE_URL): ${new Set(errors.map((e) => e.keyId)).size} key(s) failed, the first: ${first.reason}`;
  return undefined;
}

export const maintain: Command = {
  name: 'maintain',
  secrets: true,
  summary:
    "read keys' balances from the provider: exhaust or revive keys by them, confirm or clear suspect keys (the scheduled job)",
  usage: '[--pool P] [--min-credits N] [--max-checks N] [--json]',
  help: [
    '--pool P          only pool P (default: every pool); only pools whose provider is stability are asked about',
    "--min-credits N   below N credits a key is exhausted; at or above, an exhausted key is active again (default: each pool's minCredits)",
    '--max-checks N    ask for at most N balances, suspect keys first, then the least recently checked (default: every key)',
    '--json            print {"checked","active","exhausted","disabled","cooling","suspect","undecryptable","errors":[{"keyId","reason"}],',
    '                  "providerAuthBreaker":{"open","refusals","answers"}}',
    "A reported key (suspect, or exhausted by a client) is checked first: disabled only on a 401/403 in the provider's",
    'documented error shape (any other page changes nothing), active again or exhausted by its balance otherwise. Keys',
    "the provider disabled are re-checked last; an operator's disabled is never asked about. When at least 5 refusals",
    "are more than half of a run's answers, the run disables none of them (provider-auth breaker).",
    'A key sealed under a wrapping key this CLI does not hold is not checked and not changed: exit 1, one line naming the keys.',
    'Exit 1 also when the run read no balance at all though it had keys to ask about (the provider unreachable, every',
    'request failing) or the provider-auth breaker opened; a run that read balances exits 0 and lists the keys it could not.',
    'Provider: STABILITY_API_BASE_URL; pace: KEYPOOL_BALANCE_RATE requests/s (default 5), KEYPOOL_BALANCE_CONCURRENCY.',
  ],
  options: {
    pool: { type: 'string' },
    'min-credits': { type: 'string' },
    'max-checks': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ args, io, services }) {
    // Every pool unless one is named, so --pool has no default here.
    const pool = optionalPoolFlag(args);
    const minCredits = numberFlag(MinCredits, args.values['min-credits'], '--min-credits');
    const maxChecks = numberFlag(MaxChecks, args.values['max-checks'], '--max-checks');
    const { deps, settings } = services.maintenance();
    const report = await maintainPools(
      deps,
      maintenanceOptions(settings, {
        ...(pool === undefined ? {} : { pool }),
        ...(minCredits === undefined ? {} : { minCredits }),
        ...(maxChecks === undefined ? {} : { maxChecks }),
      }),
    );
    io.out(args.values.json ? json(report.summary) : summaryText(report.summary));
    if (report.keyNotHeld) {
      // A wrong sealing setting: every key it hit is listed above; one line says what to change.
      io.err(`keypool maintain: ${report.keyNotHeld.keys} key(s) not checked: ${report.keyNotHeld.first.message}`);
      return 1;
    }
    // A schedule or CI reads the exit code: a run that could judge no key must not read as healthy.
    const failure = maintainFailure(report.summary, settings.providerBaseUrl);
    if (failure === undefined) return 0;
    io.err(`keypool maintain: ${failure}`);
    return 1;
  },
};
