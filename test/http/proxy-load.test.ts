/**
 * Proxy mode under load and with large bodies, through the real local server against the fake
 * provider: the cap holds for 200 concurrent calls, a 50 MiB answer streams through with
 * bounded memory, and a 9 MiB multipart upload arrives byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/dynamo.js';
import { startLocalStack } from '../support/local-stack.js';
import { poolApi } from '../support/pool-api.js';
import { promptForm, proxy, proxyPool, type ProxyStack, startProxyStack } from '../support/proxy-api.js';

const GENERATE = 'v2beta/stable-image/generate/core';
const MiB = 1024 * 1024;

let stack: ProxyStack;

/** A process's peak RSS so far (VmHWM), bytes. */
function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;
}

beforeAll(async () => {
  stack = await startProxyStack('proxy-load');
});

afterAll(async () => {
  await stack.close();
});

describe('proxy mode under load', () => {
  it('200 concurrent calls on 10 keys with cap 3: exactly 40 provider calls, at most 4 per key, every other caller 409', async () => {
    // Prepare
    const pool = uniqueName('load');
    const keys = await proxyPool(stack, pool, 10, { maxUses: 3 });
    const before = stack.provider.requests.length;
    // Act
    const answers = await Promise.all(
      Array.from({ length: 200 }, () =>
        proxy(stack.server.url, pool, GENERATE, { body: promptForm(), headers: { accept: 'image/*' } }),
      ),
    );
    // Assess
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(40);
    expect(statuses.filter((s) => s === 409)).toHaveLength(160);
    expect(stack.provider.requests.length - before).toBe(40);
    for (const key of keys) expect(stack.provider.callsWith(key.apiKey)).toBeLessThanOrEqual(4);
    const counts = await Promise.all(keys.map(async (k) => (await stack.api.view(pool, k.keyId))?.usageCount));
    expect(counts).toEqual(keys.map(() => 4));
  });
});

describe('large bodies', () => {
  it("a 50 MiB answer streams through with keypool's RSS growing less than 64 MiB", async () => {
    // Prepare: keypool as npm start runs it, in a process of its own, so its RSS is its alone
    const keypool = await startLocalStack(60_000, {
      STABILITY_API_BASE_URL: stack.provider.url,
      KEYPOOL_DATA_DIR: mkdtempSync(join(tmpdir(), 'keypool-rss-')),
    });
    try {
      const api = poolApi(keypool.url);
      const pool = uniqueName('large');
      await api.putPool(pool);
      const { secrets } = await api.importKeys(pool, 1);
      stack.provider.setKey(secrets[0] ?? '', { imageBytes: 50 * MiB });
      // A first proxied call loads every module the route needs: the baseline is the route warm.
      await proxy(keypool.url, pool, 'v1/engines/list', { method: 'GET' });
      const baseline = peakRss(keypool.pid);
      // Act
      const response = await fetch(`${keypool.url}/pools/${pool}/proxy/${GENERATE}`, {
        method: 'POST',
        body: promptForm(),
        headers: { accept: 'image/*' },
      });
      let received = 0;
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) received += chunk.byteLength;
      // Assess
      expect(response.status).toBe(200);
      expect(received).toBe(50 * MiB);
      expect(peakRss(keypool.pid) - baseline).toBeLessThan(64 * MiB);
    } finally {
      await keypool.stop();
    }
  });

  it('a 9 MiB multipart upload arrives at the provider byte for byte', async () => {
    // Prepare: the exact bytes fetch encodes for the form, sent as they are
    const pool = uniqueName('upload');
    await proxyPool(stack, pool, 1);
    const form = promptForm('an image to edit');
    form.set('image', new Blob([randomBytes(9 * MiB)], { type: 'image/png' }), 'input.png');
    const encoded = new Request('http://localhost/', { method: 'POST', body: form });
    const body = new Uint8Array(await encoded.arrayBuffer());
    const type = encoded.headers.get('content-type') ?? '';
    // Act
    const answer = await proxy(stack.server.url, pool, 'v2beta/stable-image/edit/inpaint', {
      body,
      headers: { 'content-type': type, accept: 'image/*' },
    });
    // Assess
    expect(answer.status).toBe(200);
    const seen = stack.provider.requests.at(-1);
    expect(seen?.headers['content-type']).toBe(type);
    expect(seen?.bytes).toBe(body.byteLength);
    expect(seen?.sha256).toBe(createHash('sha256').update(body).digest('hex'));
  });
});
