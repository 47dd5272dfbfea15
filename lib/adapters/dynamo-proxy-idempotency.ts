/**
 * Proxied requests under an Idempotency-Key over DynamoDB (ProxyIdempotency): one item per
 * record, `pxy#<id>` (lib/table.ts), begun or taken over by one conditional PutItem; finished (a
 * 2xx not kept), renewed (before a failover) and abandoned by writes conditioned on the record
 * still being held, in progress, by the request that writes: the answerRef it drew at its begin
 * names it (a takeover, the same request hash, draws another). DynamoDB's TTL deletes a record a
 * day after it began. The item never holds the key nor the body, and carries no `pool`: it sits
 * in no index, so nothing that reads keys meets it.
 */
import { DeleteCommand, PutCommand } from './dynamo-wire.js';
import type { ProxyBegin, ProxyIdempotency, ProxyRequestRecord } from '../ports/proxy.js';
import { PROXY_REQUEST_PREFIX, TABLE, TTL_ATTRIBUTE } from '../table.js';
import { DynamoTable, isConditionFailure } from './dynamo-table.js';
import type { Item } from './key-item.js';

const KEY = TABLE.partitionKey;
const IN_PROGRESS = 'in_progress';

function toItem(record: ProxyRequestRecord): Item {
  return {
    [KEY]: `${PROXY_REQUEST_PREFIX}${record.id}`,
    proxyPool: record.pool,
    requestHash: record.requestHash,
    callerDigest: record.callerDigest,
    state: record.state,
    leaseUntilMs: record.leaseUntilMs,
    ...(record.answerRef === undefined ? {} : { answerRef: record.answerRef }),
    expiresAtMs: record.expiresAtMs,
    [TTL_ATTRIBUTE]: Math.ceil(record.expiresAtMs / 1000),
  };
}

/** The record an item holds; undefined for no item or one that is not a proxied request's record. */
export function fromProxyRequestItem(item: Item | undefined): ProxyRequestRecord | undefined {
  if (!item || typeof item[KEY] !== 'string' || !item[KEY].startsWith(PROXY_REQUEST_PREFIX)) return undefined;
  const state = item.state === 'done' ? 'done' : item.state === IN_PROGRESS ? IN_PROGRESS : undefined;
  if (state === undefined || typeof item.proxyPool !== 'string') return undefined;
  return {
    id: item[KEY].slice(PROXY_REQUEST_PREFIX.length),
    pool: item.proxyPool,
    requestHash: String(item.requestHash),
    callerDigest: String(item.callerDigest),
    state,
    leaseUntilMs: Number(item.leaseUntilMs),
    ...(typeof item.answerRef === 'string' ? { answerRef: item.answerRef } : {}),
    expiresAtMs: Number(item.expiresAtMs),
  };
}

/**
 * The condition shared by finish and abandon: the record is still held, in progress, by the
 * request whose answerRef is `:heldBy`. Not its hash: a takeover is the same request (same hash)
 * and must not be ended by the first one it replaced, should that one still be running.
 */
const HELD_IN_PROGRESS = {
  ConditionExpression: '#state = :inProgress AND #ref = :heldBy',
  names: { '#state': 'state', '#ref': 'answerRef' },
} as const;

