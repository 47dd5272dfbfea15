/**
 * The report conditions (lib/domain/rules.ts effectiveStatus and reportApplies as
 * ConditionExpressions), apart from the lease path's other conditions so that a writer of
 * reports (a completion, an account's state put on its keys) bundles only these.
 */
import type { ReportChange } from '../domain/rules.js';
import type { KeyStatus } from '../domain/types.js';
import { type Item, STATUS_ATTRIBUTES } from './key-item.js';

/**
 * effectiveStatus(...) === 'active' as a condition: active, or a temporary status whose rest
 * has ended (a status without an end, a verdict, fails the comparison, as it must). Needs
 * `#status`, `#stUntil`, `:active`, `:cooling`, `:exhausted`, `:suspect` and `:now`.
 */
export const EFFECTIVELY_ACTIVE =
  '(#status = :active OR (#status IN (:cooling, :exhausted, :suspect) AND #stUntil <= :now))';

/** The names and values EFFECTIVELY_ACTIVE uses (`:now` aside). */
export function effectivelyActiveTerms(names: Record<string, string>, values: Item): void {
  names['#status'] = STATUS_ATTRIBUTES.status;
  names['#stUntil'] = STATUS_ATTRIBUTES.until;
  Object.assign(values, {
    ':active': 'active',
    ':cooling': 'cooling',
    ':exhausted': 'exhausted',
    ':suspect': 'suspect',
  });
}

/**
 * reportApplies(...) as a condition: effectively active, or one of the statuses the change
 * may replace (ReportChange.from). Needs `:now`; adds its names and values.
 */
export function reportCondition(change: ReportChange, names: Record<string, string>, values: Item): string {
  effectivelyActiveTerms(names, values);
  const among = (statuses: readonly KeyStatus[], tag: string): string => {
    statuses.forEach((status, i) => (values[`:${tag}${i}`] = status));
    return `#status IN (${statuses.map((_, i) => `:${tag}${i}`).join(', ')})`;
  };
  const terms = [EFFECTIVELY_ACTIVE];
  if (change.from.any.length) terms.push(among(change.from.any, 'any'));
  if (change.from.endingSooner.length && change.stamp.until !== undefined) {
    values[':newUntil'] = change.stamp.until;
    terms.push(`(${among(change.from.endingSooner, 'sooner')} AND #stUntil < :newUntil)`);
  }
  if (change.from.resting.length)
    terms.push(`(${among(change.from.resting, 'resting')} AND attribute_exists(#stUntil))`);
  return `(${terms.join(' OR ')})`;
}
