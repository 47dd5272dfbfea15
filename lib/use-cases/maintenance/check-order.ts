/**
 * The order a maintenance run asks for balances in. A run can stop before the end (its
 * deadline, or `maxChecks`), so the order decides which keys are ever checked: in scan order
 * a large pool's tail was skipped by every run. Least recently checked first makes
 * consecutive runs sweep the whole pool, each starting where the last one stopped.
 */
import type { StoredKey } from '../../domain/types.js';

/** What the order reads of a key. */
export type CheckCandidate = Pick<StoredKey, 'keyId' | 'status' | 'statusBy' | 'creditsCheckedAt'>;

/**
 * A key's place in the check order, compared element by element, smaller first:
 * [group, last balance check in ms since the epoch, keyId]. The keyId makes the order total,
 * so two runs over the same keys agree.
 */
export type CheckPriority = readonly [group: number, checkedAtMs: number, keyId: string];

/**
 * The groups, checked in this order. What a client reported first (suspect keys, and keys a
 * client reported out of credits): until the provider confirms or clears it they rest out of
 * the pool.
 */
const GROUP = {
  suspect: 0,
  neverChecked: 1,
  checkedBefore: 2,
  providerDisabled: 3,
} as const;

/**
 * A key's place in the check order: reported keys first, then never-checked keys (no
 * `creditsCheckedAt`, or one that does not parse), then the oldest `creditsCheckedAt`, and last
 * the keys the provider disabled (re-checked after every other key: a run cut short spends its
 * checks on keys in use). Pure: reads only the key.
 */
export function checkPriority(key: CheckCandidate): CheckPriority {
  const checkedAtMs = key.creditsCheckedAt === undefined ? Number.NaN : Date.parse(key.creditsCheckedAt);
  if (key.status === 'suspect' || (key.status === 'exhausted' && key.statusBy === 'client'))
    return [GROUP.suspect, Number.isNaN(checkedAtMs) ? 0 : checkedAtMs, key.keyId];
  if (key.status === 'disabled')
    return [GROUP.providerDisabled, Number.isNaN(checkedAtMs) ? 0 : checkedAtMs, key.keyId];
  if (Number.isNaN(checkedAtMs)) return [GROUP.neverChecked, 0, key.keyId];
  return [GROUP.checkedBefore, checkedAtMs, key.keyId];
}

/** Negative when `a` is checked before `b`, positive after, 0 for the same place. */
export function compareCheckPriority(a: CheckPriority, b: CheckPriority): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  if (a[1] !== b[1]) return a[1] - b[1];
  // Code-unit order, not locale order: the same on every machine.
  return a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0;
}

/** The keys in check order (a new array; the input is left as it is). */
export function checkOrder<K extends CheckCandidate>(keys: readonly K[]): K[] {
  return keys
    .map((key) => ({ key, priority: checkPriority(key) }))
    .sort((a, b) => compareCheckPriority(a.priority, b.priority))
    .map(({ key }) => key);
}
