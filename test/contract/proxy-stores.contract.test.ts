/**
 * The store contract for proxy mode's table records: a proxied request's idempotency record
 * (one request at a time under a key, taken over only past its lease, renewed, finished and
 * abandoned only by the request that holds it) and an async job's pin (one key per id and pool, another
 * pool's id not found, an expired pin not found). Run against every implementation (in-memory
 * and DynamoDB Local); on DynamoDB, the items carry the TTL and no reader of keys meets them.
 */
import { randomBytes } from 'node:crypto';
import { GetCommand } from '../../lib/adapters/dynamo-wire.js';
import { describe, expect, it } from 'vitest';
import { DynamoJobPins, jobPinKey } from '../../lib/adapters/dynamo-job-pins.js';
import { DynamoProxyIdempotency } from '../../lib/adapters/dynamo-proxy-idempotency.js';
import { DynamoKeyAdminStore } from '../../lib/adapters/dynamo-key-admin-store.js';
import type { JobPins, ProxyIdempotency, ProxyRequestRecord } from '../../lib/ports/proxy.js';
import { PROXY_REQUEST_PREFIX, TABLE, TTL_ATTRIBUTE } from '../../lib/table.js';
import { tableStatements } from '../../infra/table-grants.js';
import { PROXY_STORE_GRANTS } from '../../lib/table-access.js';
import { createTestTable } from '../support/dynamo.js';
import { allowingStatements, authorizationsFor, type SentRequest } from '../support/iam-model.js';
import { MemoryJobPins, MemoryProxyIdempotency } from '../support/memory-proxy-stores.js';
import { T0 } from '../support/store-contract.js';

const DAY = 86_400_000;
/** The attributes that would put an item into an index, where readers of keys look. */
const INDEX_KEYS: string[] = [TABLE.poolIndex.partitionKey, TABLE.usageIndex.partitionKey, TABLE.usageIndex.sortKey];
const LEASE_MS = 180_000;

interface ProxyStores {
  idempotency: ProxyIdempotency;
  pins: JobPins;
}

const STORES: [string, () => Promise<ProxyStores>][] = [
  [
    'in-memory',
    () => Promise.resolve({ idempotency: new MemoryProxyIdempotency(), pins: new MemoryJobPins(() => T0) }),
  ],
  [
    'DynamoDB',
    async () => {
      const table = await createTestTable('proxy');
      const options = { client: table.store.client, tableName: table.tableName };
      return {
        idempotency: new DynamoProxyIdempotency(options),
        pins: new DynamoJobPins({ ...options, clock: () => T0 }),
      };
    },
  ],
];

function record(overrides: Partial<ProxyRequestRecord> = {}): ProxyRequestRecord {
  return {
    id: randomBytes(32).toString('hex'),
    pool: 'images',
    requestHash: 'hash-a',
    callerDigest: 'caller-a',
    state: 'in_progress',
    leaseUntilMs: T0 + LEASE_MS,
    answerRef: 'answer-1',
    expiresAtMs: T0 + DAY,
    ...overrides,
  };
}

/** Two records begun, each held by 'answer-1': `first` still in progress, `done` finished. */
async function runningAndDone(build: () => Promise<ProxyStores>) {
  const { idempotency } = await build();
  const first = record();
  const done = record();
  await idempotency.begin(first, T0);
  await idempotency.begin(done, T0);
  await idempotency.finish(done.id, 'answer-1');
  return { idempotency, first, done };
}