export class DynamoProxyIdempotency extends DynamoTable implements ProxyIdempotency {
  async begin(record: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin> {
    // Invariant: one request at a time runs under an Idempotency-Key, so a retry never bills the
    // provider twice, and a key answers one request only. The record is written only where none
    // stands or the one that stands expired; any other request under the key meets the standing
    // record (the use case replays it, takes a dead one over, or refuses).
    const begun = await this.put(
      record,
      'attribute_not_exists(#key) OR #expires <= :now',
      { '#key': KEY, '#expires': 'expiresAtMs' },
      { ':now': nowMs },
    );
    if (!begun) throw new Error('the idempotency record refused the write but could not be read');
    return begun;
  }

  async takeOver(record: ProxyRequestRecord, standing: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin> {
    // Invariant: a retry replaces only the record it examined (its answerRef: no answer kept
    // there, the use case looked), in progress, of the same request and caller, past its lease
    // (the request died): two takeovers at once, or one after the first request renewed or
    // ended its record, find another record and are refused.
    const held = standing.answerRef === undefined ? 'attribute_not_exists(#ref)' : '#ref = :heldBy';
    const taken = await this.put(
      record,
      `#state = :inProgress AND #leaseUntil <= :now AND #hash = :hash AND #caller = :caller AND ${held}`,
      {
        '#state': 'state',
        '#leaseUntil': 'leaseUntilMs',
        '#hash': 'requestHash',
        '#caller': 'callerDigest',
        '#ref': 'answerRef',
      },
      {
        ':now': nowMs,
        ':inProgress': IN_PROGRESS,
        ':hash': record.requestHash,
        ':caller': record.callerDigest,
        ...(standing.answerRef === undefined ? {} : { ':heldBy': standing.answerRef }),
      },
    );
    // The record went away meanwhile (its request dropped it): this one begins afresh.
    return taken ?? this.begin(record, nowMs);
  }

  /**
   * Puts `record` in progress under `condition`; refused, the record that stands (undefined when
   * none does: only a takeover's condition can be refused by a missing item).
   */
  private async put(
    record: ProxyRequestRecord,
    condition: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
  ): Promise<ProxyBegin | undefined> {
    try {
      const out = await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: toItem({ ...record, state: IN_PROGRESS }),
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ...this.capacity,
        }),
      );
      this.meter?.record('proxy-begin', out.ConsumedCapacity);
      return { started: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.meter?.record('proxy-begin', undefined);
      const standing = fromProxyRequestItem(error.Item);
      // An item that is no record cannot refuse; only a takeover's condition is refused by none.
      if (!standing && error.Item) throw new Error('the idempotency record refused the write but could not be read');
      return standing && { started: false, record: standing };
    }
  }

  async finish(id: string, heldBy: string): Promise<boolean> {
    // Invariant: only the request that holds the record finishes it, once; a record another
    // request took over (another answerRef) or that is already done keeps what it has.
    return this.updateHeld('proxy-finish', id, heldBy, {
      UpdateExpression: 'SET #state = :done',
      names: {},
      values: { ':done': 'done' },
    });
  }

  async renew(id: string, heldBy: string, leaseUntilMs: number): Promise<boolean> {
    // Invariant: a request calls the provider only while it holds its record, in progress,
    // and no retry may take the record over before that call's bound has passed.
    return this.updateHeld('proxy-renew', id, heldBy, {
      UpdateExpression: 'SET #leaseUntil = :until',
      names: { '#leaseUntil': 'leaseUntilMs' },
      values: { ':until': leaseUntilMs },
    });
  }

  /** One update of the record `heldBy` holds in progress (HELD_IN_PROGRESS); false when it holds none. */
  private async updateHeld(
    operation: string,
    id: string,
    heldBy: string,
    update: { UpdateExpression: string; names: Record<string, string>; values: Record<string, unknown> },
  ): Promise<boolean> {
    const result = await this.conditionalUpdate(
      operation,
      {
        Key: { [KEY]: `${PROXY_REQUEST_PREFIX}${id}` },
        UpdateExpression: update.UpdateExpression,
        ConditionExpression: HELD_IN_PROGRESS.ConditionExpression,
        ExpressionAttributeNames: { ...HELD_IN_PROGRESS.names, ...update.names },
        ExpressionAttributeValues: { ...update.values, ':inProgress': IN_PROGRESS, ':heldBy': heldBy },
      },
      'updated',
    );
    return result.ok;
  }

  async abandon(id: string, heldBy: string): Promise<void> {
    try {
      const out = await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { [KEY]: `${PROXY_REQUEST_PREFIX}${id}` },
          // Invariant: a request drops only the record it holds while it runs; a done record (its
          // answer kept for replays) and a record a retry took over stay.
          ConditionExpression: HELD_IN_PROGRESS.ConditionExpression,
          ExpressionAttributeNames: { ...HELD_IN_PROGRESS.names },
          ExpressionAttributeValues: { ':inProgress': IN_PROGRESS, ':heldBy': heldBy },
          ...this.capacity,
        }),
      );
      this.meter?.record('proxy-abandon', out.ConsumedCapacity);
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}
