/**
 * The small pieces proxy mode's use case stands on: reading an answer's head ahead of passing
 * it on, handing a streaming answer to a store one chunk at a time, masking what a provider
 * echoes of a key, and one request hash however a client re-encodes the same form.
 */
import { describe, expect, it } from 'vitest';
import { proxyRequestHash } from '../../lib/domain/idempotency.js';
import { readHead, Relay } from '../../lib/shared/byte-streams.js';
import { maskSecretPrefix } from '../../lib/shared/redact.js';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield await Promise.resolve(Buffer.from(part));
}

async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  let all = '';
  for await (const chunk of stream) all += Buffer.from(chunk).toString();
  return all;
}

describe('readHead', () => {
  it('reads a short stream whole', async () => {
    const head = await readHead(chunks('ab', 'cd'), 100);
    expect([Buffer.from(head.bytes).toString(), head.whole, await text(head.all)]).toEqual(['abcd', true, 'abcd']);
  });

  it('stops at the limit and hands on the head and the rest', async () => {
    const head = await readHead(chunks('ab', 'cd', 'ef', 'gh'), 3);
    expect([Buffer.from(head.bytes).toString(), head.whole]).toEqual(['abcd', false]);
    expect(await text(head.all)).toBe('abcdefgh');
  });
});

describe('Relay', () => {
  it('hands each chunk to its reader, a push resolving only once it was taken', async () => {
    const relay = new Relay();
    const read = text(relay.stream);
    let taken = false;
    const pushed = relay.push(Buffer.from('one')).then(() => (taken = true));
    await pushed;
    await relay.push(Buffer.from('two'));
    relay.end();
    expect([taken, await read]).toEqual([true, 'onetwo']);
  });

  it('a failed stream throws to its reader; a dropped one lets every push through', async () => {
    const failing = new Relay();
    const read = text(failing.stream);
    failing.fail(new Error('cut'));
    await expect(read).rejects.toThrow('cut');
    const dropped = new Relay();
    const blocked = dropped.push(Buffer.from('x'));
    dropped.drop();
    await blocked;
    await dropped.push(Buffer.from('y'));
  });
});

describe('maskSecretPrefix', () => {
  const key = 'sk-test-abcdefghijklmnopqrstuvwxyz';
  it('masks what starts like the key, whole or cut', () => {
    expect(maskSecretPrefix(`Incorrect API key provided: ${key.slice(0, 14)}`, key)).toBe(
      'Incorrect API key provided: sk-...[redacted]',
    );
    expect(maskSecretPrefix(`a ${key} b ${key}`, key)).toBe('a sk-...[redacted] b sk-...[redacted]');
  });

  it('leaves a text without the key as it is', () => {
    expect(maskSecretPrefix('nothing here: sk-test-abc', key)).toBe('nothing here: sk-test-abc');
  });
});

describe('proxyRequestHash', () => {
  const form = (boundary: string, prompt: string): { headers: Record<string, string>; body: Uint8Array } => {
    const body = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n${prompt}\r\n--${boundary}--\r\n`,
    );
    return {
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length) },
      body,
    };
  };
  const hash = (request: { headers: Record<string, string>; body: Uint8Array }): string =>
    proxyRequestHash({ method: 'POST', path: 'v2beta/x', query: '', ...request });

  it('is the same for the same form under another boundary', () => {
    expect(hash(form('----a1', 'cat'))).toBe(hash(form('----bbbbbb2', 'cat')));
  });

  it('differs for another prompt, path or query', () => {
    const base = form('----a1', 'cat');
    expect(hash(form('----a1', 'dog'))).not.toBe(hash(base));
    expect(proxyRequestHash({ method: 'POST', path: 'v2beta/y', query: '', ...base })).not.toBe(hash(base));
    expect(proxyRequestHash({ method: 'POST', path: 'v2beta/x', query: 'a=1', ...base })).not.toBe(hash(base));
  });
});
