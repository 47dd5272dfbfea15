/**
 * Sealers for tests that talk to DynamoDB Local: the real EsdkSealer with a local key. The test
 * run's key file is written by the global setup (mode 0600) and named in
 * KEYPOOL_SEALING_KEY_FILE, so the CLI and local server a test starts seal with the same key
 * as the test's own broker.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createEsdkSealer, type EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { LazySealer } from '../../lib/adapters/lazy-sealer.js';
import { wrappingKeysOf } from '../../lib/adapters/sealer-factory.js';
import type { SecretSealer } from '../../lib/ports/secret-sealer.js';

declare module 'vitest' {
  export interface ProvidedContext {
    sealingKeyFile: string;
  }
}

let shared: SecretSealer | undefined;

/** The test run's sealer (the global setup's key file): what every process of the run seals with. */
export function testSealer(): SecretSealer {
  return (shared ??= new LazySealer(async () =>
    createEsdkSealer(await wrappingKeysOf({ kind: 'local', keyFile: inject('sealingKeyFile'), previousKeyFiles: [] })),
  ));
}

/** A sealer over a fresh random key of its own (benchmarks, rotation tests). */
export function randomKeySealer(key: Uint8Array = randomBytes(32), previous: Uint8Array[] = []): EsdkSealer {
  return createEsdkSealer({
    current: { kind: 'local', key },
    previous: previous.map((k) => ({ kind: 'local', key: k })),
  });
}

/**
 * Items as a scan returned them, each sealed secret opened (with the test run's key) into
 * `apiKey` in place of `sealedKey`, so tests compare what a key holds across runs whose
 * ciphertexts differ. Throws when an item holds a plain `apiKey`: keypool writes none.
 */
export async function withOpenedSecrets(items: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  return Promise.all(
    items.map(async (item) => {
      if (item.apiKey !== undefined) throw new Error(`item ${String(item.keyId)} holds a plain apiKey`);
      const { sealedKey, ...rest } = item;
      if (typeof sealedKey !== 'string') return item;
      return {
        ...rest,
        apiKey: await testSealer().open(sealedKey, { pool: String(item.pool), keyId: String(item.keyId) }),
      };
    }),
  );
}
