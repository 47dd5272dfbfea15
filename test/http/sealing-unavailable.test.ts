/**
 * When the wrapping-key service fails (KMS throttled, unreachable, the key disabled), the API
 * says so: 503 sealing_unavailable with a Retry-After, never a bare 500, and a lease that could
 * not be opened gives its use back; each such refusal is counted under its pool
 * (SealingUnavailable, SealingMisconfigured), whether a lease or a proxied use met it. The local
 * server here seals with a KMS key ARN whose KMS endpoint (AWS_ENDPOINT_URL_KMS) is a stub that
 * answers every call with DisabledException, or, while `refuseAll` is unset, the fake KMS behind
 * KMS's JSON protocol (which can throttle); its proxy route calls a fake provider.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { SEALING_RETRY_AFTER_SECONDS } from '../../lib/domain/errors.js';
import { sealNewKey } from '../../lib/use-cases/new-key.js';
import type { LocalServer } from '../../lib/local/server.js';
import { METRIC } from '../../lib/observability/metric-names.js';
import { fakeKey, type TestTable, uniqueName } from '../support/dynamo.js';
import { fakeKeyArn, FakeKms, kmsJsonProtocol } from '../support/fake-kms.js';
import { captureEmf, expectError, poolApi } from '../support/pool-api.js';
import { promptForm, proxy, type ProxyStack, startProxyStack } from '../support/proxy-api.js';
import { captureOutput } from '../support/server.js';

let stack: ProxyStack;
let table: TestTable;
let server: LocalServer;
let kms: Server;
let kmsCalls = 0;
const KEY_ARN = fakeKeyArn(7);
const GENERATE = 'v2beta/stable-image/generate/core';
/** The KMS the endpoint serves while `refuseAll` is unset; it also seals the keys written here. */
const servedKms = new FakeKms();
/** The error every KMS call gets while set: DisabledException, as for a disabled key (a client error the SDK does not retry). */
let refuseAll: string | undefined = 'DisabledException';

