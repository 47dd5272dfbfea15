/**
 * withKey (the client package, @keypool/client) against a running keypool: lease a key from the
 * pool, call Stability's Core generation with it, complete the lease by the answer, and write
 * the image.
 *
 *   KEYPOOL_URL=http://127.0.0.1:3000 STABILITY_API_BASE_URL=http://127.0.0.1:<port> \
 *     npx tsx docs/examples/with-key.ts "a lighthouse on a cliff at dawn" lighthouse.png
 *
 * KEYPOOL_URL: the local stack, or a deployed stack's ApiUrl. Requests are signed with your AWS
 * credentials whenever there are some (the role needs the pool's keypool-client-<pool> policy);
 * the local stack checks no signature. KEYPOOL_POOL: the pool (default stability).
 * STABILITY_API_BASE_URL: the provider (default https://api.stability.ai);
 * docs/examples/fake-stability.ts starts a fake one on loopback.
 */
import { writeFile } from 'node:fs/promises';
import { Keypool, NoUsableKey, PoolNotFound, ProviderCallError } from '@keypool/client';

const [prompt = 'a lighthouse on a cliff at dawn, oil painting', file = 'image.png'] = process.argv.slice(2);
const provider = process.env.STABILITY_API_BASE_URL ?? 'https://api.stability.ai';
const pool = new Keypool({ url: process.env.KEYPOOL_URL ?? 'http://127.0.0.1:3000' }).pool(
  process.env.KEYPOOL_POOL ?? 'stability',
);

try {
  // Waits up to 20 s in all for a cooling key when the pool is dry; 2 retries with other keys.
  const response = await pool.withKey(
    (apiKey, { signal }) => {
      const form = new FormData();
      form.append('prompt', prompt);
      form.append('output_format', 'png');
      return fetch(`${provider}/v2beta/stable-image/generate/core`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, accept: 'image/*' },
        body: form,
        signal,
      });
    },
    { maxWaitSeconds: 20 },
  );
  if (response.ok) {
    await writeFile(file, Buffer.from(await response.arrayBuffer()));
    console.log(`wrote ${file}`);
  } else {
    // 403 content_moderation (or another 4xx): the prompt, not the key, was refused.
    const body = (await response.json()) as { name?: string };
    console.error(`refused: ${response.status} ${body.name ?? ''}`);
    process.exitCode = 1;
  }
} catch (error) {
  process.exitCode = 1;
  if (error instanceof NoUsableKey) {
    console.error(
      error.retryAfterSeconds === undefined ? 'the pool has no usable key' : `no key for ${error.retryAfterSeconds} s`,
    );
  } else if (error instanceof PoolNotFound) console.error('no such pool');
  else if (error instanceof ProviderCallError) console.error(error.message, error.attempts);
  else {
    // fn threw (a network error): withKey completed the lease, `failure` if the request never
    // left (the use is given back), else `unknown` (it stays counted), and rethrew the error.
    const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
    console.error(`${String(error)}${cause}`);
  }
}