describe.each(STORES)('%s proxy idempotency', (_name, build) => {
  it('begins once: a second begin gets the standing record', async () => {
    // Prepare
    const { idempotency } = await build();
    const first = record();
    // Act
    const began = await idempotency.begin(first, T0);
    const again = await idempotency.begin({ ...first, requestHash: 'hash-b', callerDigest: 'caller-b' }, T0 + 1);
    // Assess
    expect(began).toEqual({ started: true });
    expect(again).toEqual({ started: false, record: first });
  });

  it('starts exactly one of 20 concurrent begins under one key', async () => {
    // Prepare
    const { idempotency } = await build();
    const base = record();
    // Act
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => idempotency.begin({ ...base, requestHash: `hash-${i}` }, T0)),
    );
    // Assess
    const started = results.flatMap((result, i) => (result.started ? [i] : []));
    expect(started).toHaveLength(1);
    for (const result of results)
      if (!result.started) expect(result.record.requestHash).toBe(`hash-${started[0] ?? -1}`);
  });

  it('begins only where no record stands or it expired: past its lease, a record is still refused to a begin', async () => {
    // Prepare
    const { idempotency } = await build();
    const first = record();
    await idempotency.begin(first, T0);
    // Act
    const pastLease = await idempotency.begin({ ...first, answerRef: 'answer-2' }, T0 + LEASE_MS);
    const afterExpiry = await idempotency.begin(
      { ...first, requestHash: 'hash-b', expiresAtMs: T0 + 2 * DAY },
      T0 + DAY,
    );
    // Assess
    expect(pastLease).toEqual({ started: false, record: first });
    expect(afterExpiry).toEqual({ started: true });
  });

  it('lets a request take over the in-progress record it examined only past its lease', async () => {
    // Prepare
    const { idempotency } = await build();
    const first = record();
    await idempotency.begin(first, T0);
    const retry = { ...first, leaseUntilMs: T0 + 2 * LEASE_MS, answerRef: 'answer-2' };
    // Act
    const early = await idempotency.takeOver(retry, first, T0 + LEASE_MS - 1);
    const late = await idempotency.takeOver(retry, first, T0 + LEASE_MS);
    const again = await idempotency.takeOver({ ...retry, answerRef: 'answer-3' }, first, T0 + 2 * LEASE_MS);
    // Assess: a second takeover of the record examined meets the first takeover's, even past its lease
    expect(early).toEqual({ started: false, record: first });
    expect(late).toEqual({ started: true });
    expect(again).toEqual({ started: false, record: retry });
  });

  it('lets no other request or caller take over an in-progress record, nor anyone a done one, even past its lease', async () => {
    // Prepare
    const { idempotency, first, done } = await runningAndDone(build);
    // Act
    const otherRequest = await idempotency.takeOver({ ...first, requestHash: 'hash-b' }, first, T0 + LEASE_MS);
    const otherCaller = await idempotency.takeOver({ ...first, callerDigest: 'caller-b' }, first, T0 + LEASE_MS);
    const ofDone = await idempotency.takeOver({ ...done, answerRef: 'answer-2' }, done, T0 + LEASE_MS);
    // Assess
    expect(otherRequest).toEqual({ started: false, record: first });
    expect(otherCaller).toEqual({ started: false, record: first });
    expect(ofDone).toEqual({ started: false, record: { ...done, state: 'done' } });
  });

  it('begins afresh a takeover whose record went away meanwhile', async () => {
    // Prepare
    const { idempotency } = await build();
    const first = record();
    await idempotency.begin(first, T0);
    await idempotency.abandon(first.id, 'answer-1');
    // Act
    const taken = await idempotency.takeOver({ ...first, answerRef: 'answer-2' }, first, T0 + LEASE_MS);
    // Assess
    expect(taken).toEqual({ started: true });
  });

  it('keeps a done record past its lease, and frees it once it expired', async () => {
    // Prepare
    const { idempotency } = await build();
    const first = record();
    await idempotency.begin(first, T0);
    await idempotency.finish(first.id, 'answer-1');
    // Act
    const afterLease = await idempotency.begin(first, T0 + LEASE_MS + 1);
    const afterExpiry = await idempotency.begin(first, T0 + DAY);
    // Assess
    expect(afterLease).toEqual({ started: false, record: { ...first, state: 'done' } });
    expect(afterExpiry).toEqual({ started: true });
  });

  it('finishes only the in-progress record its request holds, once', async () => {
    // Prepare
    const { idempotency } = await build();
    const first = record();
    await idempotency.begin(first, T0);
    // Act
    const otherRequest = await idempotency.finish(first.id, 'answer-b');
    const finished = await idempotency.finish(first.id, 'answer-1');
    const twice = await idempotency.finish(first.id, 'answer-1');
    const unknown = await idempotency.finish(record().id, 'answer-1');
    // Assess
    expect([otherRequest, finished, twice, unknown]).toEqual([false, true, false, false]);
    const standing = await idempotency.begin(first, T0 + 1);
    expect(standing).toEqual({ started: false, record: { ...first, state: 'done' } });
  });

  it('abandons only the in-progress record its request holds: a retry may begin again', async () => {
    // Prepare
    const { idempotency, first, done } = await runningAndDone(build);
    // Act
    await idempotency.abandon(first.id, 'answer-b');
    const kept = await idempotency.begin(first, T0 + 1);
    await idempotency.abandon(done.id, 'answer-1');
    await idempotency.abandon(first.id, 'answer-1');
    // Assess
    expect(kept.started).toBe(false);
    expect(await idempotency.begin(first, T0 + 2)).toEqual({ started: true });
    expect(await idempotency.begin(done, T0 + 2)).toEqual({
      started: false,
      record: { ...done, state: 'done' },
    });
  });

  it('renews the lease of the record its request holds only: a retry takes it over past the new lease', async () => {
    // Prepare
    const { idempotency, first, done } = await runningAndDone(build);
    const retry = { ...first, leaseUntilMs: T0 + 3 * LEASE_MS, answerRef: 'answer-2' };
    // Act
    const renewed = await idempotency.renew(first.id, 'answer-1', T0 + 2 * LEASE_MS);
    const notHeld = await idempotency.renew(first.id, 'answer-b', T0 + 3 * LEASE_MS);
    const notInProgress = await idempotency.renew(done.id, 'answer-1', T0 + 2 * LEASE_MS);
    const early = await idempotency.takeOver(retry, first, T0 + LEASE_MS);
    const late = await idempotency.takeOver(retry, first, T0 + 2 * LEASE_MS);
    // Assess
    expect([renewed, notHeld, notInProgress]).toEqual([true, false, false]);
    expect(early).toEqual({ started: false, record: { ...first, leaseUntilMs: T0 + 2 * LEASE_MS } });
    expect(late).toEqual({ started: true });
    expect(await idempotency.renew(first.id, 'answer-1', T0 + 4 * LEASE_MS)).toBe(false);
  });

  it('leaves a takeover’s record to the takeover: the first request, the same one, neither abandons nor finishes it', async () => {
    // Prepare: a retry took the record over past the first request's lease
    const { idempotency } = await build();
    const first = record();
    const retry = { ...first, leaseUntilMs: T0 + 2 * LEASE_MS, answerRef: 'answer-2' };
    await idempotency.begin(first, T0);
    await idempotency.takeOver(retry, first, T0 + LEASE_MS);
    // Act: the first request, still running, ends as if it held the record
    await idempotency.abandon(first.id, 'answer-1');
    const finished = await idempotency.finish(first.id, 'answer-1');
    // Assess
    expect(finished).toBe(false);
    expect(await idempotency.begin(first, T0 + LEASE_MS + 1)).toEqual({ started: false, record: retry });
  });
});

