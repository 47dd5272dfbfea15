/**
 * What the Lambda bundles load in place of `readable-stream` (infra/bundling.ts
 * BUNDLE_SUBSTITUTES): Node's own streams, which readable-stream 3 is a copy of for older
 * Node.js and hands out itself when READABLE_STREAM=disable. The Encryption SDK's encrypt side
 * (Transform, pipeline, finished) and duplexify use only what Node exports under the same
 * names. Saves ~40 KB of bundle in the functions that seal.
 */
export { Duplex, finished, PassThrough, pipeline, Readable, Stream, Transform, Writable } from 'node:stream';
