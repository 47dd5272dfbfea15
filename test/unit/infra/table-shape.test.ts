/** The CDK's table shape is mapped from createTableInput, never written a second time. */
import { AttributeType, ProjectionType } from 'aws-cdk-lib/aws-dynamodb';
import { describe, expect, it } from 'vitest';
import { cdkTableShape, TableShapeError } from '../../../infra/table-shape.js';
import { createTableInput, TABLE } from '../../../lib/table.js';

describe('cdkTableShape', () => {
  it('maps the keypool table: keyId partition key, usage-count (INCLUDE), pool-keys and account-keys (KEYS_ONLY)', () => {
    // Act
    const shape = cdkTableShape();
    // Assess
    expect(shape.partitionKey).toEqual({ name: TABLE.partitionKey, type: AttributeType.STRING });
    expect(shape.sortKey).toBeUndefined();
    expect(shape.indexes).toEqual([
      {
        indexName: TABLE.usageIndex.name,
        partitionKey: { name: TABLE.usageIndex.partitionKey, type: AttributeType.STRING },
        sortKey: { name: TABLE.usageIndex.sortKey, type: AttributeType.NUMBER },
        projectionType: ProjectionType.INCLUDE,
        nonKeyAttributes: [...TABLE.usageIndex.projected],
      },
      {
        indexName: TABLE.poolIndex.name,
        partitionKey: { name: TABLE.poolIndex.partitionKey, type: AttributeType.STRING },
        sortKey: { name: TABLE.poolIndex.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.KEYS_ONLY,
      },
      {
        indexName: TABLE.accountIndex.name,
        partitionKey: { name: TABLE.accountIndex.partitionKey, type: AttributeType.STRING },
        sortKey: { name: TABLE.accountIndex.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.KEYS_ONLY,
      },
    ]);
  });

  it('refuses a key attribute that has no definition (DynamoDB would refuse the table too)', () => {
    // Prepare
    const input = createTableInput('t');
    input.AttributeDefinitions = input.AttributeDefinitions?.filter(
      (d) => d.AttributeName !== TABLE.poolIndex.partitionKey,
    );
    // Act / Assess
    expect(() => cdkTableShape(input)).toThrow(TableShapeError);
    expect(() => cdkTableShape(input)).toThrow(/"pool"/);
  });
});