describe.each(STORES)('%s job pins', (_name, build) => {
  const jobId = (): string => randomBytes(32).toString('hex');

  it('finds the key a job was started with, in its pool only', async () => {
    // Prepare
    const { pins } = await build();
    const id = jobId();
    // Act
    await pins.pin({ pool: 'images', jobId: id, keyId: 'k_1', expiresAtMs: T0 + DAY });
    // Assess
    expect(await pins.find('images', id, T0)).toBe('k_1');
    expect(await pins.find('other', id, T0)).toBeUndefined();
    expect(await pins.find('images', jobId(), T0)).toBeUndefined();
  });

  it('keeps one key per id and pool: a second key does not replace the pin', async () => {
    // Prepare
    const { pins } = await build();
    const id = jobId();
    await pins.pin({ pool: 'images', jobId: id, keyId: 'k_1', expiresAtMs: T0 + DAY });
    // Act
    await pins.pin({ pool: 'images', jobId: id, keyId: 'k_2', expiresAtMs: T0 + DAY });
    await pins.pin({ pool: 'images', jobId: id, keyId: 'k_1', expiresAtMs: T0 + DAY });
    await pins.pin({ pool: 'other', jobId: id, keyId: 'k_3', expiresAtMs: T0 + DAY });
    // Assess
    expect(await pins.find('images', id, T0)).toBe('k_1');
    expect(await pins.find('other', id, T0)).toBe('k_3');
  });

  it('does not find an expired pin, and lets the id be pinned again', async () => {
    // Prepare
    const { pins } = await build();
    const id = jobId();
    await pins.pin({ pool: 'images', jobId: id, keyId: 'k_1', expiresAtMs: T0 });
    // Act
    const expired = await pins.find('images', id, T0);
    await pins.pin({ pool: 'images', jobId: id, keyId: 'k_2', expiresAtMs: T0 + DAY });
    // Assess
    expect(expired).toBeUndefined();
    expect(await pins.find('images', id, T0)).toBe('k_2');
  });

  it('looks up any job id a caller sends, however long or odd', async () => {
    // Prepare
    const { pins } = await build();
    // Act
    const found = await pins.find('images', `${'x'.repeat(4096)}#../\u0000`, T0);
    // Assess
    expect(found).toBeUndefined();
  });
});

