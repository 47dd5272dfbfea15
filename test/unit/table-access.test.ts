/**
 * The table's access definition (lib/table-access.ts) agrees with the code that writes the
 * items and with the entry points it grants, and the IAM model the integration test judges
 * requests by (test/support/iam-model.ts) reads expressions and conditions as IAM does.
 */
import { describe, expect, it } from 'vitest';
import { ENTRY_NAMES } from '../../infra/entry-points.js';
import { tableStatements } from '../../infra/table-grants.js';
import { RECORD_ATTRIBUTES, toIdempotencyItem } from '../../lib/adapters/key-item.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { POOL_DEFAULTS } from '../../lib/domain/types.js';
import {
  IDEMPOTENCY_ATTRIBUTES,
  KEY_RECORD_ATTRIBUTES,
  POOL_ATTRIBUTES,
  READ_ACTIONS,
  TABLE_ACCESS,
  TABLE_KEY_ATTRIBUTES,
} from '../../lib/table-access.js';
import { KEY_PREFIX } from '../../lib/table.js';
import { allowingStatements, authorizationsFor, expressionAttributes } from '../support/iam-model.js';

describe('the table access definition', () => {
  it('has one role per entry point and no other', () => {
    expect(Object.keys(TABLE_ACCESS).sort()).toEqual([...ENTRY_NAMES].sort());
  });

  it("names every attribute the items are written with: a key's record, a pool's settings, an idempotency record", () => {
    // Prepare
    const idempotency = Object.keys(
      toIdempotencyItem({
        id: 'x',
        keyId: 'k',
        requestHash: 'h',
        callerDigest: 'c',
        leaseId: 'l',
        pool: 'p',
        usageCount: 0,
        expiresAtMs: 0,
      }),
    );
    // Assess
    const known = (list: readonly string[]) => [...TABLE_KEY_ATTRIBUTES, ...list];
    expect(known(KEY_RECORD_ATTRIBUTES)).toEqual(expect.arrayContaining([...RECORD_ATTRIBUTES]));
    expect(known(POOL_ATTRIBUTES)).toEqual(expect.arrayContaining(Object.keys(POOL_DEFAULTS)));
    expect(known(IDEMPOTENCY_ATTRIBUTES)).toEqual(expect.arrayContaining(idempotency));
  });

  it('names keys by the prefix of the ids keys are given', () => {
    expect(keyIdFor('sk-test-0123456789abcdef0123').startsWith(KEY_PREFIX)).toBe(true);
  });

  it('lets no narrow read name a secret, and no grant name a plain-text one', () => {
    for (const [role, access] of Object.entries(TABLE_ACCESS)) {
      for (const grant of access.items) {
        expect(grant.attributes ?? [], role).not.toContain('apiKey');
        // A narrow write may name the ciphertext (a retirement removes it, a revival seals anew):
        // it returns only what it wrote. A narrow read never names it.
        if (grant.narrow && grant.actions.some((action) => READ_ACTIONS.includes(action)))
          expect(grant.attributes ?? [], role).not.toContain('sealedKey');
      }
    }
  });
});

describe('the IAM model', () => {
  it.each([
    [
      'SET L.#slot.o = :outcome, usageCount = usageCount - :refund',
      { '#slot': '3' },
      ['L', 'usageCount', 'usageCount'],
    ],
    [
      '#pool = :pool AND attribute_exists(#sealed) AND L.#slot.e < :now',
      { '#pool': 'pool', '#sealed': 'sealedKey', '#slot': '1' },
      ['pool', 'sealedKey', 'L'],
    ],
    [
      'SET #upk = if_not_exists(#ush, #pool) REMOVE cooldownUntil',
      { '#upk': 'upk', '#ush': 'ush', '#pool': 'pool' },
      ['upk', 'ush', 'pool', 'cooldownUntil'],
    ],
    ['#status IN (:from0, :from1) AND NOT begins_with(label, :x)', { '#status': 'status' }, ['status', 'label']],
  ])('reads the top-level attributes of %j', (expression, names, expected) => {
    expect(expressionAttributes(expression, names)).toEqual(expected);
  });

  it('refuses what no statement allows, and allows what one does, item by item in a transaction', () => {
    // Prepare: the lease's grants, and a transaction that puts a key item (not an idempotency record).
    const statements = tableStatements(TABLE_ACCESS.lease, 'arn:table');
    const transaction = {
      command: 'TransactWriteCommand',
      input: {
        TransactItems: [
          { Put: { TableName: 't', Item: { keyId: 'idem#abc', leaseId: 'l', expiresAtMs: 1 } } },
          { Put: { TableName: 't', Item: { keyId: 'k_abc', pool: 'p', usageCount: 0 } } },
        ],
      },
    };
    // Act
    const [idempotency, key] = authorizationsFor(transaction, 't', 'arn:table');
    // Assess
    expect(idempotency && allowingStatements(statements, idempotency)).toHaveLength(1);
    expect(key && allowingStatements(statements, key)).toEqual([]);
  });

  it('takes a read without a projection as one of whole items, which a narrow grant refuses', () => {
    // Prepare
    const statements = tableStatements(TABLE_ACCESS.counting, 'arn:table');
    const whole = { command: 'GetCommand', input: { TableName: 't', Key: { keyId: 'k_abc' } } };
    const projected = {
      command: 'GetCommand',
      input: { ...whole.input, ProjectionExpression: '#p0', ExpressionAttributeNames: { '#p0': 'usageCount' } },
    };
    // Act
    const [wholeAuth] = authorizationsFor(whole, 't', 'arn:table');
    const [projectedAuth] = authorizationsFor(projected, 't', 'arn:table');
    // Assess
    expect(wholeAuth && allowingStatements(statements, wholeAuth)).toEqual([]);
    expect(projectedAuth && allowingStatements(statements, projectedAuth)).toHaveLength(1);
  });
});
