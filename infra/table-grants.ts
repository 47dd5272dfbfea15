/**
 * The IAM statements a function's role gets on the table, from its grants in
 * lib/table-access.ts: one statement per grant, on the table's ARN, with
 *  - `ForAllValues:StringLike` `dynamodb:LeadingKeys`: the prefixes of the kinds of item it
 *    reaches (`k_*`, `pool#*`, `idem#*`), so every item of a request must be one of them;
 *  - `ForAllValues:StringEquals` `dynamodb:Attributes`, when the grant names attributes: the
 *    table's key attributes and the grant's, so a request that names any other is refused;
 *  - for a narrow grant, `StringEqualsIfExists` `dynamodb:Select` `SPECIFIC_ATTRIBUTES` (a read
 *    must project) and `dynamodb:ReturnValues` `NONE`/`UPDATED_OLD`/`UPDATED_NEW` (a write never
 *    returns the item), as the DynamoDB Developer Guide's fine-grained examples pair them;
 * and Query on each index it queries, on that index's ARN alone, with no condition: a global
 * index holds only its projection (keys, count, cooldown), never a secret.
 * Plain JSON in IAM's grammar, so the tests evaluate exactly what the stack grants
 * (test/integration/table-access.test.ts) and the stack adds it as it is.
 */
import {
  ITEM_PREFIX,
  type ItemGrant,
  READ_ACTIONS,
  type RoleTableAccess,
  TABLE_KEY_ATTRIBUTES,
} from '../lib/table-access.js';

export type ConditionBlock = Record<string, Record<string, string[]>>;

export interface IamStatement {
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: ConditionBlock;
}

/** What a narrow write may ask back: nothing, or only the attributes it set. */
export const NARROW_RETURN_VALUES = ['NONE', 'UPDATED_OLD', 'UPDATED_NEW'];

function conditions(grant: ItemGrant): ConditionBlock {
  const block: ConditionBlock = {
    'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': grant.items.map((kind) => `${ITEM_PREFIX[kind]}*`) },
  };
  if (grant.attributes) {
    const names = [...new Set([...TABLE_KEY_ATTRIBUTES, ...grant.attributes])].sort();
    block['ForAllValues:StringEquals'] = { 'dynamodb:Attributes': names };
  }
  if (grant.narrow) {
    const reads = grant.actions.filter((action) => READ_ACTIONS.includes(action));
    block.StringEqualsIfExists = {
      ...(reads.length > 0 ? { 'dynamodb:Select': ['SPECIFIC_ATTRIBUTES'] } : {}),
      ...(reads.length < grant.actions.length ? { 'dynamodb:ReturnValues': NARROW_RETURN_VALUES } : {}),
    };
  }
  return block;
}

/** The ARN of one of the table's indexes. */
export function indexArn(tableArn: string, index: string): string {
  return `${tableArn}/index/${index}`;
}

/** Every statement a role gets on the table and its indexes (none for a role that never touches it). */
export function tableStatements(access: RoleTableAccess, tableArn: string): IamStatement[] {
  return [
    ...access.items.map((grant): IamStatement => ({
      Effect: 'Allow',
      Action: grant.actions.map((action) => `dynamodb:${action}`),
      Resource: [tableArn],
      Condition: conditions(grant),
    })),
    ...access.queries.map((index): IamStatement => ({
      Effect: 'Allow',
      Action: ['dynamodb:Query'],
      Resource: [indexArn(tableArn, index)],
    })),
  ];
}
