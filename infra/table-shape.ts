/**
 * The table's keys and indexes for the CDK, mapped from createTableInput (lib/table.ts): the
 * CreateTable input the local stack and the tests create their tables with. The deployed
 * table is therefore the same shape by construction; an index added there is deployed here
 * without a second definition.
 */
import type { AttributeDefinition, CreateTableCommandInput, KeySchemaElement } from '@aws-sdk/client-dynamodb';
import {
  type Attribute,
  AttributeType,
  type GlobalSecondaryIndexProps,
  ProjectionType,
} from 'aws-cdk-lib/aws-dynamodb';
import { createTableInput } from '../lib/table.js';

export class TableShapeError extends Error {
  override readonly name = 'TableShapeError';
}

export interface CdkTableShape {
  partitionKey: Attribute;
  sortKey?: Attribute;
  indexes: GlobalSecondaryIndexProps[];
}

const ATTRIBUTE_TYPES: Record<string, AttributeType> = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
};

function attribute(definitions: readonly AttributeDefinition[], name: string | undefined): Attribute {
  const type = definitions.find((d) => d.AttributeName === name)?.AttributeType;
  const mapped = type === undefined ? undefined : ATTRIBUTE_TYPES[type];
  if (name === undefined || mapped === undefined)
    throw new TableShapeError(`key attribute "${String(name)}" has no attribute definition`);
  return { name, type: mapped };
}

function keys(
  definitions: readonly AttributeDefinition[],
  schema: readonly KeySchemaElement[] | undefined,
): { partitionKey: Attribute; sortKey?: Attribute } {
  const hash = schema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
  const range = schema?.find((k) => k.KeyType === 'RANGE')?.AttributeName;
  return {
    partitionKey: attribute(definitions, hash),
    ...(range === undefined ? {} : { sortKey: attribute(definitions, range) }),
  };
}

/**
 * The CDK form of a CreateTable input's key schema and global secondary indexes. Every key
 * attribute keeps its declared type; every projection is carried over exactly (KEYS_ONLY,
 * INCLUDE with its attributes, ALL). Throws TableShapeError on an input DynamoDB would refuse
 * (a key attribute without a definition).
 */
export function cdkTableShape(input: CreateTableCommandInput = createTableInput('unused')): CdkTableShape {
  const definitions = input.AttributeDefinitions ?? [];
  const indexes = (input.GlobalSecondaryIndexes ?? []).map((index): GlobalSecondaryIndexProps => {
    const projection = index.Projection?.ProjectionType ?? 'ALL';
    if (index.IndexName === undefined) throw new TableShapeError('an index without a name');
    return {
      indexName: index.IndexName,
      ...keys(definitions, index.KeySchema),
      ...(projection === 'INCLUDE'
        ? { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...(index.Projection?.NonKeyAttributes ?? [])] }
        : { projectionType: projection === 'KEYS_ONLY' ? ProjectionType.KEYS_ONLY : ProjectionType.ALL }),
    };
  });
  return { ...keys(definitions, input.KeySchema), indexes };
}
