/** The real local server over a test table: requests go through HTTP and the Lambda handlers. */
import { loadHandlers, loadProxy } from '../../bin/local-handlers.js';
import { type LocalServer, startServer } from '../../lib/local/server.js';
import { dynamoEndpoint } from './dynamo.js';

/**
 * Starts the local server on a free port, reaching DynamoDB at `endpoint` (the test run's
 * DynamoDB Local unless given, e.g. a fault proxy in front of it). The handlers read the table
 * name and the endpoint once, so one of each per test file. The proxy route reads
 * STABILITY_API_BASE_URL and KEYPOOL_DATA_DIR at its first request.
 */
export async function startTestServer(tableName: string, endpoint = dynamoEndpoint()): Promise<LocalServer> {
  process.env.KEYPOOL_TABLE = tableName;
  process.env.KEYPOOL_DYNAMODB_ENDPOINT = endpoint;
  return startServer(await loadHandlers(), 0, loadProxy());
}

export interface Answer {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

/** One HTTP request; `body` is sent as given when a string, as JSON otherwise. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}

/** Captures everything written to stdout and stderr (Powertools writes there) until `stop`. */
export function captureOutput(): { lines: () => string; stop: () => void } {
  const captured: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const tap =
    (original: typeof out) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    };
  process.stdout.write = tap(out);
  process.stderr.write = tap(err);
  return {
    lines: () => captured.join(''),
    stop: () => {
      process.stdout.write = out;
      process.stderr.write = err;
    },
  };
}
