/**
 * Writing an answer no faster than its reader takes it, for the response sinks of the proxy's
 * two edges (the local server's response, Lambda's response stream).
 */
import type { Writable } from 'node:stream';

/**
 * Writes `chunk` to `out` and resolves once more may follow: at once when `out` takes more,
 * else when it drains, or when it closes or fails (nothing will drain it then). Never rejects:
 * a reader that went away is the sink's `closed`, not an error of the writer.
 */
export async function writeWithBackpressure(out: Writable, chunk: Uint8Array): Promise<void> {
  if (out.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    out.once('error', done);
  });
}
