/**
 * A model of how IAM authorizes keypool's DynamoDB requests against identity-policy statements,
 * for the conditions keypool's grants use (infra/table-grants.ts). It follows the DynamoDB
 * Developer Guide ("Using IAM policy conditions for fine-grained access control"; "Using IAM
 * with DynamoDB transactions"):
 *  - each item of a TransactWriteItems is authorized as its own PutItem / UpdateItem;
 *  - dynamodb:LeadingKeys: the partition key values a request reaches (every key of a batch);
 *  - dynamodb:Attributes: every top-level attribute a request names: its key, a put's item,
 *    and the names in its update, condition, projection, key condition and filter expressions
 *    (a map entry such as `L.#slot.o` counts as its top-level attribute, `L`);
 *  - dynamodb:Select: a read's Select, or what DynamoDB takes when none is given
 *    (SPECIFIC_ATTRIBUTES with a projection; else ALL_ATTRIBUTES, or ALL_PROJECTED_ATTRIBUTES
 *    on an index);
 *  - dynamodb:ReturnValues: a write's ReturnValues (NONE when not given) and, conservatively,
 *    its ReturnValuesOnConditionCheckFailure too (transactions are documented to use the key
 *    for it; every value the request asks must be allowed).
 * An operator this model does not know fails the evaluation rather than pass it.
 */
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { ConditionBlock, IamStatement } from '../../infra/table-grants.js';
import { TABLE } from '../../lib/table.js';

/** One request as the SDK was asked to send it (document client or low-level input). */
export interface SentRequest {
  command: string;
  input: Record<string, unknown>;
}

/** One authorization IAM decides: an action on a resource, with the request's context keys. */
export interface Authorization {
  action: string;
  /** the table, or `<table>/index/<name>` */
  resource: string;
  context: Partial<Record<ContextKey, string[]>>;
}

type ContextKey = 'dynamodb:LeadingKeys' | 'dynamodb:Attributes' | 'dynamodb:Select' | 'dynamodb:ReturnValues';

type Expressions = Record<string, unknown> & { ExpressionAttributeNames?: Record<string, string> };

