/**
 * Least privilege on the table, checked against the code that needs it: every function's entry
 * point runs its use cases over DynamoDB Local (through the local server, its proxy route
 * included, or the Lambda handler for maintenance and the migration), every request the SDK is asked to send is recorded, and
 * each is authorized against the IAM statements the stack grants that function's role
 * (infra/table-grants.ts over lib/table-access.ts) by the model in test/support/iam-model.ts.
 * So a code path that starts writing an attribute, or reaching a kind of item, its role is not
 * granted fails here, not in production; and a grant no use case needs fails here too.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoWire, PutCommand, UpdateCommand } from '../../lib/adapters/dynamo-wire.js';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tableStatements } from '../../infra/table-grants.js';
import { DynamoKeyAdminStore } from '../../lib/adapters/dynamo-key-admin-store.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import type { LeaseGrant } from '../../lib/domain/types.js';
import { DEFAULT_ROUTE_FUNCTION, matchRoute, ROUTES } from '../../lib/http/routes.js';
import type { LocalServer } from '../../lib/local/server.js';
import { TABLE_ACCESS, type TableRole } from '../../lib/table-access.js';
import { ensureTable } from '../../lib/local/dynamodb-local.js';
import { createTestTable, dynamoEndpoint, fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { type FakeKey, type FakeProvider, startFakeProvider } from '../support/fake-provider.js';
import { allowingStatements, authorizationsFor, type SentRequest } from '../support/iam-model.js';
import { promptForm, proxy } from '../support/proxy-api.js';
import { plainKey } from '../support/seed.js';
import { call, startTestServer } from '../support/server.js';

const TABLE_ARN = 'arn:aws:dynamodb:eu-west-1:123456789012:table/keypool';
/** A generation endpoint of the provider, as proxy mode forwards it. */
const GENERATE = 'v2beta/stable-image/generate/core';

let table: TestTable;
let provider: FakeProvider;
let server: LocalServer;

/** Every request sent while a role's code ran, by role. */
const sent: { role: TableRole; request: SentRequest }[] = [];
let running: TableRole | undefined;

type Send = (this: unknown, command: { input: Record<string, unknown> }, ...rest: unknown[]) => unknown;
// keypool's own client (every item request) and the SDK's (the migration's scan of a legacy table).
const PROTOTYPES = [DynamoDBClient.prototype, DynamoWire.prototype] as unknown as { send: Send }[];

/** Records every command any DynamoDB client of this process sends (the functions build their own). */
const originals = PROTOTYPES.map((proto) => (Object.hasOwn(proto, 'send') ? proto.send : undefined));
function startRecording(): void {
  for (const proto of PROTOTYPES) {
    const send = proto.send;
    Object.defineProperty(proto, 'send', {
      configurable: true,
      writable: true,
      value: function (this: unknown, command: { input: Record<string, unknown> }, ...rest: unknown[]) {
        if (running) {
          const name = (command as unknown as { constructor: { name: string } }).constructor.name;
          sent.push({
            role: running,
            request: { command: name, input: JSON.parse(JSON.stringify(command.input)) as Record<string, unknown> },
          });
        }
        return send.call(this, command, ...rest);
      },
    });
  }
}

function stopRecording(): void {
  // The SDK's prototype inherits `send` again (it had none of its own); keypool's gets its own back.
  for (const [i, proto] of PROTOTYPES.entries()) {
    const own = originals[i];
    if (own) proto.send = own;
    else delete (proto as Partial<{ send: Send }>).send;
  }
}

/** Runs `work` as `role`: what it sends is that role's. */
async function as<T>(role: TableRole, work: () => Promise<T>): Promise<T> {
  running = role;
  try {
    return await work();
  } finally {
    running = undefined;
  }
}

/** One request to the local server, recorded as the role of the function its route names. */
async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const match = matchRoute(method, path.split('?')[0] ?? path);
  const role = match.found ? ROUTES[match.routeKey].function : DEFAULT_ROUTE_FUNCTION;
  return as(role, () => call(server.url, method, path, body, headers));
}

function lambdaContext(name: string): Context {
  return {
    functionName: `keypool-${name}`,
    awsRequestId: '00000000-0000-4000-8000-000000000000',
    getRemainingTimeInMillis: () => 120_000,
  } as unknown as Context;
}

