/**
 * keypool's DynamoDB client: the item operations its adapters send (GetItem, PutItem,
 * UpdateItem, DeleteItem, Query, Scan, BatchGetItem, TransactWriteItems; BatchWriteItem for the
 * tests' seeding), over DynamoDB's JSON protocol (awsJson1_0: a POST to `/` naming
 * `DynamoDB_20120810.<operation>`), with plain JavaScript values in and out as the SDK's document
 * client gives them. Signed, sent and retried by AwsHttp (aws-http.ts), as KMS and S3 are.
 *
 * Why not the SDK's document client: a proxied use is one Query and one UpdateItem, and the
 * SDK's middleware stack, endpoint rules and schema serde around each were ~40 % of the Node.js
 * CPU a use cost (docs/performance.md); this client does the same calls with the JSON and the
 * signature alone. The SDK's client stays where no function but the one-off migration needs
 * it: creating and describing tables (lib/local/) and scanning a legacy table
 * (migration-sources.ts).
 *
 * An error keeps DynamoDB's name (`ConditionalCheckFailedException`,
 * `TransactionCanceledException`, ...) and, as the SDK's do, the old item of a refused condition
 * (`Item`) and a cancelled transaction's reasons (`CancellationReasons`), their items as plain
 * values here. A request DynamoDB still throttles once the retries are spent is StoreThrottled.
 */
