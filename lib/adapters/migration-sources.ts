/**
 * Where the migration reads the old system's rows: a `mongoexport` file on disk, the same
 * file as an S3 object (the Lambda), or a legacy DynamoDB table. Each source can be checked
 * before the first write (`check`) and then streamed (`rows`).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type DynamoDBClient, ScanCommand, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { UnreadableSource } from '../domain/errors.js';
import { checkExport, readExport } from './export-reader.js';
import type { MigrationSource, ReadOptions, SourceRow } from '../ports/migration-source.js';

const READ_CHUNK_BYTES = 1024 * 1024;

function errorName(error: unknown): string {
  const e = error as { code?: string; name?: string };
  return e.code ?? e.name ?? 'error';
}

/** A mongoexport file on disk, read twice: once to check it, once to migrate it. */
export function fileSource(path: string): MigrationSource {
  let checked: { size: number; mtimeMs: number } | undefined;
  const open = (): AsyncIterable<Uint8Array> => createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  return {
    describe: path,
    get totalBytes() {
      return checked?.size;
    },
    async check() {
      try {
        const info = await stat(path);
        if (!info.isFile()) throw new UnreadableSource(`cannot read ${path}: not a file`);
        checked = { size: info.size, mtimeMs: info.mtimeMs };
      } catch (error) {
        if (error instanceof UnreadableSource) throw error;
        throw new UnreadableSource(`cannot read ${path}: ${errorName(error)}`);
      }
      await checkExport(open());
    },
    async *rows(options: ReadOptions = {}): AsyncGenerator<SourceRow> {
      const info = await stat(path).catch(() => undefined);
      if (checked && (info?.size !== checked.size || info.mtimeMs !== checked.mtimeMs)) {
        throw new UnreadableSource(`${path} changed after it was checked; nothing was written, run again`);
      }
      yield* readExport(open(), options);
    },
  };
}

/** A mongoexport file as an S3 object; the second read is pinned to the ETag the check read. */
export function s3Source(client: S3Client, bucket: string, key: string): MigrationSource {
  const where = `s3://${bucket}/${key}`;
  let etag: string | undefined;
  let size: number | undefined;
  const get = async (ifMatch?: string): Promise<AsyncIterable<Uint8Array>> => {
    try {
      const out = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, ...(ifMatch ? { IfMatch: ifMatch } : {}) }),
      );
      etag = out.ETag;
      size = out.ContentLength;
      if (!out.Body) throw new UnreadableSource(`cannot read ${where}: empty response`);
      return out.Body as AsyncIterable<Uint8Array>;
    } catch (error) {
      if (error instanceof UnreadableSource) throw error;
      const why = errorName(error);
      throw new UnreadableSource(
        why === 'PreconditionFailed'
          ? `${where} changed after it was checked; run again`
          : `cannot read ${where}: ${why}`,
      );
    }
  };
  return {
    describe: where,
    get totalBytes() {
      return size;
    },
    async check() {
      await checkExport(await get());
    },
    async *rows(options: ReadOptions = {}): AsyncGenerator<SourceRow> {
      yield* readExport(await get(etag), options);
    },
  };
}

/**
 * A legacy DynamoDB table, scanned page by page through the SDK's client (the migration, a
 * one-off run, carries it); a row's position is its 1-based index in scan order. Numbers are
 * read as exact digit strings (`{"$numberDecimal": ...}`), so a
 * value the SDK could not hold as a JS number is reported invalid rather than crashing the scan.
 */
export function legacyTableSource(
  client: DynamoDBClient,
  tableName: string,
  options: { pageLimit?: number } = {},
): MigrationSource {
  const scan = async (start: ScanCommandOutput['LastEvaluatedKey'], limit?: number): Promise<ScanCommandOutput> => {
    try {
      return await client.send(
        new ScanCommand({ TableName: tableName, ExclusiveStartKey: start, ...(limit ? { Limit: limit } : {}) }),
      );
    } catch (error) {
      const why = errorName(error);
      if (why === 'ResourceNotFoundException') throw new UnreadableSource(`table "${tableName}" does not exist`);
      if (why === 'AccessDeniedException') throw new UnreadableSource(`no permission to scan table "${tableName}"`);
      throw error;
    }
  };
  return {
    describe: `table ${tableName}`,
    totalBytes: undefined,
    async check() {
      await scan(undefined, 1);
    },
    async *rows(): AsyncGenerator<SourceRow> {
      let position = 0;
      let start: ScanCommandOutput['LastEvaluatedKey'];
      do {
        const page = await scan(start, options.pageLimit);
        for (const item of page.Items ?? []) {
          position++;
          yield {
            position,
            value: unmarshall(item, { wrapNumbers: (digits: string) => ({ $numberDecimal: digits }) }),
          };
        }
        start = page.LastEvaluatedKey;
      } while (start);
    },
  };
}
