/**
 * balanceChange (lib/use-cases/maintenance/maintain.ts): what a provider's balance answer does
 * to a key's status; and which suspect keys a run leaves unsettled.
 */
import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../lib/domain/types.js';
import {
  authBreakerOpen,
  balanceChange,
  leftUnsettled,
  unconfirmable,
} from '../../lib/use-cases/maintenance/maintain.js';

type Seen = Pick<KeyRecord, 'status' | 'statusBy'>;
const key = (status: KeyRecord['status'], statusBy?: KeyRecord['statusBy']): Seen => ({
  status,
  ...(statusBy === undefined ? {} : { statusBy }),
});

describe('balanceChange', () => {
  it.each([
    [key('active'), 2.99, 'exhaust'],
    [key('cooling', 'client'), 0, 'exhaust'],
    [key('active'), 3, 'none'],
    [key('exhausted', 'provider'), 3, 'reactivate'],
    [key('exhausted', 'provider'), 1, 'none'],
    [key('exhausted', 'client'), 1, 'exhaust'],
    [key('exhausted', 'client'), 50, 'reactivate'],
    [key('exhausted'), 1, 'exhaust'],
    [key('suspect', 'client'), 50, 'reactivate'],
    [key('suspect', 'client'), 1, 'exhaust'],
    [key('disabled', 'operator'), 100, 'none'],
    [key('disabled'), 100, 'none'],
    [key('disabled', 'provider'), 100, 'reactivate'],
    [key('disabled', 'provider'), 1, 'exhaust'],
    [key('undecryptable', 'sealing'), 100, 'none'],
    [key('retired', 'operator'), 1, 'none'],
    [key('retired', 'operator'), 100, 'none'],
  ] as const)('a %o key with %d credits (minimum 3): %s', (seen, credits, change) => {
    expect(balanceChange(seen, { credits }, 3)).toBe(change);
  });

  it("a 401 disables any key but an operator's disabled; a stale read never revives", () => {
    expect(balanceChange(key('active'), 'invalid_key', 3)).toBe('disable');
    expect(balanceChange(key('exhausted', 'provider'), 'invalid_key', 3)).toBe('disable');
    expect(balanceChange(key('suspect', 'client'), 'invalid_key', 3)).toBe('disable');
    expect(balanceChange(key('disabled', 'operator'), 'invalid_key', 3)).toBe('none');
    expect(balanceChange(key('disabled', 'provider'), 'invalid_key', 3)).toBe('none');
    expect(balanceChange(key('retired', 'operator'), 'invalid_key', 3)).toBe('none');
    expect(balanceChange(key('exhausted', 'provider'), { credits: 50 }, 3, false)).toBe('none');
  });
});

describe('unconfirmable (a pool no provider checks)', () => {
  it("clears a suspect key without an end and an exhausted one without a setter; a client's report with an end simply ends", () => {
    expect(unconfirmable({ status: 'suspect' })).toBe(true);
    expect(unconfirmable({ status: 'suspect', statusBy: 'provider' })).toBe(true);
    expect(unconfirmable({ status: 'exhausted' })).toBe(true);
    expect(unconfirmable({ status: 'exhausted', statusBy: 'provider' })).toBe(false);
    expect(unconfirmable({ status: 'suspect', statusBy: 'client', cooldownUntil: 1 })).toBe(false);
    expect(unconfirmable({ status: 'disabled' })).toBe(false);
  });
});

describe('leftUnsettled (a report the run was to settle, still suspect at its end)', () => {
  const start = Date.parse('2026-12-07T12:00:00.000Z');
  const end = start + 60_000;
  const reported = (
    at: number,
    extra: Partial<KeyRecord> = {},
  ): Pick<KeyRecord, 'status' | 'statusBy' | 'statusAt' | 'cooldownUntil'> => ({
    status: 'suspect',
    statusBy: 'client',
    statusAt: new Date(at).toISOString(),
    cooldownUntil: end + 3_600_000,
    ...extra,
  });

  it.each([
    ['reported before the run began', reported(start - 1), 'stability', true],
    ['reported as the run began', reported(start), 'stability', false],
    ['reported while the run went on', reported(start + 1), 'stability', false],
    ['reported before the run, settled by it', reported(start - 1, { status: 'active' }), 'stability', false],
    [
      'reported before the run, its rest over as it ends',
      reported(start - 1, { cooldownUntil: end }),
      'stability',
      false,
    ],
    ['suspect with no time (older than any run)', { status: 'suspect' as const }, 'stability', true],
    ["a client's report with an end, in a pool no provider checks", reported(start - 1), 'none', false],
    ['suspect with no end, in a pool no provider checks', { status: 'suspect' as const }, 'none', true],
  ] as const)('%s', (_why, key, provider, unsettled) => {
    expect(leftUnsettled(key, provider, start, end)).toBe(unsettled);
  });
});

describe('authBreakerOpen (a run whose answers are mostly refusals disables none)', () => {
  it.each([
    [4, 4, false], // a handful of dead keys is normal, even alone
    [5, 9, true],
    [5, 10, false], // half is not most
    [6, 8, true],
    [2, 7, false],
    [0, 0, false],
  ] as const)('%d refusals among %d answers: open %s', (refusals, answers, open) => {
    expect(authBreakerOpen(refusals, answers)).toBe(open);
  });
});
