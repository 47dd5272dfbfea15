/** reseal: every stored secret sealed under the current wrapping key (rotation, and items from before sealing). */
import type { SealingMisconfigured } from '../../domain/errors.js';
import { RESEAL_PROBE_KEYS, reseal as resealKeys, type ResealReport } from '../../use-cases/reseal.js';
import { capped, type Command, Concurrency, json, numberFlag } from '../framework.js';
import { terminalProgressBar } from '../progress-bar.js';
import { optionalPoolFlag } from './pool-flag.js';

const UNDECRYPTABLE_SHOWN = 50;

function text(report: ResealReport): string {
  const lines = [
    `looked at ${report.keys} key(s)`,
    `  resealed       ${report.resealed}   (sealed under a previous key, now under the current one)`,
    `  sealed         ${report.sealed}   (stored in plain text before sealing, now sealed)`,
    `  revived        ${report.revived}   (undecryptable keys that opened again, back in their pool)`,
    `  unchanged      ${report.unchanged}`,
    `  undecryptable  ${report.undecryptable.length}   (their ciphertext does not open: never leased; import them again)`,
    ...capped(report.undecryptable, UNDECRYPTABLE_SHOWN, (keyId) => `    ${keyId}`),
    `  key not held   ${report.keyNotHeld.length}   (sealed under a wrapping key this run does not hold: left as they are)`,
    ...capped(report.keyNotHeld, UNDECRYPTABLE_SHOWN, (keyId) => `    ${keyId}`),
  ];
  if (report.changedMeanwhile > 0)
    lines.push(`  ${report.changedMeanwhile} key(s) changed while this run worked on them: run it again`);
  return lines.join('\n');
}

export const reseal: Command = {
  name: 'reseal',
  secrets: true,
  summary:
    'seal every stored secret under the current wrapping key (after a key rotation, and for keys stored before sealing)',
  usage: '[--pool P] [--concurrency N] [--json]',
  help: [
    '--pool P           only pool P (default: every pool)',
    '--concurrency N    keys resealed at once (default 8, at most 64)',
    '--json             print {"keys","resealed","sealed","revived","unchanged","undecryptable":[keyId],"keyNotHeld":[keyId],"changedMeanwhile"}',
    "Current key: KEYPOOL_SECRETS_KEY_ARN (AWS) or KEYPOOL_SEALING_KEY_FILE, else the data dir's (keypool --help); keys being",
    'rotated away from: KEYPOOL_SECRETS_PREVIOUS_KEY_ARNS or KEYPOOL_SEALING_PREVIOUS_KEY_FILES (comma-separated).',
    'Safe to interrupt and to run again: each key is one conditional write, and a second run changes nothing.',
    `Before it writes, it tries up to ${RESEAL_PROBE_KEYS} sealed keys of the first pages: when none opens because it`,
    'does not hold their wrapping key (another key file, another data dir), it stops: exit 1, nothing changed.',
    'A key sealed under a key it does not hold is never marked: listed under "key not held", and exit 1.',
    'Exit 1 when the key service fails (nothing is marked undecryptable for that): run it again.',
  ],
  options: { pool: { type: 'string' }, concurrency: { type: 'string' }, json: { type: 'boolean' } },
  async run({ args, io, services }) {
    const pool = optionalPoolFlag(args);
    const concurrency = numberFlag(Concurrency, args.values.concurrency, '--concurrency');
    const asJson = args.values.json === true;
    const bar = terminalProgressBar(io, asJson);
    let report: ResealReport;
    let notHeld: SealingMisconfigured | undefined;
    try {
      report = await resealKeys({
        ...services.sealing(),
        ...(pool === undefined ? {} : { pool }),
        ...(concurrency === undefined ? {} : { concurrency }),
        onKeyNotHeld: (error) => (notHeld ??= error),
        ...(bar
          ? { onProgress: (p) => bar.update({ read: p.read, written: p.written, bytes: 0, totalBytes: undefined }) }
          : {}),
      });
    } finally {
      bar?.done();
    }
    io.out(asJson ? json(report) : text(report));
    if (notHeld === undefined) return 0;
    io.err(`keypool reseal: ${report.keyNotHeld.length} key(s) left as they are; the first: ${notHeld.message}`);
    return 1;
  },
};
