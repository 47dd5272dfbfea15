/**
 * The KMS client the sealer calls: the SDK's bare KMSClient with the three commands it sends
 * (GenerateDataKey to seal, Decrypt to open, Encrypt for further wrapping keys), one per
 * region, kept once KMS has answered there. The aggregated `KMS` client carries every KMS
 * operation's schema (~20 KB more of bundle) for these three.
 */
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { KmsClientLike } from './wrapping-keys.js';

/** A KMS client for `region` (the region of the key ARN the keyring calls), built when first asked for. */
export function kmsClient(region: string): KmsClientLike {
  const client = new KMSClient({ region });
  return {
    generateDataKey: (input) => client.send(new GenerateDataKeyCommand(input)),
    encrypt: (input) => client.send(new EncryptCommand(input)),
    decrypt: (input) => client.send(new DecryptCommand(input)),
  };
}

/**
 * `build` per region, kept once KMS answered there (a response, or an error with an HTTP
 * status: the region is live), so a bogus region in a header fills no cache; as the ESDK's
 * cacheClients (kms-keyring: kms_client_supplier.js) does.
 */
export function cacheKmsClients(build: (region: string) => KmsClientLike): (region: string) => KmsClientLike {
  const kept = new Map<string, KmsClientLike>();
  return (region) => {
    const cached = kept.get(region);
    if (cached) return cached;
    const client = build(region);
    const keep = <T>(answer: Promise<T>): Promise<T> =>
      answer.then(
        (value) => {
          kept.set(region, client);
          return value;
        },
        (error: unknown) => {
          if ((error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode)
            kept.set(region, client);
          throw error;
        },
      );
    return {
      generateDataKey: (input) => keep(client.generateDataKey(input)),
      encrypt: (input) => keep(client.encrypt(input)),
      decrypt: (input) => keep(client.decrypt(input)),
    };
  };
}

/** One client per region, cached once KMS answered there. */
export const cachedKmsClients: (region: string) => KmsClientLike = cacheKmsClients(kmsClient);
