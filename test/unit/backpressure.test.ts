/**
 * writeWithBackpressure, which both proxy edges' response sinks write through: a write waits
 * while the stream is full, and stops waiting when the stream drains, closes or fails.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeWithBackpressure } from '../../lib/shared/backpressure.js';

/** A stream that holds one byte before it is full, and takes its writes only when `take()` is called. */
function slowStream(): { out: Writable; take: () => void } {
  const waiting: (() => void)[] = [];
  const out = new Writable({
    highWaterMark: 1,
    write(_chunk, _encoding, callback) {
      waiting.push(callback);
    },
  });
  return { out, take: () => waiting.splice(0).forEach((callback) => callback()) };
}

/** Whether `promise` settled by the time pending callbacks ran. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('writeWithBackpressure', () => {
  it('resolves at once while the stream takes more', async () => {
    // Prepare
    const out = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    // Act
    const written = writeWithBackpressure(out, Buffer.from('a'));
    // Assess
    expect(await settled(written)).toBe(true);
  });

  it('waits while the stream is full, until it drains, and leaves no listener behind', async () => {
    // Prepare
    const { out, take } = slowStream();
    // Act
    const written = writeWithBackpressure(out, Buffer.from('ab'));
    const before = await settled(written);
    take();
    // Assess
    expect(before).toBe(false);
    expect(await settled(written)).toBe(true);
    expect(['drain', 'close', 'error'].map((event) => out.listenerCount(event))).toEqual([0, 0, 0]);
  });

  it('stops waiting when the full stream closes or fails, without rejecting', async () => {
    // Prepare
    const closing = slowStream();
    const failing = slowStream();
    // Act
    const closed = writeWithBackpressure(closing.out, Buffer.from('ab'));
    const failed = writeWithBackpressure(failing.out, Buffer.from('ab'));
    closing.out.destroy();
    failing.out.destroy(new Error('the reader went away'));
    // Assess
    await expect(closed).resolves.toBeUndefined();
    await expect(failed).resolves.toBeUndefined();
  });
});
