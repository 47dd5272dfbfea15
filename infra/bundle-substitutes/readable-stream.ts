/**
 * What the Lambda bundles load in place of `readable-stream` (infra/bundling.ts
 * BUNDLE_SUBSTITUTES): Node's own streams, which readable-stream 3 is a copy of for older
 * Node.js and hands out itself when READABLE_STREAM=disable. The Encryption SDK's encrypt side
 * (Transform, pipeline, finished) and duplexify (Duplex, Readable, Writable) use only what
 * Node exports under the same names. Saves ~40 KB of bundle in the functions that seal.
 */
import { pipeline as nodePipeline } from 'node:stream';

export { Duplex, finished, PassThrough, Readable, Stream, Transform, Writable } from 'node:stream';

type Pipeline = (...args: unknown[]) => unknown;

/**
 * readable-stream 3's pipeline, whose callback is optional (a no-op when absent: the ESDK's
 * encrypt stream calls it so and watches errors itself); Node's throws without one.
 */
export function pipeline(...args: unknown[]): unknown {
  const run = nodePipeline as unknown as Pipeline;
  return typeof args.at(-1) === 'function' ? run(...args) : run(...args, () => undefined);
}