/** Sets a key's ciphertext to another key's (as a copied item would be): it no longer opens. */
async function swapCiphertext(pool: string, from: string, onto: string): Promise<void> {
  const client = table.store.client;
  const source = await table.store.get(from);
  await client.send(
    new UpdateCommand({
      TableName: table.tableName,
      Key: { keyId: onto },
      UpdateExpression: 'SET sealedKey = :sealed',
      ConditionExpression: '#pool = :pool',
      ExpressionAttributeNames: { '#pool': 'pool' },
      ExpressionAttributeValues: { ':sealed': source?.secret, ':pool': pool },
    }),
  );
}

async function imported(pool: string, count: number): Promise<{ keyIds: string[]; secrets: string[] }> {
  const secrets = Array.from({ length: count }, (_, i) => fakeKey(`${i}-`));
  const answer = await http('POST', `/pools/${pool}/keys`, { keys: secrets.map((apiKey) => ({ apiKey })) });
  expect(answer.status).toBe(201);
  return { keyIds: secrets.map(keyIdFor), secrets };
}

beforeAll(async () => {
  table = await createTestTable('access');
  provider = await startFakeProvider();
  process.env.STABILITY_API_BASE_URL = provider.url;
  process.env.KEYPOOL_BALANCE_RATE = '10';
  server = await startTestServer(table.tableName);
  startRecording();
});

afterAll(async () => {
  stopRecording();
  await server.close();
  await provider.close();
});