import { randomUUID } from 'node:crypto';
import type {
  BatchGetCommandInput,
  BatchGetCommandOutput,
  BatchWriteCommandInput,
  BatchWriteCommandOutput,
  DeleteCommandInput,
  DeleteCommandOutput,
  GetCommandInput,
  GetCommandOutput,
  PutCommandInput,
  PutCommandOutput,
  QueryCommandInput,
  QueryCommandOutput,
  ScanCommandInput,
  ScanCommandOutput,
  TransactWriteCommandInput,
  TransactWriteCommandOutput,
  UpdateCommandInput,
  UpdateCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { StoreThrottled } from '../domain/errors.js';
import { AwsHttp, awsDomain, AwsServiceError, configuredEndpoint, endpointTarget, isJsonObject } from './aws-http.js';
import { fromWireItem, toWireItem, type WireItem } from './dynamo-values.js';

/** Each operation's input and output, as the SDK's document client types them. */
interface Operations {
  GetItem: [GetCommandInput, GetCommandOutput];
  PutItem: [PutCommandInput, PutCommandOutput];
  UpdateItem: [UpdateCommandInput, UpdateCommandOutput];
  DeleteItem: [DeleteCommandInput, DeleteCommandOutput];
  Query: [QueryCommandInput, QueryCommandOutput];
  Scan: [ScanCommandInput, ScanCommandOutput];
  BatchGetItem: [BatchGetCommandInput, BatchGetCommandOutput];
  BatchWriteItem: [BatchWriteCommandInput, BatchWriteCommandOutput];
  TransactWriteItems: [TransactWriteCommandInput, TransactWriteCommandOutput];
}
export type DynamoOperation = keyof Operations;
type Operation = DynamoOperation;

/** One request: its operation and its input. */
export class DynamoCommand<O extends Operation> {
  constructor(
    readonly operation: O,
    readonly input: Operations[O][0],
  ) {}
}
export class GetCommand extends DynamoCommand<'GetItem'> {
  constructor(input: GetCommandInput) {
    super('GetItem', input);
  }
}
export class PutCommand extends DynamoCommand<'PutItem'> {
  constructor(input: PutCommandInput) {
    super('PutItem', input);
  }
}
export class UpdateCommand extends DynamoCommand<'UpdateItem'> {
  constructor(input: UpdateCommandInput) {
    super('UpdateItem', input);
  }
}
export class DeleteCommand extends DynamoCommand<'DeleteItem'> {
  constructor(input: DeleteCommandInput) {
    super('DeleteItem', input);
  }
}
export class QueryCommand extends DynamoCommand<'Query'> {
  constructor(input: QueryCommandInput) {
    super('Query', input);
  }
}
export class ScanCommand extends DynamoCommand<'Scan'> {
  constructor(input: ScanCommandInput) {
    super('Scan', input);
  }
}
export class BatchGetCommand extends DynamoCommand<'BatchGetItem'> {
  constructor(input: BatchGetCommandInput) {
    super('BatchGetItem', input);
  }
}
export class BatchWriteCommand extends DynamoCommand<'BatchWriteItem'> {
  constructor(input: BatchWriteCommandInput) {
    super('BatchWriteItem', input);
  }
}
export class TransactWriteCommand extends DynamoCommand<'TransactWriteItems'> {
  constructor(input: TransactWriteCommandInput) {
    super('TransactWriteItems', input);
  }
}

/** What keypool's adapters send requests through. */
export interface DynamoCalls {
  send<O extends Operation>(command: DynamoCommand<O>): Promise<Operations[O][1]>;
  /** lets the client's connections go (a process that ends anyway need not) */
  destroy(): void;
}

/** A cancelled transaction's reason for one of its items, that item as it was when the reason names a refused condition. */
export interface CancellationReason {
  Code?: string;
  Message?: string;
  Item?: WireItem;
}

/** DynamoDB refused a request: its error name, and what the answer carried about the items. */
export class DynamoServiceError extends AwsServiceError {
  /** a refused condition's item as it was (ReturnValuesOnConditionCheckFailure ALL_OLD) */
  readonly Item: WireItem | undefined;
  /** a cancelled transaction's reasons, one per item in order */
  readonly CancellationReasons: CancellationReason[] | undefined;
  constructor(code: string, status: number, message: string, body: Record<string, unknown>) {
    super(code, status, message);
    this.Item = isRecord(body.Item) ? fromWireItem(body.Item) : undefined;
    this.CancellationReasons = Array.isArray(body.CancellationReasons)
      ? body.CancellationReasons.filter(isRecord).map((reason) => ({
          ...(typeof reason.Code === 'string' ? { Code: reason.Code } : {}),
          ...(typeof reason.Message === 'string' ? { Message: reason.Message } : {}),
          ...(isRecord(reason.Item) ? { Item: fromWireItem(reason.Item) } : {}),
        }))
      : undefined;
  }
}

/** Whether `error` is DynamoDB's error `name` (by name: an error thrown by the SDK's client reads the same). */
export function isDynamoError(error: unknown, name: string): error is DynamoServiceError {
  return error instanceof Error && error.name === name;
}

/** DynamoDB's errors for a throttled request, which AwsHttp retried with backoff before they reach here. */
const THROTTLING_ERRORS: ReadonlySet<string> = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

/** A BatchGetItem answers up to 16 MB; a Query or Scan page up to 1 MB. */
const MAX_ANSWER_BYTES = 20 * 1024 * 1024;

/** An object of fields (a request's bytes are values, not fields). */
const isRecord = (value: unknown): value is Record<string, unknown> =>
  isJsonObject(value) && !(value instanceof Uint8Array);

/** The fields of a request or an answer that are one item (or key) of attribute values, and those that are lists of them. */
const ITEM_FIELDS: ReadonlySet<string> = new Set([
  'Key',
  'Item',
  'ExpressionAttributeValues',
  'ExclusiveStartKey',
  'Attributes',
  'LastEvaluatedKey',
  'ItemCollectionKey',
]);
const ITEM_LIST_FIELDS: ReadonlySet<string> = new Set(['Keys', 'Items']);
/** Fields keyed by table name (whatever the name): each table's part is converted as a request's or an answer's fields. */
const BY_TABLE_FIELDS: ReadonlySet<string> = new Set(['RequestItems', 'UnprocessedKeys', 'UnprocessedItems']);
/** Fields keyed by names of the caller's (attribute placeholders, tables, indexes): never converted. */
const KEPT_FIELDS: ReadonlySet<string> = new Set(['ExpressionAttributeNames', 'ConsumedCapacity']);

/** ItemCollectionMetrics per table (a batch's, a transaction's), not one write's (whose ItemCollectionKey is an item). */
const isMetricsByTable = (name: string, field: Record<string, unknown>): boolean =>
  name === 'ItemCollectionMetrics' && !isRecord(field.ItemCollectionKey);

/**
 * A request's or an answer's fields with every item converted by `convert`: the fields that are
 * items by name, the lists of them, and the same found inside (TransactItems, RequestItems,
 * Responses, UnprocessedKeys, ItemCollectionMetrics). Everything else is copied as it is.
 */
function convertItems(value: unknown, convert: (item: Record<string, unknown>) => Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((entry) => convertItems(entry, convert));
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    if (field === undefined) continue;
    if (KEPT_FIELDS.has(name)) out[name] = field;
    else if (ITEM_FIELDS.has(name) && isRecord(field)) out[name] = convert(field);
    else if (ITEM_LIST_FIELDS.has(name) && Array.isArray(field))
      out[name] = field.map((item: unknown) => (isRecord(item) ? convert(item) : item));
    else if (name === 'Responses' && isRecord(field))
      // BatchGetItem: per table, a list of items.
      out[name] = Object.fromEntries(
        Object.entries(field).map(([table, items]) => [
          table,
          Array.isArray(items) ? items.map((item: unknown) => (isRecord(item) ? convert(item) : item)) : items,
        ]),
      );
    else if (isRecord(field) && (BY_TABLE_FIELDS.has(name) || isMetricsByTable(name, field)))
      out[name] = Object.fromEntries(
        Object.entries(field).map(([table, part]) => [table, convertItems(part, convert)]),
      );
    else out[name] = convertItems(field, convert);
  }
  return out;
}