beforeAll(async () => {
  const answerAsKms = kmsJsonProtocol(servedKms);
  kms = createServer((request, response) => {
    kmsCalls++;
    if (refuseAll === undefined) return answerAsKms(request, response);
    request.resume();
    response.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
    response.end(JSON.stringify({ __type: refuseAll, message: `${refuseAll} (stub)` }));
  });
  await new Promise<void>((done) => kms.listen(0, '127.0.0.1', done));
  process.env.KEYPOOL_SECRETS_KEY_ARN = KEY_ARN;
  process.env.AWS_ENDPOINT_URL_KMS = `http://127.0.0.1:${(kms.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID = 'stubkms';
  process.env.AWS_SECRET_ACCESS_KEY = 'stubkms';
  stack = await startProxyStack('unavailable');
  ({ table, server } = stack);
});

afterAll(async () => {
  await stack.close();
  await new Promise((done) => kms.close(done));
});

/** Writes one key sealed under `keyArn` (by a stand-in KMS that works), as an import would have. */
async function sealedKey(pool: string, keyArn = KEY_ARN): Promise<{ keyId: string; secret: string }> {
  const secret = fakeKey('kms-');
  const sealer = createEsdkSealer({ current: { kind: 'kms', keyArn }, kms: servedKms });
  await table.pools.put(pool, {}, new Date().toISOString());
  const key = await sealNewKey(sealer, secret, pool, new Date().toISOString());
  await table.store.insert(key);
  return { keyId: key.keyId, secret };
}

/**
 * The EMF records under `pool` that count `metric`, each checked to carry the count alone: the
 * pool and one value, never the key service's error text nor anything of the key.
 */
function countedUnder(records: Record<string, unknown>[], pool: string, metric: string): Record<string, unknown>[] {
  const counted = records.filter((record) => record.pool === pool && metric in record);
  for (const record of counted) expect(Object.keys(record).sort()).toEqual(['_aws', metric, 'pool'].sort());
  return counted;
}

describe('when the key service fails', () => {
  it('a lease answers 503 sealing_unavailable with Retry-After, gives the use back, and leaks nothing', async () => {
    // Prepare
    const pool = uniqueName('kms');
    const { keyId, secret } = await sealedKey(pool);
    const api = poolApi(server.url);
    const before = kmsCalls;
    const capture = captureOutput();
    let answer;
    try {
      // Act
      answer = await api.lease(pool);
    } finally {
      capture.stop();
    }
    // Assess
    const body = expectError(answer, 503, 'sealing_unavailable');
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(body.retryAfterSeconds).toBe(Number(answer.headers.get('retry-after')));
    expect(body.message).toContain('DisabledException');
    expect(kmsCalls).toBeGreaterThan(before);
    // The use is refunded and the key stays in its pool: it was the key service, not the key.
    expect(await api.view(pool, keyId)).toMatchObject({ usageCount: 0, status: 'active' });
    const item = await table.store.get(keyId);
    expect(Object.values(item?.slots ?? {}).map((slot) => slot.outcome)).toEqual(['failure']);
    expect(answer.text).not.toContain(secret);
    expect(capture.lines()).not.toContain(secret);
    expect(capture.lines()).not.toContain(item?.secret ?? 'no item');
  });

  it('a KMS throttle past the SDK retries answers 503 sealing_unavailable, never 500: the use given back, the key never marked, the next lease gets it', async () => {
    // Prepare: KMS works, but throttles the next three calls (KMSClient's three attempts).
    const pool = uniqueName('kms-throttled');
    const { keyId, secret } = await sealedKey(pool);
    const api = poolApi(server.url);
    refuseAll = undefined;
    servedKms.failNext('ThrottlingException', 3);
    const before = servedKms.calls.decrypt;
    let leases;
    try {
      // Act
      leases = await captureEmf(async () => [await api.lease(pool), await api.lease(pool)] as const);
    } finally {
      refuseAll = 'DisabledException';
    }
    const {
      result: [throttled, next],
      records,
      text,
    } = leases;
    // Assess
    const body = expectError(throttled, 503, 'sealing_unavailable');
    expect(body.message).toContain('ThrottlingException');
    expect(throttled.headers.get('retry-after')).toBe(String(SEALING_RETRY_AFTER_SECONDS));
    // The SDK retried the throttle itself before the open gave up (3 Decrypts); the next lease opened with one more.
    expect(servedKms.calls.decrypt - before).toBe(4);
    // The line an operator finds in the lease function's log.
    expect(text).toMatch(/request failed.*sealing_unavailable.*ThrottlingException/);
    // Counted once under the pool, for the dashboard's pool row: the throttled lease, not the granted one.
    expect(countedUnder(records, pool, METRIC.sealingUnavailable)).toHaveLength(1);
    expect(countedUnder(records, pool, METRIC.leasesGranted)).toHaveLength(1);
    expect(text).not.toContain(secret);
    // The use came back and the key stayed in the pool: the next lease took it at count 0.
    expect(next).toMatchObject({ status: 200, body: { keyId, apiKey: secret, usageCount: 0 } });
    // Counted once (the granted lease), and never marked undecryptable.
    expect(await api.view(pool, keyId)).toMatchObject({ usageCount: 1, status: 'active' });
  });

  it('a key sealed under a KMS key this function does not hold (a previous key ARN dropped too early) answers 503 sealing_misconfigured: no KMS call, nothing marked, the use given back', async () => {
    // Prepare: sealed under another ARN, which the function is not given as a previous key.
    const pool = uniqueName('kms-gone');
    const retired = fakeKeyArn(8);
    const { keyId } = await sealedKey(pool, retired);
    const api = poolApi(server.url);
    const before = kmsCalls;
    // Act
    const { result: answers, records } = await captureEmf(async () => [await api.lease(pool), await api.lease(pool)]);
    // Assess: before, the first lease marked the key undecryptable and the pool answered 409.
    for (const answer of answers) {
      const body = expectError(answer, 503, 'sealing_misconfigured');
      expect(answer.headers.get('retry-after')).toBe(String(body.retryAfterSeconds));
      expect(body.message).toContain(retired);
      expect(body.message).toContain(KEY_ARN);
    }
    expect(kmsCalls).toBe(before);
    expect(await api.view(pool, keyId)).toMatchObject({ usageCount: 0, status: 'active' });
    // Counted apart from the key service failing: one per refused lease, none as SealingUnavailable.
    expect(countedUnder(records, pool, METRIC.sealingMisconfigured)).toHaveLength(2);
    expect(countedUnder(records, pool, METRIC.sealingUnavailable)).toEqual([]);
  });

  it('a proxied use while KMS throttles answers 503 sealing_unavailable and counts SealingUnavailable under the pool: the provider never called, the use given back', async () => {
    // Prepare: a key the fake provider knows; KMS throttles the next three calls (the SDK's attempts).
    const pool = uniqueName('kms-proxy');
    const { keyId, secret } = await sealedKey(pool);
    stack.provider.setKey(secret);
    refuseAll = undefined;
    servedKms.failNext('ThrottlingException', 3);
    let proxied;
    try {
      // Act
      proxied = await captureEmf(() => proxy(server.url, pool, GENERATE, { body: promptForm() }));
    } finally {
      refuseAll = 'DisabledException';
    }
    const { result: answer, records, text } = proxied;
    // Assess
    expect(answer.status, answer.text).toBe(503);
    expect(answer.json).toMatchObject({ error: 'sealing_unavailable' });
    expect(stack.provider.callsWith(secret, `/${GENERATE}`)).toBe(0);
    expect(await stack.api.view(pool, keyId)).toMatchObject({ usageCount: 0, status: 'active' });
    expect(countedUnder(records, pool, METRIC.sealingUnavailable)).toHaveLength(1);
    expect(text).not.toContain(secret);
  });

  it('an import answers 503 sealing_unavailable and writes nothing', async () => {
    // Prepare
    const pool = uniqueName('kms-import');
    const api = poolApi(server.url);
    await api.putPool(pool);
    const secret = fakeKey('import-');
    // Act
    const answer = await api.call('POST', `/pools/${pool}/keys`, { keys: [{ apiKey: secret }] });
    // Assess
    expectError(answer, 503, 'sealing_unavailable');
    expect(answer.headers.get('retry-after')).not.toBeNull();
    expect(answer.text).not.toContain(secret);
    expect(await api.listAll(pool)).toEqual([]);
  });

  it('the OpenAPI document lists sealing_unavailable on the routes that seal or open, and only there', async () => {
    // Act
    const answer = await poolApi(server.url).call('GET', '/openapi.json');
    // Assess
    type Responses = Record<string, { description?: string } | undefined>;
    const doc = answer.body as { paths: Record<string, Record<string, { responses: Responses }>> };
    const unavailable = (path: string, method: string): string | undefined =>
      doc.paths[path]?.[method]?.responses['503']?.description;
    expect(unavailable('/pools/{pool}/leases', 'post')).toContain('sealing_unavailable');
    expect(unavailable('/pools/{pool}/keys', 'post')).toContain('sealing_unavailable');
    // Listing never opens a secret: its 503 is only the table's.
    expect(unavailable('/pools/{pool}/keys', 'get')).not.toContain('sealing_unavailable');
  });
});