const KEYWORDS = new Set(['SET', 'REMOVE', 'ADD', 'DELETE', 'AND', 'OR', 'NOT', 'IN', 'BETWEEN']);
/** A value placeholder, a nested path step, or a name (followed by "(" when it is a function). */
const TOKEN =
  /(:[A-Za-z0-9_]+)|(\.\s*(?:#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*))|(#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g;

/** The top-level attribute names an expression refers to. */
export function expressionAttributes(expression: unknown, names: Record<string, string> = {}): string[] {
  if (typeof expression !== 'string') return [];
  const found: string[] = [];
  for (const [, value, nested, name, call] of expression.matchAll(TOKEN)) {
    if (value !== undefined || nested !== undefined || name === undefined || call !== undefined) continue;
    if (KEYWORDS.has(name.toUpperCase())) continue;
    const resolved = name.startsWith('#') ? names[name] : name;
    if (resolved === undefined)
      throw new Error(`expression names ${name}, which ExpressionAttributeNames does not define`);
    found.push(resolved);
  }
  return found;
}

/** A plain value from either a document-client value or a marshalled attribute value. */
function plain(item: unknown): Record<string, unknown> {
  const record = (item ?? {}) as Record<string, unknown>;
  const marshalled = Object.values(record).every(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      Object.keys(v).length === 1 &&
      /^(S|N|B|SS|NS|BS|M|L|NULL|BOOL)$/.test(Object.keys(v)[0] ?? ''),
  );
  return marshalled && Object.keys(record).length > 0 ? unmarshall(record as Parameters<typeof unmarshall>[0]) : record;
}

function leadingKey(key: unknown): string {
  return String(plain(key)[TABLE.partitionKey]);
}

function namesIn(input: Expressions, ...fields: string[]): string[] {
  return fields.flatMap((field) => expressionAttributes(input[field], input.ExpressionAttributeNames));
}

function returnValues(input: Record<string, unknown>): string[] {
  const asked = [typeof input.ReturnValues === 'string' ? input.ReturnValues : 'NONE'];
  if (typeof input.ReturnValuesOnConditionCheckFailure === 'string')
    asked.push(input.ReturnValuesOnConditionCheckFailure);
  return asked;
}

function write(action: string, table: string, input: Expressions, item?: Record<string, unknown>): Authorization {
  const keyItem = item ?? plain(input.Key);
  return {
    action: `dynamodb:${action}`,
    resource: table,
    context: {
      'dynamodb:LeadingKeys': [leadingKey(keyItem)],
      'dynamodb:Attributes': [
        ...new Set([...Object.keys(keyItem), ...namesIn(input, 'UpdateExpression', 'ConditionExpression')]),
      ],
      'dynamodb:ReturnValues': returnValues(input),
    },
  };
}

function read(action: string, table: string, input: Expressions, keys: unknown[]): Authorization {
  const projected = namesIn(input, 'ProjectionExpression');
  return {
    action: `dynamodb:${action}`,
    resource: table,
    context: {
      'dynamodb:LeadingKeys': keys.map(leadingKey),
      'dynamodb:Attributes': [...new Set([TABLE.partitionKey, ...projected])],
      'dynamodb:Select': [projected.length > 0 ? 'SPECIFIC_ATTRIBUTES' : 'ALL_ATTRIBUTES'],
    },
  };
}

/** The DynamoDB operation of each document-client command (low-level commands are named after theirs). */
const OPERATIONS: Record<string, string> = {
  GetCommand: 'GetItem',
  PutCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  BatchGetCommand: 'BatchGetItem',
  TransactWriteCommand: 'TransactWriteItems',
  QueryCommand: 'Query',
  ScanCommand: 'Scan',
};

/**
 * The authorizations a request needs on `tableName` (requests to other tables, such as a
 * migration's legacy source, need none here: they are granted apart).
 */
export function authorizationsFor(request: SentRequest, tableName: string, tableArn: string): Authorization[] {
  const input = request.input as Expressions;
  const command = OPERATIONS[request.command] ?? request.command.replace(/Command$/, '');
  const onTable = input.TableName === tableName;
  switch (command) {
    case 'GetItem':
      return onTable ? [read('GetItem', tableArn, input, [input.Key])] : [];
    case 'PutItem':
      return onTable ? [write('PutItem', tableArn, input, plain(input.Item))] : [];
    case 'UpdateItem':
      return onTable ? [write('UpdateItem', tableArn, input)] : [];
    case 'DeleteItem':
      return onTable ? [write('DeleteItem', tableArn, input)] : [];
    case 'BatchGetItem': {
      const mine = (input.RequestItems as Record<string, Expressions & { Keys: unknown[] }>)[tableName];
      return mine ? [read('BatchGetItem', tableArn, mine, mine.Keys)] : [];
    }
    case 'TransactWriteItems':
      return (input.TransactItems as Record<string, Expressions>[]).flatMap((part) => {
        const [[kind, body] = ['', {}]] = Object.entries<Expressions>(part);
        if (body.TableName !== tableName) return [];
        if (kind === 'Put') return [write('PutItem', tableArn, body, plain(body.Item))];
        if (kind === 'Update') return [write('UpdateItem', tableArn, body)];
        throw new Error(`the model does not know a transaction's ${kind}`);
      });
    case 'Query': {
      if (!onTable) return [];
      const index = typeof input.IndexName === 'string' ? input.IndexName : undefined;
      const projected = namesIn(input, 'ProjectionExpression');
      return [
        {
          action: 'dynamodb:Query',
          resource: index ? `${tableArn}/index/${index}` : tableArn,
          context: {
            'dynamodb:Attributes': [
              ...new Set([...namesIn(input, 'KeyConditionExpression', 'FilterExpression'), ...projected]),
            ],
            'dynamodb:Select': [
              typeof input.Select === 'string'
                ? input.Select
                : projected.length > 0
                  ? 'SPECIFIC_ATTRIBUTES'
                  : index
                    ? 'ALL_PROJECTED_ATTRIBUTES'
                    : 'ALL_ATTRIBUTES',
            ],
          },
        },
      ];
    }
    case 'Scan':
      return onTable ? [{ action: 'dynamodb:Scan', resource: tableArn, context: {} }] : [];
    default:
      // DescribeTable, CreateTable...: the tests' own set-up, never a function's request.
      return [];
  }
}

const like = (value: string, pattern: string): boolean =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(value);

function holds(operator: string, values: string[] | undefined, allowed: string[]): boolean {
  switch (operator) {
    case 'ForAllValues:StringLike':
      return (values ?? []).every((v) => allowed.some((pattern) => like(v, pattern)));
    case 'ForAllValues:StringEquals':
      return (values ?? []).every((v) => allowed.includes(v));
    case 'StringEqualsIfExists':
      return values === undefined || values.every((v) => allowed.includes(v));
    case 'StringEquals':
      return values !== undefined && values.length > 0 && values.every((v) => allowed.includes(v));
    default:
      throw new Error(`the model does not know the condition operator ${operator}`);
  }
}

function conditionsHold(condition: ConditionBlock | undefined, auth: Authorization): boolean {
  return Object.entries(condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, allowed]) => holds(operator, auth.context[key as ContextKey], allowed)),
  );
}

/** The statements (by index) that allow an authorization; none: IAM refuses it. */
export function allowingStatements(statements: readonly IamStatement[], auth: Authorization): number[] {
  return statements.flatMap((statement, i) =>
    statement.Action.includes(auth.action) &&
    statement.Resource.includes(auth.resource) &&
    conditionsHold(statement.Condition, auth)
      ? [i]
      : [],
  );
}
