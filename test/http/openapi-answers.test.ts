/**
 * The answers the local server gives match the OpenAPI document it serves: every route's
 * success, and the errors a client meets (404, 405, 409, 400, 413, 415), each validated against
 * the schema the document declares for its status (or its `default`), with the headers it
 * declares. Validated with the document's JSON Schemas, not the zod ones they come from, so the
 * conversion is checked too.
 */
import * as z from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { type Answer, startTestServer } from '../support/server.js';
import { poolApi } from '../support/pool-api.js';

type Json = Record<string, unknown>;
interface Declared {
  headers?: Record<string, { required?: boolean }>;
  content?: Record<string, { schema: Json }>;
}
interface Document {
  paths: Record<string, Record<string, { responses: Record<string, Declared> }>>;
  components: { schemas: Record<string, Json> };
}

let server: LocalServer;
let api: ReturnType<typeof poolApi>;
let doc: Document;

beforeAll(async () => {
  const table = await createTestTable('openapi-answers');
  server = await startTestServer(table.tableName);
  api = poolApi(server.url);
  doc = (await api.call('GET', '/openapi.json')).body as Document;
});

afterAll(async () => {
  await server.close();
});

/** A component reference of the document as a reference into `$defs`, which zod reads. */
const toDefs = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', '"#/$defs/')) as unknown;

/**
 * Checks an answer against what the document declares for `method template` at its status:
 * the body against the declared schema, and every required header present. Answers the
 * declaration it used (the status's, or `default`).
 */
function expectDocumented(method: string, template: string, answer: Answer): string {
  const responses = doc.paths[template]?.[method.toLowerCase()]?.responses;
  expect(responses, `${method} ${template} is in the document`).toBeDefined();
  const declared = responses?.[String(answer.status)] ? String(answer.status) : 'default';
  const response = responses?.[declared] ?? {};
  const schema = response.content?.['application/json']?.schema;
  if (schema) {
    const validator = z.fromJSONSchema(
      toDefs({ ...schema, $defs: doc.components.schemas }) as z.core.JSONSchema.JSONSchema,
    );
    const result = validator.safeParse(answer.body);
    expect(
      result.success,
      `${method} ${template} ${answer.status}: ${answer.text} ${result.error?.message ?? ''}`,
    ).toBe(true);
  }
  for (const [name, header] of Object.entries(response.headers ?? {}))
    if (header.required)
      expect(answer.headers.get(name), `${method} ${template} ${answer.status} ${name}`).not.toBeNull();
  return declared;
}

describe('the answers match the OpenAPI document', () => {
  it('on every route, for the success a client expects', async () => {
    // Prepare
    const pool = uniqueName('doc');
    // Act / Assess
    expectDocumented('GET', '/health', await api.call('GET', '/health'));
    expectDocumented('PUT', '/pools/{pool}', await api.call('PUT', `/pools/${pool}`, { maxUses: 1 }));
    expectDocumented('GET', '/pools/{pool}', await api.call('GET', `/pools/${pool}`));
    expectDocumented('GET', '/pools', await api.call('GET', '/pools'));
    const imported = await api.call('POST', `/pools/${pool}/keys`, {
      keys: [{ apiKey: fakeKey(), label: 'first' }, { apiKey: fakeKey() }],
    });
    expect(expectDocumented('POST', '/pools/{pool}/keys', imported)).toBe('201');
    const [keyId] = (imported.body as { keys: { keyId: string }[] }).keys.map((k) => k.keyId);
    expectDocumented('GET', '/pools/{pool}/keys', await api.call('GET', `/pools/${pool}/keys?limit=1&status=active`));
    expectDocumented(
      'PATCH',
      '/pools/{pool}/keys/{keyId}',
      await api.call('PATCH', `/pools/${pool}/keys/${keyId}`, { usageCount: 0 }),
    );
    expectDocumented(
      'POST',
      '/pools/{pool}/keys/{keyId}/usage',
      await api.call('POST', `/pools/${pool}/keys/${keyId}/usage`),
    );
    const leased = await api.lease(pool, {});
    expect(expectDocumented('POST', '/pools/{pool}/leases', leased)).toBe('200');
    const { leaseId } = leased.body as { leaseId: string };
    expectDocumented(
      'POST',
      '/pools/{pool}/leases/{leaseId}/complete',
      await api.complete(pool, leaseId, { outcome: 'rate_limited', retryAfterSeconds: 600 }),
    );
  });

  it('for the errors a client meets, with their Allow and Retry-After headers', async () => {
    // Prepare
    const pool = uniqueName('doc-errors');
    await api.putPool(pool, { maxUses: 0 });
    const [secret = ''] = (await api.importKeys(pool, 1)).secrets;
    const grant = await api.grant(pool);
    await api.complete(pool, grant.leaseId, { outcome: 'rate_limited', retryAfterSeconds: 120 });
    // Act
    const dry = await api.lease(pool);
    const unknownPool = await api.call('GET', `/pools/${uniqueName('none')}`);
    const badBody = await api.call('PUT', `/pools/${pool}`, { maxUses: '3' });
    const wrongMethod = await api.call('POST', `/pools/${pool}`);
    const notJson = await api.call('POST', `/pools/${pool}/leases`, 'maxUses=1', { 'content-type': 'text/plain' });
    const tooLarge = await api.call('POST', `/pools/${pool}/keys`, {
      keys: [{ apiKey: secret, label: 'x'.repeat(300_000) }],
    });
    // Assess
    expect([
      dry.status,
      unknownPool.status,
      badBody.status,
      wrongMethod.status,
      notJson.status,
      tooLarge.status,
    ]).toEqual([409, 404, 400, 405, 415, 413]);
    expectDocumented('POST', '/pools/{pool}/leases', dry);
    expect(dry.headers.get('retry-after')).toBe(String((dry.body as { retryAfterSeconds: number }).retryAfterSeconds));
    expectDocumented('GET', '/pools/{pool}', unknownPool);
    expectDocumented('PUT', '/pools/{pool}', badBody);
    // A method the path does not take: the 405 its operations declare, Allow included.
    expectDocumented('GET', '/pools/{pool}', wrongMethod);
    expect(wrongMethod.headers.get('allow')).toBe('PUT, GET, DELETE');
    expectDocumented('POST', '/pools/{pool}/leases', notJson);
    expectDocumented('POST', '/pools/{pool}/keys', tooLarge);
  });
});
