/**
 * The ESDK keyrings the sealer encrypts with (esdk-sealer.ts): the sealing side only. Opening
 * unwraps without them (wrapping-keys.ts), so the functions that only open bundle none of this.
 * A KMS keyring is built per call so its client records that call's failures by name
 * (SealingUnavailable's causes).
 */
import { KmsKeyringClass } from '@aws-crypto/kms-keyring';
import {
  immutableClass,
  KeyringNode,
  type Newable,
  type NodeAlgorithmSuite,
} from '@aws-crypto/material-management-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import {
  type KmsClientLike,
  LOCAL_PROVIDER,
  recording,
  wrappingKeyRef,
  type WrappingKeySpec,
} from './wrapping-keys.js';

/**
 * The ESDK's KMS keyring over Node's keyring base: KmsKeyringNode (@aws-crypto/kms-keyring-node)
 * is this same class, built the same way, plus a default client provider that loads the
 * aggregated KMS client at import. We always pass our own provider (kms-client.ts). Built on
 * first use, not at import: a module with no work at its top level is dropped whole from the
 * bundles that import the wiring but never seal (lease, maintain, proxy).
 */
function buildKmsKeyring() {
  // As the ESDK does it: KeyringNode is abstract, the factory's parameter a concrete constructor.
  class KmsKeyring extends KmsKeyringClass<NodeAlgorithmSuite, KmsClientLike>(
    KeyringNode as unknown as Newable<KeyringNode>,
  ) {}
  immutableClass(KmsKeyring);
  return KmsKeyring;
}
let kmsKeyring: ReturnType<typeof buildKmsKeyring> | undefined;

/**
 * The keyring that seals under one wrapping key: KmsKeyringNode with the key ARN as generator
 * (GenerateDataKey), built per call so its client records that call's failures (concurrent
 * calls each get their own; no AsyncLocalStorage, whose promise hooks would tax every promise of
 * the process on Node.js 20), or one RawAesKeyringNode (AES-256-GCM key wrapping: no KMS,
 * nothing to record).
 */
export function keyringFor(
  spec: WrappingKeySpec,
  kms: (region: string) => KmsClientLike,
): (failures: string[]) => KeyringNode {
  const ref = wrappingKeyRef(spec);
  if (spec.kind === 'kms') {
    return (failures) => {
      const clientProvider = (region: string) => recording(kms(region), failures);
      // KmsKeyring extends KeyringNode through the ESDK's class factory (KmsKeyringClass(KeyringNode)),
      // which the lint rule cannot follow; at run time it is a KeyringNode.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
      const built: KeyringNode = new (kmsKeyring ??= buildKmsKeyring())({
        generatorKeyId: spec.keyArn,
        clientProvider,
      });
      return built;
    };
  }
  const local = new RawAesKeyringNode({
    keyNamespace: LOCAL_PROVIDER,
    keyName: ref.key,
    // The keyring keeps its own copy; the caller may zero theirs.
    unencryptedMasterKey: new Uint8Array(spec.key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  return () => local;
}
