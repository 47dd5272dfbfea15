/**
 * The wrapping keys the process's sealer holds, from where they live: read on first use, so a
 * Lambda that never seals or opens (list, counting, pools) never loads a key, and a key file is
 * read once. It never creates a key: only `npm start` does, for a table that holds no sealed
 * key (lib/wiring-secrets.ts `prepareLocalSealing`). It imports no part of the Encryption SDK:
 * the wiring loads the opener or the sealer (esdk-opener.ts, esdk-sealer.ts) beside it.
 */
import type { EsdkSealerOptions } from './esdk-opener.js';
import { dataDirKeyFile, readLocalSealingKey } from './local-sealing-key.js';
import type { WrappingKeySpec } from './wrapping-keys.js';

/** Where the wrapping keys come from. */
export type WrappingKeySource =
  /** KMS keys by ARN (AWS) */
  | { kind: 'kms'; keyArn: string; previousKeyArns: readonly string[] }
  /** key files named by configuration (tests, an operator's own local key) */
  | { kind: 'local'; keyFile: string; previousKeyFiles: readonly string[] }
  /** the local stack's data dir: its `sealing-key`, which must exist */
  | { kind: 'data-dir'; dataDir: string };

/** A local key read from its file, named in messages by that file. */
async function keyFile(file: string): Promise<WrappingKeySpec> {
  return { kind: 'local', key: await readLocalSealingKey(file), label: `key file ${file}` };
}

/** The current and previous wrapping keys of `source` (reads key files, creating none; makes no KMS call). */
export async function wrappingKeysOf(source: WrappingKeySource): Promise<EsdkSealerOptions> {
  switch (source.kind) {
    case 'kms':
      return {
        current: { kind: 'kms', keyArn: source.keyArn },
        previous: source.previousKeyArns.map((keyArn) => ({ kind: 'kms', keyArn })),
      };
    case 'local':
      return {
        current: await keyFile(source.keyFile),
        previous: await Promise.all(source.previousKeyFiles.map(keyFile)),
      };
    case 'data-dir':
      return { current: await keyFile(dataDirKeyFile(source.dataDir)) };
  }
}
