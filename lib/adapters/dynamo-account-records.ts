/**
 * Account records in keypool's table (lib/table.ts): `acct#<pool>#<account>`, under the
 * pool-keys partition `#accounts#<pool>`, and a key's `account` with its account-keys partition
 * `apk`. What an import and an operator's change need; the writes that put an account's state
 * on its keys are ./dynamo-account-store.ts.
 */
import { GetCommand, UpdateCommand } from './dynamo-wire.js';
import { ACCOUNT_STATUSES, type AccountRecord, type AccountStatus } from '../domain/accounts.js';
import type { StatusBy } from '../domain/types.js';
import type { AccountRecords } from '../ports/account-store.js';
import {
  ACCOUNT_RECORD_ATTRIBUTES,
  accountDirectory,
  accountPartition,
  accountRecordId,
  KEY_PREFIX,
  TABLE,
} from '../table.js';
import { DynamoTable } from './dynamo-table.js';
import { type Item, projection } from './key-item.js';

const { partitionKey: KEY, poolIndex: POOL_INDEX, accountIndex: ACCOUNT_INDEX } = TABLE;

export const RECORD_FIELDS = projection(ACCOUNT_RECORD_ATTRIBUTES);

/** The record an account item holds; undefined for an item that is not one. */
export function toAccountRecord(item: Item | undefined): AccountRecord | undefined {
  if (!item || typeof item.account !== 'string' || typeof item.accountPool !== 'string') return undefined;
  const status = (ACCOUNT_STATUSES as readonly string[]).includes(String(item.status))
    ? (item.status as AccountStatus)
    : 'active';
  return {
    pool: item.accountPool,
    account: item.account,
    status,
    ...(typeof item.credits === 'number' ? { credits: item.credits } : {}),
    ...(typeof item.creditsCheckedAt === 'string' ? { creditsCheckedAt: item.creditsCheckedAt } : {}),
    ...(typeof item.statusBy === 'string' ? { statusBy: item.statusBy as StatusBy } : {}),
    ...(typeof item.statusReason === 'string' ? { statusReason: item.statusReason } : {}),
    ...(typeof item.statusAt === 'string' ? { statusAt: item.statusAt } : {}),
    ...(typeof item.cooldownUntil === 'number' ? { cooldownUntil: item.cooldownUntil } : {}),
  };
}

export class DynamoAccountRecords extends DynamoTable implements AccountRecords {
  async record(pool: string, account: string): Promise<AccountRecord | undefined> {
    const out = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [KEY]: accountRecordId(pool, account) },
        ConsistentRead: true,
        ...RECORD_FIELDS,
        ...this.capacity,
      }),
    );
    this.meter?.record('account', out.ConsumedCapacity);
    return toAccountRecord(out.Item);
  }

  async records(pool: string, accounts: readonly string[]): Promise<Map<string, AccountRecord>> {
    const ids = [...new Set(accounts)].map((account) => accountRecordId(pool, account));
    const items = ids.length === 0 ? [] : await this.batchGet('accounts', ids, RECORD_FIELDS);
    const records = new Map<string, AccountRecord>();
    for (const item of items) {
      const record = toAccountRecord(item);
      if (record?.pool === pool) records.set(record.account, record);
    }
    return records;
  }

  async ensure(pool: string, account: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [KEY]: accountRecordId(pool, account) },
        UpdateExpression:
          'SET #pool = :directory, account = :account, accountPool = :accountPool, #status = if_not_exists(#status, :active)',
        ExpressionAttributeNames: { '#pool': POOL_INDEX.partitionKey, '#status': 'status' },
        ExpressionAttributeValues: {
          ':directory': accountDirectory(pool),
          ':account': account,
          ':accountPool': pool,
          ':active': 'active',
        },
        ...this.capacity,
      }),
    );
  }

  async setAccount(pool: string, keyId: string, account: string, replace: boolean): Promise<boolean> {
    const names = { '#pool': 'pool', '#account': 'account', '#apk': ACCOUNT_INDEX.partitionKey };
    // Invariants: only a key of this pool; discovery never overwrites an account already known
    // (an operator's, or another run's).
    let condition = `#pool = :pool AND begins_with(#key, :prefix)`;
    if (!replace) condition += ' AND attribute_not_exists(#account)';
    const result = await this.conditionalUpdate(
      'account-set',
      {
        Key: { [KEY]: keyId },
        UpdateExpression: 'SET #account = :account, #apk = :apk',
        ConditionExpression: condition,
        ExpressionAttributeNames: { ...names, '#key': KEY },
        ExpressionAttributeValues: {
          ':pool': pool,
          ':prefix': KEY_PREFIX,
          ':account': account,
          ':apk': accountPartition(pool, account),
        },
      },
      'updated',
    );
    return result.ok;
  }
}
