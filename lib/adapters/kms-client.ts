/**
 * The KMS client the sealer's KMS keyrings call: the SDK's bare KMSClient with the three
 * commands the keyring sends (GenerateDataKey to seal, Decrypt to open, Encrypt for further
 * wrapping keys), one per region, kept once KMS has answered there (the ESDK's own
 * cacheClients). The ESDK's default builds the aggregated `KMS` client, which carries every
 * KMS operation's schema (~20 KB more of bundle) for these three.
 */
import { cacheClients } from '@aws-crypto/kms-keyring';
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

/** One client per region, cached once KMS answered there (so a bogus region in a header fills no cache). */
export const cachedKmsClients: (region: string) => KmsClientLike | false = cacheClients(kmsClient);
