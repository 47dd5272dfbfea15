/**
 * Helpers for proxy mode's HTTP tests: a local server whose proxy route reaches a fake provider
 * (and keeps answers in a data dir of its own), pools of imported keys the fake provider knows,
 * and proxied calls read whole.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalServer } from '../../lib/local/server.js';
import { createTestTable, type TestTable } from './dynamo.js';
import { type FakeKey, type FakeProvider, startFakeProvider } from './fake-provider.js';
import { poolApi } from './pool-api.js';
import { startTestServer } from './server.js';

export interface ProxyStack {
  server: LocalServer;
  provider: FakeProvider;
  table: TestTable;
  api: ReturnType<typeof poolApi>;
  close(): Promise<void>;
}

/** The local server on a table of its own, its proxy route calling a fake provider. */
export async function startProxyStack(prefix: string): Promise<ProxyStack> {
  const provider = await startFakeProvider();
  process.env.STABILITY_API_BASE_URL = provider.url;
  process.env.KEYPOOL_DATA_DIR = mkdtempSync(join(tmpdir(), `keypool-${prefix}-`));
  const table = await createTestTable(prefix);
  const server = await startTestServer(table.tableName);
  return {
    server,
    provider,
    table,
    api: poolApi(server.url),
    close: async () => {
      await server.close();
      await provider.close();
    },
  };
}

/** A pool of `count` keys the fake provider knows (each with `behaviour`), in import order. */
export async function proxyPool(
  stack: ProxyStack,
  pool: string,
  count: number,
  settings: Record<string, unknown> = {},
  behaviour: Partial<FakeKey> = {},
): Promise<{ keyId: string; apiKey: string }[]> {
  await stack.api.putPool(pool, settings);
  const { keys, secrets } = await stack.api.importKeys(pool, count);
  return keys.map((key, i) => {
    const apiKey = secrets[i] ?? '';
    stack.provider.setKey(apiKey, behaviour);
    return { keyId: key.keyId, apiKey };
  });
}

export interface Proxied {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  json: unknown;
}

export interface ProxyInit {
  method?: 'GET' | 'POST';
  body?: RequestInit['body'];
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** the query string as sent (without `?`), percent-encoding and all */
  query?: string;
}

/** A multipart generation request, as fetch encodes a form with a prompt. */
export function promptForm(prompt = 'a lighthouse at dusk'): FormData {
  const form = new FormData();
  form.set('prompt', prompt);
  form.set('output_format', 'png');
  return form;
}

/** One request to the proxy route, its answer read whole. */
export async function proxy(base: string, pool: string, path: string, init: ProxyInit = {}): Promise<Proxied> {
  const response = await fetch(
    `${base}/pools/${pool}/proxy/${path}${init.query === undefined ? '' : `?${init.query}`}`,
    {
      method: init.method ?? 'POST',
      ...(init.headers ? { headers: init.headers } : {}),
      ...(init.body === undefined ? {} : { body: init.body }),
      ...(init.signal ? { signal: init.signal } : {}),
    },
  );
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, bytes, text, json };
}