describe('DynamoDB proxy records', () => {
  it('expire by the table TTL a day on, and no reader of a pool’s keys meets them', async () => {
    // Prepare
    const table = await createTestTable('proxy');
    const options = { client: table.store.client, tableName: table.tableName };
    const pool = 'images';
    const request = record({ pool });
    const id = randomBytes(32).toString('hex');
    // Act
    await new DynamoProxyIdempotency(options).begin(request, T0);
    await new DynamoJobPins(options).pin({ pool, jobId: id, keyId: 'k_1', expiresAtMs: T0 + DAY });
    // Assess
    const get = async (keyId: string) =>
      (
        await table.store.client.send(
          new GetCommand({ TableName: table.tableName, Key: { [TABLE.partitionKey]: keyId } }),
        )
      ).Item;
    expect((await get(`${PROXY_REQUEST_PREFIX}${request.id}`))?.[TTL_ATTRIBUTE]).toBe((T0 + DAY) / 1000);
    expect((await get(jobPinKey(pool, id)))?.[TTL_ATTRIBUTE]).toBe((T0 + DAY) / 1000);
    for (const keyId of [`${PROXY_REQUEST_PREFIX}${request.id}`, jobPinKey(pool, id)])
      expect(Object.keys((await get(keyId)) ?? {}).filter((name) => INDEX_KEYS.includes(name))).toEqual([]);
    const admin = new DynamoKeyAdminStore(options);
    expect((await admin.poolKeys(pool, 100)).keys).toEqual([]);
    expect((await admin.poolKeysWithSecrets(pool, 100)).keys).toEqual([]);
  });
});

describe('the proxy stores’ grants', () => {
  it('allow every request the stores send, and each grant is needed by one', async () => {
    // Prepare
    const table = await createTestTable('proxy');
    const sent: SentRequest[] = [];
    const client = table.store.client;
    const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
    Object.defineProperty(client, 'send', {
      value: (command: { input: Record<string, unknown>; constructor: { name: string } }) => {
        sent.push({
          command: command.constructor.name,
          input: JSON.parse(JSON.stringify(command.input)) as Record<string, unknown>,
        });
        return send(command);
      },
    });
    const options = { client, tableName: table.tableName };
    const idempotency = new DynamoProxyIdempotency(options);
    const pins = new DynamoJobPins(options);
    const first = record();
    // Act
    await idempotency.begin(first, T0);
    await idempotency.begin(first, T0);
    await idempotency.takeOver({ ...first, answerRef: 'answer-2' }, first, T0);
    await idempotency.takeOver({ ...first, answerRef: 'answer-2' }, first, T0 + LEASE_MS);
    await idempotency.renew(first.id, 'answer-1', T0 + 2 * LEASE_MS);
    await idempotency.finish(first.id, 'answer-1');
    await idempotency.abandon(first.id, 'answer-1');
    await pins.pin({ pool: 'images', jobId: 'job-1', keyId: 'k_1', expiresAtMs: T0 + DAY });
    await pins.find('images', 'job-1', T0);
    // Assess
    const arn = 'arn:aws:dynamodb:eu-west-1:123456789012:table/keypool';
    const statements = tableStatements({ items: PROXY_STORE_GRANTS, queries: [] }, arn);
    const auths = sent.flatMap((request) => authorizationsFor(request, table.tableName, arn));
    expect(auths.filter((auth) => allowingStatements(statements, auth).length === 0)).toEqual([]);
    const used = new Set(auths.flatMap((auth) => allowingStatements(statements, auth)));
    expect(statements.filter((_, i) => !used.has(i))).toEqual([]);
  });
});
