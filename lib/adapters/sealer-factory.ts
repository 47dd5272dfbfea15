/**
 * Builds the process's sealer from where its wrapping keys live, on first use: a Lambda that
 * never seals or opens (list, counting, pools) never loads a key, and a key file is read once.
 * It never creates a key: only `npm start` does, for a table that holds no sealed key
 * (lib/wiring-secrets.ts `prepareLocalSealing`).
 */
import { join } from 'node:path';
import { createEsdkSealer, type EsdkSealer } from './esdk-sealer.js';
import { LOCAL_SEALING_KEY_FILE, readLocalSealingKey } from './local-sealing-key.js';
import type { WrappingKeySpec } from './wrapping-keys.js';

/** Where the wrapping keys come from. */
export type WrappingKeySource =
  /** KMS keys by ARN (AWS) */
  | { kind: 'kms'; keyArn: string; previousKeyArns: readonly string[] }
  /** key files named by configuration (tests, an operator's own local key) */
  | { kind: 'local'; keyFile: string; previousKeyFiles: readonly string[] }
  /** the local stack's data dir: its `sealing-key`, which must exist */
  | { kind: 'data-dir'; dataDir: string };

/** The key file a data dir holds. */
export function dataDirKeyFile(dataDir: string): string {
  return join(dataDir, LOCAL_SEALING_KEY_FILE);
}

/** A local key read from its file, named in messages by that file. */
async function keyFile(file: string): Promise<WrappingKeySpec> {
  return { kind: 'local', key: await readLocalSealingKey(file), label: `key file ${file}` };
}

/** The EsdkSealer over `source`'s keys (reads key files, creating none; makes no KMS call). */
export async function buildSealer(source: WrappingKeySource): Promise<EsdkSealer> {
  switch (source.kind) {
    case 'kms':
      return createEsdkSealer({
        current: { kind: 'kms', keyArn: source.keyArn },
        previous: source.previousKeyArns.map((keyArn) => ({ kind: 'kms', keyArn })),
      });
    case 'local':
      return createEsdkSealer({
        current: await keyFile(source.keyFile),
        previous: await Promise.all(source.previousKeyFiles.map(keyFile)),
      });
    case 'data-dir':
      return createEsdkSealer({ current: await keyFile(dataDirKeyFile(source.dataDir)) });
  }
}
