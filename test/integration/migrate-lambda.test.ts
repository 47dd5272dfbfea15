import { Readable } from 'node:stream';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { PutCommand } from '../../lib/adapters/dynamo-wire.js';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { DynamoMigrationStore } from '../../lib/adapters/dynamo-migration-store.js';
import { DynamoPoolStore } from '../../lib/adapters/dynamo-pool-store.js';
import { fileSource, legacyTableSource, s3Source } from '../../lib/adapters/migration-sources.js';
import { documentClient, dynamoClient } from '../../lib/adapters/dynamo-client.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { runMigrateEvent } from '../../lib/events/migrate.js';
import { JsonLogger } from '../../lib/observability/logger.js';
import type { MigrationSources } from '../../lib/ports/migration-source.js';
import { dynamoEndpoint, fakeKey, scanOpened, uniqueName } from '../support/dynamo.js';
import { testSealer } from '../support/sealing.js';

const logger = new JsonLogger({ serviceName: 'test', env: { POWERTOOLS_LOG_LEVEL: 'SILENT' } });

/** An S3 stand-in that serves one object and records each GetObject's input (S3 is not what is under test). */
function fakeS3(body: string, etag = '"abc"') {
  const calls: Record<string, unknown>[] = [];
  const client = {
    send: (command: { input: Record<string, unknown> }) => {
      calls.push(command.input);
      return Promise.resolve({ Body: Readable.from([Buffer.from(body)]), ETag: etag, ContentLength: body.length });
    },
  } as unknown as S3Client;
  return { client, calls };
}

async function setup() {
  const tableName = uniqueName('lambda');
  await ensureTable(dynamoEndpoint(), tableName);
  const dynamo = documentClient({ endpoint: dynamoEndpoint(), region: undefined });
  /** the SDK's client: legacy tables are created, and read by the migration, through it */
  const legacy = dynamoClient({ endpoint: dynamoEndpoint(), region: undefined });
  const store = new DynamoMigrationStore({ client: dynamo, tableName });
  /** The real sources, with S3 served by the stand-in. */
  const sources = (s3: S3Client): MigrationSources => ({
    file: fileSource,
    s3: (bucket, key) => s3Source(s3, bucket, key),
    table: (name) => legacyTableSource(legacy, name),
  });
  return {
    tableName,
    dynamo,
    legacy,
    store,
    pools: new DynamoPoolStore({ client: dynamo, tableName }),
    sealer: testSealer(),
    sources,
  };
}

describe('migrate Lambda', () => {
  it('streams an S3 export, pins the second read to the checked ETag, and answers with the report', async () => {
    // Prepare
    const { tableName, dynamo, store, pools, sealer, sources } = await setup();
    const key = fakeKey();
    const s3 = fakeS3(`[${JSON.stringify({ api_key: key, credits_left: { $numberDouble: '20.5' } })}]`);
    // Act
    const answer = await runMigrateEvent(
      { source: { s3: { bucket: 'old-exports', key: 'keys.json' } }, pool: 'legacy' },
      { sources: sources(s3.client), store, pools, sealer, logger },
    );
    // Assess
    expect(answer).toEqual({
      read: 1,
      imported: 1,
      raised: 0,
      unchanged: 0,
      duplicates: 0,
      invalid: [],
      ignoredFields: 0,
    });
    expect(s3.calls).toEqual([
      { Bucket: 'old-exports', Key: 'keys.json' },
      { Bucket: 'old-exports', Key: 'keys.json', IfMatch: '"abc"' },
    ]);
    const [item] = await scanOpened(dynamo, tableName);
    expect(item).toMatchObject({ pool: 'legacy', usageCount: 5 });
  });

  it('the deployed handler migrates a legacy table named in the event', async () => {
    // Prepare
    const { tableName, dynamo, legacy: legacyClient } = await setup();
    const legacy = uniqueName('legacy');
    await legacyClient.send(
      new CreateTableCommand({
        TableName: legacy,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    await dynamo.send(
      new PutCommand({ TableName: legacy, Item: { id: '1', api_key: fakeKey(), usage_count: 4, is_active: false } }),
    );
    process.env.KEYPOOL_DYNAMODB_ENDPOINT = dynamoEndpoint();
    process.env.KEYPOOL_TABLE = tableName;
    const { handler } = await import('../../functions/migrate.js');
    // Act
    const answer = await handler({ source: { table: legacy }, dryRun: false, initialCredits: 25 }, {} as Context);
    // Assess
    expect(answer).toMatchObject({ read: 1, imported: 1, ignoredFields: 1 });
    const [item] = await scanOpened(dynamo, tableName);
    expect(item).toMatchObject({ usageCount: 4, status: 'disabled' });
  });

  it.each([
    [{}, /source/],
    [{ source: { s3: { bucket: 'b' } } }, /source/],
    [{ source: { table: 'legacy' }, initialCredits: -1 }, /initialCredits/],
    [{ source: { table: 'legacy' }, pool: 'no spaces allowed' }, /pool/],
  ])('answers a bad event %j with invalid_request, not an exception', async (event, field) => {
    const { store, pools, sealer, sources } = await setup();
    const answer = await runMigrateEvent(event, { sources: sources(fakeS3('').client), store, pools, sealer, logger });
    expect(answer).toMatchObject({ error: 'invalid_request', message: expect.stringMatching(field) as unknown });
  });

  it('answers an unreadable source with its reason', async () => {
    const { store, pools, sealer, sources } = await setup();
    const answer = await runMigrateEvent(
      { source: { s3: { bucket: 'old-exports', key: 'x.bin' } } },
      { sources: sources(fakeS3('\u0000\u0001binary').client), store, pools, sealer, logger },
    );
    expect(answer).toEqual({
      error: 'unreadable_source',
      message: expect.stringMatching(/not a mongoexport file/) as unknown,
    });
  });
});
