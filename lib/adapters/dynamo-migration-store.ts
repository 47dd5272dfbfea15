/**
 * The migration's writes to keypool's table. Reads are batched (BatchGetItem, unprocessed
 * keys retried); writes are batched as one TransactWriteItems of up to 100 conditional
 * writes, because BatchWriteItem cannot carry a condition and every rule here must hold while
 * the broker leases the same keys. A write refused by its own condition is reported back with
 * the key as it is; the others of its transaction (rolled back with it) are sent again.
 * Cost note: transactional writes consume twice the write capacity of plain ones; for a
 * one-off migration that is the price of checking every write.
 */
import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, type DynamoCalls, isDynamoError, TransactWriteCommand } from './dynamo-wire.js';
import type { KeyStatus, StatusBy } from '../domain/types.js';
import type { ExistingKey, KeyWrite, MigrationStore, SourceSaid, WriteResult } from '../ports/migration-store.js';
import { TABLE, usageSortKeyShift } from '../table.js';
import { stampClauses } from './dynamo-key-table.js';
import { MIGRATION_ATTRIBUTES, STATUS_ATTRIBUTES, toKeyItem } from './key-item.js';

const { partitionKey: KEY, usageIndex: INDEX } = TABLE;
const SAID = MIGRATION_ATTRIBUTES;
const MAX_BATCH_GET = 100;
const MAX_TRANSACTION = 100;
const MAX_TRANSACTION_ATTEMPTS = 10;
/** Cancellation reasons that say "not refused, try again", as opposed to a failed condition or a bad request. */
const RETRYABLE = new Set([
  'None',
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

function keyIdOf(write: KeyWrite): string {
  return write.kind === 'create' ? write.key.keyId : write.keyId;
}

export interface DynamoMigrationStoreOptions {
  client: DynamoCalls;
  tableName: string;
}

function existingFrom(item: Record<string, unknown> | undefined): ExistingKey | undefined {
  if (!item) return undefined;
  const said = item[SAID.count];
  return {
    pool: String(item.pool),
    usageCount: Number(item.usageCount ?? 0),
    status: item.status as KeyStatus,
    ...(typeof item[STATUS_ATTRIBUTES.by] === 'string' ? { statusBy: item[STATUS_ATTRIBUTES.by] as StatusBy } : {}),
    ...(typeof said === 'number' ? { migrated: { usageCount: said, disabled: item[SAID.disabled] === true } } : {}),
  };
}

/** The record of what the source said, as the attributes a write sets. */
function saidItem(said: SourceSaid): Record<string, unknown> {
  return { [SAID.count]: said.usageCount, [SAID.disabled]: said.disabled };
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

export class DynamoMigrationStore implements MigrationStore {
  private readonly client: DynamoCalls;
  private readonly tableName: string;

  constructor(options: DynamoMigrationStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  async existing(keyIds: string[]): Promise<Map<string, ExistingKey>> {
    if (keyIds.length > MAX_BATCH_GET) throw new RangeError(`at most ${MAX_BATCH_GET} keys per read`);
    const found = new Map<string, ExistingKey>();
    let keys: Record<string, unknown>[] = keyIds.map((keyId) => ({ [KEY]: keyId }));
    // BatchGetItem may leave keys unprocessed under load; they are asked again with backoff.
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
      const out = await this.client.send(
        new BatchGetCommand({
          RequestItems: {
            [this.tableName]: {
              Keys: keys,
              // Consistent: a key the previous run created a moment ago must be seen as existing.
              ConsistentRead: true,
              ProjectionExpression: '#key, #pool, usageCount, #status, #stBy, #said, #saidOff',
              ExpressionAttributeNames: {
                '#key': KEY,
                '#pool': 'pool',
                '#status': 'status',
                '#stBy': STATUS_ATTRIBUTES.by,
                '#said': SAID.count,
                '#saidOff': SAID.disabled,
              },
            },
          },
        }),
      );
      for (const item of out.Responses?.[this.tableName] ?? []) {
        const key = existingFrom(item);
        if (key) found.set(item[KEY] as string, key);
      }
      keys = (out.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Record<string, unknown>[];
    }
    return found;
  }

  async write(writes: KeyWrite[]): Promise<WriteResult[]> {
    if (writes.length > MAX_TRANSACTION) throw new RangeError(`at most ${MAX_TRANSACTION} writes per call`);
    const results = new Array<WriteResult | undefined>(writes.length);
    let open = writes.map((_, i) => i);
    for (let attempt = 0; open.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 20 * 2 ** attempt));
      if (attempt > MAX_TRANSACTION_ATTEMPTS)
        throw new Error("the migration's writes kept conflicting with other transactions");
      try {
        // One transaction per batch: 100 conditional writes in one request. BatchWriteItem
        // would be cheaper but cannot carry a condition.
        await this.client.send(
          new TransactWriteCommand({ TransactItems: open.map((i) => this.transactItem(writes[i] as KeyWrite)) }),
        );
        for (const i of open) results[i] = { applied: true };
        open = [];
      } catch (error) {
        if (!isDynamoError(error, 'TransactionCanceledException')) throw error;
        const reasons = error.CancellationReasons ?? [];
        if (reasons.some((r) => r.Code !== undefined && !RETRYABLE.has(r.Code) && r.Code !== 'ConditionalCheckFailed'))
          throw error;
        const again: number[] = [];
        const unknown: number[] = [];
        open.forEach((i, n) => {
          const reason = reasons[n];
          if (reason?.Code !== 'ConditionalCheckFailed') {
            // Not refused itself: rolled back with the transaction ("None") or a transient conflict.
            again.push(i);
            return;
          }
          // The old item holds the secret: only its pool, count and status leave this method.
          const current = reason.Item ? existingFrom(reason.Item) : undefined;
          results[i] = { applied: false, current };
          if (!current && (writes[i] as KeyWrite).kind === 'create') unknown.push(i);
        });
        if (unknown.length > 0) {
          // A store that does not return the refused item: read what is there instead.
          const found = await this.existing(unknown.map((i) => keyIdOf(writes[i] as KeyWrite)));
          for (const i of unknown) results[i] = { applied: false, current: found.get(keyIdOf(writes[i] as KeyWrite)) };
        }
        open = again;
      }
    }
    return results.map((r) => r ?? { applied: true });
  }

  private transactItem(write: KeyWrite): NonNullable<TransactWriteCommandInput['TransactItems']>[number] {
    if (write.kind === 'create') {
      return {
        Put: {
          TableName: this.tableName,
          // toKeyItem keeps the index attributes right: upk only while leasable, usk from count and last use.
          Item: { ...toKeyItem(write.key), ...saidItem(write.said) },
          // Invariant: never overwrite a key. One that appeared since the read (an operator's
          // import, another run) keeps its count and leases; the caller raises it instead.
          ConditionExpression: 'attribute_not_exists(#key)',
          ExpressionAttributeNames: { '#key': KEY },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      };
    }
    const { keyId, pool, change } = write;
    if (change.to < change.from) throw new RangeError('a migration never lowers a count');
    const set = ['#said = :said', '#saidOff = :saidOff'];
    const remove: string[] = [];
    const names: Record<string, string> = {
      '#pool': 'pool',
      '#status': 'status',
      '#said': SAID.count,
      '#saidOff': SAID.disabled,
    };
    const values: Record<string, unknown> = {
      ':from': change.from,
      ':pool': pool,
      ':retired': 'retired',
      ':said': change.said.usageCount,
      ':saidOff': change.said.disabled,
    };
    // Invariant: a row is news only against what the key records of the source as the migration
    // read it; if another run recorded more meanwhile, the write is decided again.
    const { saidBefore } = change;
    const saidCondition = saidBefore
      ? '#said = :saidBefore AND #saidOff = :saidOffBefore'
      : 'attribute_not_exists(#said)';
    if (saidBefore) {
      values[':saidBefore'] = saidBefore.usageCount;
      values[':saidOffBefore'] = saidBefore.disabled;
    }
    if (change.to > change.from) {
      // The count and its tier in the sort key move together, so the index order stays right.
      set.push('usageCount = :to', '#usk = #usk + :delta');
      names['#usk'] = INDEX.sortKey;
      values[':to'] = change.to;
      values[':delta'] = usageSortKeyShift(change.from, change.to);
    }
    if (change.disable) {
      // Disabled keys leave the sparse index, exactly like an operator's disable. Disabled with
      // no setter, as a key this migration creates disabled (isOperatorDisabled): who set the
      // status it replaces (a caller's report, the provider's verdict) goes with it, so no
      // balance read and no bulk enable of the provider's disables undoes the source's word.
      stampClauses({ status: 'disabled' }, { set, remove, names, values });
      remove.push('#upk');
      names['#upk'] = INDEX.partitionKey;
    }
    return {
      Update: {
        TableName: this.tableName,
        Key: { [KEY]: keyId },
        UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
        // Invariants: never lower a count, and never write over a count a lease or a
        // completion changed since the migration read it (the raise is computed from :from);
        // a key belongs to one pool: a migration into one pool never raises or disables
        // another's key (which also says the key exists: a change never creates a half item);
        // a key an operator retired stays retired (only an import with revive brings it back).
        ConditionExpression: `#pool = :pool AND usageCount = :from AND #status <> :retired AND ${saidCondition}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }
}
