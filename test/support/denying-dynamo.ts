/**
 * A DynamoDB endpoint that refuses every request as DynamoDB refuses a principal whose policy
 * lacks the action: 400 `AccessDeniedException`, its message naming the principal (with its
 * account), the action and the resource's ARN (the table, or the index a Query names). DynamoDB
 * Local checks no IAM, so this is how an edge's answer to a denied read is tested.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { listenOnLoopback, type Listening } from '../../lib/shared/listen.js';

/** The principal every refusal names: nothing of it may reach an operator's screen. */
export const DENIED_PRINCIPAL = 'arn:aws:sts::123456789012:assumed-role/keypool-reader/operator-session';

/** The refused request's table and index, from its JSON body. */
function resource(body: string): string {
  let parsed: { TableName?: unknown; IndexName?: unknown; RequestItems?: Record<string, unknown> } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not JSON: the resource stays unnamed
  }
  const table = typeof parsed.TableName === 'string' ? parsed.TableName : Object.keys(parsed.RequestItems ?? {})[0];
  const index = typeof parsed.IndexName === 'string' ? `/index/${parsed.IndexName}` : '';
  return `arn:aws:dynamodb:eu-west-1:123456789012:table/${table ?? 'unknown'}${index}`;
}

function readBody(message: IncomingMessage): Promise<string> {
  return new Promise((done, fail) => {
    let text = '';
    message.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    message.once('end', () => done(text));
    message.once('error', fail);
  });
}

/** Starts the endpoint on a free loopback port: `url` is what a client is given as its endpoint. */
export function startDenyingDynamo(): Promise<Listening> {
  const server = createServer((request, response) => {
    void readBody(request).then((body) => {
      const target = request.headers['x-amz-target'];
      const action = `dynamodb:${(typeof target === 'string' ? target : '').split('.').pop() ?? ''}`;
      const text = JSON.stringify({
        __type: 'com.amazon.coral.service#AccessDeniedException',
        Message: `User: ${DENIED_PRINCIPAL} is not authorized to perform: ${action} on resource: ${resource(body)} because no identity-based policy allows the ${action} action`,
      });
      response.writeHead(400, {
        'content-type': 'application/x-amz-json-1.0',
        'content-length': Buffer.byteLength(text),
        'x-amzn-requestid': randomUUID(),
      });
      response.end(text);
    });
  });
  return listenOnLoopback(server, 0);
}
