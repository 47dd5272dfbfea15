/**
 * Builds the process's sealer from where its wrapping keys live, on first use: a Lambda that
 * never seals or opens (list, counting, pools) never loads a key, and a key file is read once.
 */
import { createEsdkSealer, type EsdkSealer } from './esdk-sealer.js';
import { loadOrCreateLocalSealingKey, readLocalSealingKey } from './local-sealing-key.js';

/** Where the wrapping keys come from. */
export type WrappingKeySource =
  /** KMS keys by ARN (AWS) */
  | { kind: 'kms'; keyArn: string; previousKeyArns: readonly string[] }
  /** key files named by configuration (tests, an operator's own local key) */
  | { kind: 'local'; keyFile: string; previousKeyFiles: readonly string[] }
  /** the local stack's data dir: its `sealing-key`, generated (mode 0600) on first start */
  | { kind: 'data-dir'; dataDir: string };

/** The EsdkSealer over `source`'s keys (reads key files; makes no KMS call). */
export async function buildSealer(source: WrappingKeySource): Promise<EsdkSealer> {
  switch (source.kind) {
    case 'kms':
      return createEsdkSealer({
        current: { kind: 'kms', keyArn: source.keyArn },
        previous: source.previousKeyArns.map((keyArn) => ({ kind: 'kms', keyArn })),
      });
    case 'local': {
      const previous = await Promise.all(
        source.previousKeyFiles.map(async (file) => ({ kind: 'local', key: await readLocalSealingKey(file) }) as const),
      );
      return createEsdkSealer({ current: { kind: 'local', key: await readLocalSealingKey(source.keyFile) }, previous });
    }
    case 'data-dir':
      return createEsdkSealer({
        current: { kind: 'local', key: (await loadOrCreateLocalSealingKey(source.dataDir)).key },
      });
  }
}
