/**
 * The console's answers when what it is asked for cannot be read, over real HTTP: a path whose
 * pool is no pool name, a DynamoDB that does not answer, an endpoint that is not DynamoDB, a table that does not exist, a table
 * that throttles, credentials whose policy may not read the table. Each is a page that says what is wrong in a sentence, never "internal error";
 * one the operator can wait out keeps reloading itself, so an open page recovers on its own.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleSource, startConsole } from '../../lib/console/server.js';
import { StoreThrottled } from '../../lib/domain/errors.js';
import { overview } from '../../lib/wiring.js';
import { DENIED_PRINCIPAL, startDenyingDynamo } from '../support/denying-dynamo.js';
import { dynamoEndpoint, uniqueName } from '../support/dynamo.js';
import { call } from '../support/server.js';

/** A loopback port nothing listens on (taken, then given back). */
function closedPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const running: { close(): Promise<void> }[] = [];
/** Errors the consoles reported as unexpected (the page said "internal error" for each). */
const unexpected: unknown[] = [];

async function serve(source: ConsoleSource): Promise<string> {
  const served = await startConsole({
    source,
    tableName: 'keypool',
    port: 0,
    onError: (error) => unexpected.push(error),
  });
  running.push(served);
  return served.url;
}

let missingTable: string;
let noDynamo: string;
let notDynamo: string;
let throttled: string;
let denied: string;

beforeAll(async () => {
  missingTable = await serve(
    overview({ endpoint: dynamoEndpoint(), region: undefined, tableName: uniqueName('none') }),
  );
  noDynamo = await serve(
    overview({ endpoint: `http://127.0.0.1:${await closedPort()}`, region: undefined, tableName: 'keypool' }),
  );
  // Another console's port given for DynamoDB's: it answers, with HTML.
  notDynamo = await serve(overview({ endpoint: missingTable, region: undefined, tableName: 'keypool' }));
  const busy = () => Promise.reject(new StoreThrottled({ reason: 'throttled', dynamoCode: 'ThrottlingException' }));
  throttled = await serve({ pools: busy, keys: busy, runs: busy });
  const denying = await startDenyingDynamo();
  running.push(denying);
  denied = await serve(overview({ endpoint: denying.url, region: undefined, tableName: 'keypool-prod' }));
});

afterAll(async () => {
  await Promise.all(running.map((served) => served.close()));
});

describe('the console when it cannot read', () => {
  it('answers 400 for a pool path that is no pool name, saying what one is, without echoing it and never 500', async () => {
    // Prepare: too long for a DynamoDB key, a space, and a right-to-left override.
    const names = ['a'.repeat(3000), 'a b', '\u202Eevil'];
    // Act
    const answers = await Promise.all(
      names.map((name) => call(missingTable, 'GET', `/pools/${encodeURIComponent(name)}`)),
    );
    // Assess
    for (const [i, answer] of answers.entries()) {
      expect(answer.status, names[i]?.slice(0, 8)).toBe(400);
      expect(answer.text).toContain(
        'a pool is 1-64 letters, digits, &quot;_&quot;, &quot;.&quot; or &quot;-&quot; (not &quot;.&quot; or &quot;..&quot;)',
      );
      expect(answer.text).not.toContain(names[i]);
    }
    expect(unexpected).toEqual([]);
  });

  it('answers 503 saying that DynamoDB does not answer, that what answers is not DynamoDB, or that the table does not exist, on every view, and keeps reloading', async () => {
    for (const [base, words] of [
      [noDynamo, 'DynamoDB does not answer'],
      [notDynamo, 'Something answers at the endpoint the console reads, but not as DynamoDB'],
      [missingTable, 'The table does not exist'],
    ] as const) {
      for (const path of ['/', '/runs', '/pools/images']) {
        // Act
        const answer = await call(base, 'GET', path);
        // Assess
        expect(answer.status, `${words}: ${path}`).toBe(503);
        expect(answer.headers.get('retry-after')).toBe('10');
        expect(answer.text).toContain(words);
        expect(answer.text).not.toContain('internal error');
        expect(answer.text).toContain('data-refresh="10"');
      }
    }
    // A page the operator paused stays paused.
    const paused = await call(noDynamo, 'GET', '/pools/images?refresh=off');
    expect(paused.text).toContain('data-refresh="0"');
    expect(unexpected).toEqual([]);
  });

  it('answers 503 saying that DynamoDB throttles its reads, for a table that stays busy once the SDK has retried', async () => {
    // Act
    const answer = await call(throttled, 'GET', '/');
    // Assess
    expect(answer.status).toBe(503);
    expect(answer.text).toContain('DynamoDB is throttling');
    expect(answer.text).toContain('data-refresh="10"');
    expect(unexpected).toEqual([]);
  });

  it('answers 503 naming the permission refused and the table, never the principal, when the credentials may not read it', async () => {
    for (const [path, action, index] of [
      ['/', 'dynamodb:Query', ' (index pool-keys)'],
      ['/runs', 'dynamodb:Query', ' (index pool-keys)'],
      ['/pools/images', 'dynamodb:GetItem', ''],
    ] as const) {
      // Act
      const answer = await call(denied, 'GET', path);
      // Assess
      expect(answer.status, path).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('10');
      expect(answer.text).toContain(
        `The AWS credentials in use are not allowed ${action} on table &quot;keypool-prod&quot;${index}`,
      );
      expect(answer.text).toContain('dynamodb:Query, dynamodb:GetItem and dynamodb:BatchGetItem');
      expect(answer.text).not.toContain('internal error');
      expect(answer.text).not.toContain(DENIED_PRINCIPAL.split('/')[0]);
      expect(answer.text).not.toContain('123456789012');
      expect(answer.text).toContain('data-refresh="10"');
    }
    expect(unexpected).toEqual([]);
  });
});