/** Runs every function through its use cases, recording what each sends. */
async function exerciseEveryFunction(): Promise<void> {
  // The functions' logs and metrics are not what is under test here.
  const quiet = [process.stdout, process.stderr].map((stream) => vi.spyOn(stream, 'write').mockReturnValue(true));
  try {
    // pools: create, change, change the shard count, read one, list all.
    const pool = uniqueName('access');
    expect((await http('PUT', `/pools/${pool}`, { maxUses: 3, cooldownSeconds: 60 })).status).toBe(200);
    expect((await http('PUT', `/pools/${pool}`, { shards: 2 })).status).toBe(200);
    expect((await http('PUT', `/pools/${pool}`, { shards: 1, minCredits: 2 })).status).toBe(200);
    expect((await http('GET', `/pools/${pool}`)).status).toBe(200);
    expect((await http('GET', '/pools')).status).toBe(200);

    // keys: import (a new pool ensured, a duplicate skipped), disable, enable, reset a count.
    const { keyIds, secrets } = await imported(pool, 6);
    expect((await http('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secrets[0], label: 'again' }] })).status).toBe(
      201,
    );
    const fresh = uniqueName('fresh');
    await imported(fresh, 1);
    const [k0, k1, k2, , , k5] = keyIds as [string, string, string, string, string, string];
    expect((await http('PATCH', `/pools/${pool}/keys/${k5}`, { status: 'disabled' })).status).toBe(200);
    expect((await http('PATCH', `/pools/${pool}/keys/${k5}`, { status: 'active' })).status).toBe(200);
    expect((await http('PATCH', `/pools/${pool}/keys/${k5}`, { usageCount: 0 })).status).toBe(200);
    expect((await http('PATCH', `/pools/${pool}/keys/k_000000000000000000000000`, { status: 'disabled' })).status).toBe(
      404,
    );

    // keys: retire a key (twice), a pool refused while it holds keys, a retired key imported
    // (reported, then revived), a pool deleted with its keys retired.
    const retiring = uniqueName('retiring');
    const { keyIds: retiringIds, secrets: retiringSecrets } = await imported(retiring, 2);
    expect((await http('DELETE', `/pools/${retiring}/keys/${retiringIds[0]}`)).status).toBe(200);
    expect((await http('DELETE', `/pools/${retiring}/keys/${retiringIds[0]}`)).status).toBe(200);
    expect((await http('DELETE', `/pools/${retiring}`)).status).toBe(409);
    const retiredAgain = { keys: [{ apiKey: retiringSecrets[0] }] };
    expect((await http('POST', `/pools/${retiring}/keys`, retiredAgain)).status).toBe(201);
    expect((await http('POST', `/pools/${retiring}/keys?revive=true`, retiredAgain)).status).toBe(201);
    expect((await http('DELETE', `/pools/${retiring}?retireKeys=true`)).status).toBe(200);

    // Each function reads a pool's record on its first request for that pool (a warm process
    // keeps it for a while, and the local server's functions share one process): pools set
    // up apart, first met by the keys, the list and the counting functions.
    const apart = uniqueName('apart');
    const { keys: apartKeys } = await table.broker().importKeys(apart, [{ apiKey: fakeKey() }]);
    expect((await http('PATCH', `/pools/${apart}/keys/${apartKeys[0]?.keyId}`, { status: 'active' })).status).toBe(200);
    const listed = uniqueName('listed');
    await table.broker().importKeys(listed, [{ apiKey: fakeKey() }]);
    expect((await http('GET', `/pools/${listed}/keys`)).status).toBe(200);
    const counted = uniqueName('counted');
    const { keys: countedKeys } = await table.broker().importKeys(counted, [{ apiKey: fakeKey() }]);
    expect((await http('POST', `/pools/${counted}/keys/${countedKeys[0]?.keyId}/usage`)).status).toBe(200);

    // list: a page, a page by status with a cursor.
    expect((await http('GET', `/pools/${pool}/keys`)).status).toBe(200);
    expect((await http('GET', `/pools/${pool}/keys?status=active&limit=1`)).status).toBe(200);

    // lease: plain, idempotent (and its replay); the counting routes on each outcome.
    const grants: LeaseGrant[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await http('POST', `/pools/${pool}/leases`, {});
      expect(answer.status).toBe(200);
      grants.push(answer.body as LeaseGrant);
    }
    const once = await http('POST', `/pools/${pool}/leases`, {}, { 'idempotency-key': 'job-1' });
    const again = await http('POST', `/pools/${pool}/leases`, {}, { 'idempotency-key': 'job-1' });
    expect(again.body).toEqual(once.body);
    const outcomes = [
      { outcome: 'success' },
      { outcome: 'failure' },
      { outcome: 'rate_limited', retryAfterSeconds: 30 },
      { outcome: 'invalid_key' },
      { outcome: 'out_of_credits' },
    ];
    for (const [i, report] of outcomes.entries()) {
      const leaseId = grants[i]?.leaseId ?? '';
      expect((await http('POST', `/pools/${pool}/leases/${leaseId}/complete`, report)).status).toBe(200);
    }
    // A completion repeated (answered from the stored slot) and a lease-less count.
    expect((await http('POST', `/pools/${pool}/leases/${grants[0]?.leaseId}/complete`, {})).status).toBeLessThan(500);
    expect((await http('POST', `/pools/${pool}/keys/${k0}/usage`)).status).toBe(200);
    // A replay of a lease completed since: 409 idempotency_conflict from the record and the key.
    const replayed = (once.body as LeaseGrant).leaseId;
    expect((await http('POST', `/pools/${pool}/leases/${replayed}/complete`, {})).status).toBe(200);
    expect((await http('POST', `/pools/${pool}/leases`, {}, { 'idempotency-key': 'job-1' })).status).toBe(409);
    // A caller past its report budget: the budget's counter refuses the second count (429).
    const budgeted = uniqueName('budgeted');
    expect((await http('PUT', `/pools/${budgeted}`, { maxClientReportsPerMinute: 1 })).status).toBe(200);
    const { keyIds: budgetedIds } = await imported(budgeted, 1);
    const usage = `/pools/${budgeted}/keys/${budgetedIds[0]}/usage`;
    expect([(await http('POST', usage)).status, (await http('POST', usage)).status]).toEqual([200, 429]);

    // accounts: an import into an account, a list showing its balance, a report about one key
    // put on the account's other keys and its record.
    const shared = uniqueName('shared');
    const sharedKeys = [fakeKey('s0-'), fakeKey('s1-')];
    const intoAccount = { keys: sharedKeys.map((apiKey) => ({ apiKey, account: 'org-shared' })) };
    expect((await http('POST', `/pools/${shared}/keys`, intoAccount)).status).toBe(201);
    expect((await http('GET', `/pools/${shared}/keys`)).status).toBe(200);
    expect((await http('GET', `/pools/${shared}/accounts`)).status).toBe(200);
    const moved = { account: 'org-moved' };
    expect((await http('PATCH', `/pools/${shared}/keys/${keyIdFor(sharedKeys[1] ?? '')}`, moved)).status).toBe(200);
    const sharedLease = (await http('POST', `/pools/${shared}/leases`, {})).body as LeaseGrant;
    const outOfCredits = { outcome: 'out_of_credits' };
    expect((await http('POST', `/pools/${shared}/leases/${sharedLease.leaseId}/complete`, outOfCredits)).status).toBe(
      200,
    );

    // lease: a key whose ciphertext does not open (marked, the idempotency record freed) and a
    // key still in plain text (set aside).
    const broken = uniqueName('broken');
    const { keyIds: brokenIds } = await imported(broken, 2);
    await swapCiphertext(broken, brokenIds[0] ?? '', brokenIds[1] ?? '');
    await http('PATCH', `/pools/${broken}/keys/${brokenIds[0]}`, { status: 'disabled' });
    expect((await http('POST', `/pools/${broken}/leases`, {}, { 'idempotency-key': 'job-2' })).status).toBe(409);
    const plain = uniqueName('plain');
    await http('PUT', `/pools/${plain}`, {});
    const admin = new DynamoKeyAdminStore({ client: table.store.client, tableName: table.tableName });
    const plainSecret = fakeKey();
    await admin.insert(plainKey(plain, plainSecret));
    expect((await http('POST', `/pools/${plain}/leases`, {})).status).toBe(409);
    // keys: a key still in plain text is not retired (its secret waits for a reseal).
    expect((await http('DELETE', `/pools/${plain}/keys/${keyIdFor(plainSecret)}`)).status).toBe(409);

    // proxy: a generation answered 401 in the provider's documented shape (the use taken in the
    // lease write, then given back, the key suspect); one under an Idempotency-Key and its
    // replay (the request's record put and finished), one under a key that did not end in a
    // 2xx (its record dropped); an async job started and polled (its pin put and read, its key
    // opened); and a pool found dry (a refusal's count of its keys).
    /** A pool of one key the provider answers as `behaviour` says. */
    const proxiedPool = async (name: string, behaviour: Partial<FakeKey>): Promise<string> => {
      const pool = uniqueName(name);
      const {
        secrets: [secret],
      } = await imported(pool, 1);
      provider.setKey(secret ?? '', { credits: 100, ...behaviour });
      return pool;
    };
    const generate = (pool: string, path = GENERATE, headers: Record<string, string> = {}) =>
      as('proxy', () => proxy(server.url, pool, path, { body: promptForm(), headers }));
    expect((await generate(await proxiedPool('suspected', { generateStatus: 401 }))).status).toBe(401);
    const kept = await proxiedPool('kept', {});
    const first = await generate(kept, GENERATE, { 'idempotency-key': 'px-1' });
    expect((await generate(kept, GENERATE, { 'idempotency-key': 'px-1' })).bytes).toEqual(first.bytes);
    const refused = await proxiedPool('refused', { generateStatus: 400 });
    expect((await generate(refused, GENERATE, { 'idempotency-key': 'px-2' })).status).toBe(400);
    const job = await generate(kept, 'v2beta/stable-image/upscale/creative');
    const { id } = job.json as { id: string };
    expect(
      (await as('proxy', () => proxy(server.url, kept, `v2beta/results/${id}`, { method: 'GET' }))).status,
    ).toBeLessThan(300);
    // A generation answered 402 on a key of an account: every key of the account exhausted and
    // its record written, by the function that proxies.
    const broke = uniqueName('broke');
    const brokeKeys = [fakeKey('b0-'), fakeKey('b1-')];
    const intoBroke = { keys: brokeKeys.map((apiKey) => ({ apiKey, account: 'org-broke' })) };
    expect((await http('POST', `/pools/${broke}/keys`, intoBroke)).status).toBe(201);
    for (const secret of brokeKeys) provider.setKey(secret, { credits: 100, generateStatus: 402 });
    expect((await generate(broke)).status).toBe(402);
    const dry = uniqueName('dry');
    const { keyIds: dryIds } = await imported(dry, 1);
    expect((await http('PATCH', `/pools/${dry}/keys/${dryIds[0]}`, { status: 'disabled' })).status).toBe(200);
    expect((await generate(dry)).status).toBe(409);

    // maintain: balances read (kept, exhausted, disabled), a suspect key settled, an exhausted
    // one revived, a ciphertext that does not open marked, a pending reshard finished, and the
    // run's record left for the console (a new item, never another run's).
    provider.setKey(secrets[1] ?? '', { credits: 20 });
    provider.setKey(secrets[2] ?? '', { credits: 0.5 });
    provider.setKey(secrets[3] ?? '', { credits: 20 });
    provider.setKey(secrets[4] ?? '', { credits: 20 });
    provider.setKey(secrets[5] ?? '', { balanceStatus: 401 });
    await swapCiphertext(pool, k1, k2);
    await table.pools.put(pool, { shards: 4 }, '2020-01-01T00:00:00.000Z');
    const { handler: maintain } = await import('../../functions/maintain.js');
    const summary = await as('maintain', () => maintain({} as ScheduledEvent, lambdaContext('maintain')));
    expect(summary).toMatchObject({ undecryptable: expect.any(Number) as number });
    // keys: a key whose ciphertext does not open, imported again (sealed anew, its status back).
    const reimported = await http('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secrets[2] }] });
    expect(reimported).toMatchObject({ status: 201, body: { revived: 1 } });
    // A second run re-checks the key the provider disabled.
    expect(await as('maintain', () => maintain({} as ScheduledEvent, lambdaContext('maintain')))).toMatchObject({
      disabled: expect.any(Number) as number,
    });

    // migrate: new keys from a legacy table, then a raise and a disable of existing ones.
    const legacy = uniqueName('legacy');
    await ensureTable(dynamoEndpoint(), legacy);
    const [m1, m2] = [fakeKey('m1-'), fakeKey('m2-')];
    const put = (row: Record<string, unknown>) =>
      table.store.client.send(new PutCommand({ TableName: legacy, Item: { keyId: `row-${Math.random()}`, ...row } }));
    await put({ api_key: m1, credits_left: 24 });
    await put({ api_key: m2, credits_left: 25 });
    const { handler: migrate } = await import('../../functions/migrate.js');
    const event = { source: { table: legacy }, pool: uniqueName('migrated') };
    await as('migrate', () => migrate(event, lambdaContext('migrate')));
    await put({ api_key: m1, credits_left: 20, is_active: false });
    const second = (await as('migrate', () => migrate(event, lambdaContext('migrate')))) as { raised: number };
    expect(second.raised).toBe(1);
    // A dry run reads what is there (BatchGetItem) and writes nothing.
    await as('migrate', () => migrate({ ...event, dryRun: true }, lambdaContext('migrate')));

    // meta: answers without the table.
    expect((await http('GET', '/health')).status).toBe(200);
    expect((await http('GET', '/no/such/route')).status).toBe(404);
  } finally {
    for (const spy of quiet) spy.mockRestore();
  }
}

describe("every function's requests fall within its role's grants on the table", () => {
  beforeAll(exerciseEveryFunction);

  const roles = Object.keys(TABLE_ACCESS) as TableRole[];

  it.each(roles)('%s: IAM allows every request it made', (role) => {
    // Prepare
    const statements = tableStatements(TABLE_ACCESS[role], TABLE_ARN);
    const mine = sent.filter((s) => s.role === role);
    expect(mine.length > 0, `${role} sent no request`).toBe(role !== 'meta');
    // Act
    const refused = mine
      .flatMap((s) => authorizationsFor(s.request, table.tableName, TABLE_ARN).map((auth) => ({ s, auth })))
      .filter(({ auth }) => allowingStatements(statements, auth).length === 0)
      .map(({ s, auth }) => ({
        command: s.request.command,
        action: auth.action,
        resource: auth.resource,
        ...auth.context,
      }));
    // Assess
    expect(refused).toEqual([]);
  });

  it.each(roles)('%s: every statement it is granted is needed by a request it made', (role) => {
    // Prepare
    const statements = tableStatements(TABLE_ACCESS[role], TABLE_ARN);
    const used = new Set(
      sent
        .filter((s) => s.role === role)
        .flatMap((s) => authorizationsFor(s.request, table.tableName, TABLE_ARN))
        .flatMap((auth) => allowingStatements(statements, auth)),
    );
    // Assess
    expect(statements.filter((_, i) => !used.has(i))).toEqual([]);
  });
});
