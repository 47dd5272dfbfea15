/**
 * Accounts' states put on their keys (lib/use-cases/account-states.ts): an account's keys by the
 * account-keys index, and one conditional UpdateItem per key that touches only the status
 * attributes and the index partition `upk` (never a count, the sort key or a lease slot); the
 * account records' status writes and pages. The records an import reads are
 * ./dynamo-account-records.ts.
 */
import { GetCommand } from './dynamo-wire.js';
import type { AccountRecord } from '../domain/accounts.js';
import type { KeyRecord } from '../domain/types.js';
import { type ReportChange, statusStamp } from '../domain/rules.js';
import type { AccountStore } from '../ports/account-store.js';
import { accountDirectory, accountPartition, accountRecordId, TABLE } from '../table.js';
import { DynamoAccountRecords, RECORD_FIELDS, toAccountRecord } from './dynamo-account-records.js';
import { keyWrite, RECORD_PROJECTION, reportClauses, stampClauses } from './dynamo-key-table.js';
import { reportCondition } from './report-condition.js';
import { type Item, projection, toKeyRecord } from './key-item.js';

const { partitionKey: KEY, poolIndex: POOL_INDEX, accountIndex: ACCOUNT_INDEX } = TABLE;

export class DynamoAccountStore extends DynamoAccountRecords implements AccountStore {
  async accountOf(pool: string, keyId: string): Promise<string | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [KEY]: keyId },
        ConsistentRead: true,
        ...projection(['pool', 'account']),
        ...this.capacity,
      }),
    );
    this.meter?.record('account-of', out.ConsumedCapacity);
    const item = out.Item;
    return item?.pool === pool && typeof item.account === 'string' ? item.account : undefined;
  }

  accountKeys(pool: string, account: string): Promise<string[]> {
    return this.partitionIds('account-keys', ACCOUNT_INDEX, accountPartition(pool, account));
  }

  async keysOf(pool: string, account: string): Promise<KeyRecord[]> {
    const items = await this.batchGet('account-items', await this.accountKeys(pool, account), RECORD_PROJECTION);
    return items
      .map((item) => toKeyRecord(item))
      .filter((key): key is KeyRecord => key?.pool === pool && key.account === account)
      .sort((a, b) => (a.keyId < b.keyId ? -1 : 1));
  }

  async stopKey(pool: string, keyId: string, change: ReportChange, nowMs: number): Promise<boolean> {
    const set: string[] = [];
    const remove: string[] = [];
    const names: Record<string, string> = { '#pool': 'pool' };
    const values: Item = { ':pool': pool, ':now': nowMs };
    // Invariants: a key of this pool only; reportApplies — the account's change replaces only
    // what a report about the key itself could (never an operator's or the provider's disabled,
    // undecryptable, retired, a more severe rest or one that lasts longer).
    const condition = `#pool = :pool AND ${reportClauses(change, { set, remove, names, values })}`;
    return (
      await this.conditionalUpdate(
        'account-stop',
        keyWrite(keyId, { set, remove, condition, names, values }),
        'updated',
      )
    ).ok;
  }

  async writeRecord(record: AccountRecord, report?: { change: ReportChange; nowMs: number }): Promise<boolean> {
    const names: Record<string, string> = { '#pool': POOL_INDEX.partitionKey };
    const values: Item = {
      ':directory': accountDirectory(record.pool),
      ':account': record.account,
      ':accountPool': record.pool,
    };
    const set = ['#pool = :directory', 'account = :account', 'accountPool = :accountPool'];
    const remove: string[] = [];
    if (record.credits !== undefined) {
      set.push('credits = :credits', 'creditsCheckedAt = :checkedAt');
      values[':credits'] = record.credits;
      values[':checkedAt'] = record.creditsCheckedAt ?? new Date().toISOString();
    }
    // The record's status fields have the key's names (STATUS_ATTRIBUTES), so one writer serves both.
    stampClauses(statusStamp(record), { set, remove, names, values });
    const conditions: string[] = [];
    // Invariant (reportApplies, as on the account's keys): a report's change replaces only what
    // it may (a client's hypothesis never the provider's verdict) and never shortens a rest, so
    // two reports spread at once leave the record with the state its keys got, whatever order
    // their writes land in.
    if (report) {
      values[':now'] = report.nowMs;
      conditions.push(`(attribute_not_exists(#status) OR ${reportCondition(report.change, names, values)})`);
    }
    // Invariant: a balance read never brings an account back from a status set after its
    // request went out (a 402 or a report that arrived while it was read): the record keeps the
    // newer word until the next read. A balance below the minimum is a verdict and applies.
    if (record.credits !== undefined && record.status === 'active')
      conditions.push('(attribute_not_exists(#stAt) OR #stAt <= :checkedAt)');
    const condition = conditions.length ? conditions.join(' AND ') : undefined;
    const result = await this.conditionalUpdate(
      'account-write',
      {
        Key: { [KEY]: accountRecordId(record.pool, record.account) },
        UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ...(condition ? { ConditionExpression: condition } : {}),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      'updated',
    );
    return result.ok;
  }

  async list(
    pool: string,
    limit: number,
    after?: string,
  ): Promise<{ accounts: AccountRecord[]; last: string | undefined }> {
    const start = after === undefined ? undefined : accountRecordId(pool, after);
    const { ids, lastId } = await this.poolIndexPage('account-list', accountDirectory(pool), limit, start);
    const items = ids.length === 0 ? [] : await this.batchGet('accounts', ids, RECORD_FIELDS);
    const accounts = items
      .map(toAccountRecord)
      .filter((r): r is AccountRecord => r?.pool === pool)
      .sort((a, b) => (a.account < b.account ? -1 : 1));
    return { accounts, last: lastId?.slice(accountRecordId(pool, '').length) };
  }
}