export interface DynamoWireOptions {
  /** an endpoint of one's own (DynamoDB Local); default: the region's, or the one the environment names for DynamoDB */
  endpoint?: string;
  /** default: AWS_REGION, AWS_DEFAULT_REGION, then the shared config file's, as the SDK finds it */
  region?: string;
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** attempts per request, the first included (default 3, as the SDK's standard retry mode) */
  maxAttempts?: number;
  /** a request without its answer's headers after this long fails with TimeoutError (default 60 s) */
  requestTimeoutMs?: number;
  /** a connection not made after this long fails (default 5 s) */
  connectionTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** The region as the SDK finds it when none is given: the environment, then the shared config file's profile. */
async function defaultRegion(env: NodeJS.ProcessEnv): Promise<string> {
  const named = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (named) return named;
  const { loadConfig, NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS } =
    await import('@smithy/core/config');
  return loadConfig(NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS)();
}

export class DynamoWire implements DynamoCalls {
  private readonly options: DynamoWireOptions;
  private ready: Promise<{ aws: AwsHttp; target: ReturnType<typeof endpointTarget> }> | undefined;
  private readonly opened: AwsHttp[] = [];

  constructor(options: DynamoWireOptions = {}) {
    this.options = options;
  }

  private connect(): Promise<{ aws: AwsHttp; target: ReturnType<typeof endpointTarget> }> {
    this.ready ??= (async () => {
      const env = this.options.env ?? process.env;
      const region = this.options.region ?? (await defaultRegion(env));
      const aws = new AwsHttp({
        service: 'dynamodb',
        region,
        ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        ...(this.options.maxAttempts !== undefined ? { maxAttempts: this.options.maxAttempts } : {}),
        ...(this.options.requestTimeoutMs !== undefined ? { requestTimeoutMs: this.options.requestTimeoutMs } : {}),
        ...(this.options.connectionTimeoutMs !== undefined
          ? { connectionTimeoutMs: this.options.connectionTimeoutMs }
          : {}),
      });
      this.opened.push(aws);
      const endpoint =
        this.options.endpoint ??
        configuredEndpoint('DYNAMODB', env) ??
        `https://dynamodb.${region}.${awsDomain(region)}`;
      return { aws, target: endpointTarget(endpoint) };
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  destroy(): void {
    for (const aws of this.opened.splice(0)) aws.destroy();
    this.ready = undefined;
  }

  async send<O extends Operation>(command: DynamoCommand<O>): Promise<Operations[O][1]> {
    const { aws, target } = await this.connect();
    // A transaction without a token of its caller's gets one, as the SDK gives it (an idempotency
    // token): the same body goes out on every attempt, so a transaction DynamoDB applied but whose
    // answer was lost is answered as done when it is sent again, not run a second time.
    const input =
      command.operation === 'TransactWriteItems' && !(command.input as TransactWriteCommandInput).ClientRequestToken
        ? { ...command.input, ClientRequestToken: randomUUID() }
        : command.input;
    const body = Buffer.from(JSON.stringify(convertItems(input, toWireItem)));
    try {
      return await aws.retrying(async () => {
        const answer = await aws.postJson(target, {
          version: '1.0',
          target: `DynamoDB_20120810.${command.operation}`,
          body,
          maxBytes: MAX_ANSWER_BYTES,
        });
        const { document } = answer;
        // No JSON object under a success: not DynamoDB answering (the SDK throws a SyntaxError; the edges read both so).
        if (answer.error || !isRecord(document))
          throw new DynamoServiceError(
            answer.error?.code ?? 'Unknown',
            answer.status,
            answer.error?.message ?? 'no message',
            answer.fields,
          );
        const output = convertItems(document, fromWireItem) as Record<string, unknown>;
        return { ...output, $metadata: { httpStatusCode: answer.status } } as Operations[O][1];
      });
    } catch (error) {
      if (error instanceof Error && THROTTLING_ERRORS.has(error.name))
        throw new StoreThrottled({ reason: 'throttled', dynamoCode: error.name });
      throw error;
    }
  }
}
