/**
 * An entry point bundled as the functions are (test/infra/bundles.test.ts): it seals and opens
 * with the code a Lambda runs, the bundle substitutes for bn.js, asn1.js and readable-stream
 * included, so the test can check that what a bundle seals the Encryption SDK opens, and the
 * other way round; and, given a KMS key ARN, that a bundle seals and opens through KMS by its
 * own signed calls with the environment's credentials (AWS_ENDPOINT_URL_KMS naming a fake KMS).
 */
import { createEsdkOpener } from '../../lib/adapters/esdk-opener.js';
import { createEsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import type { SealContext } from '../../lib/domain/types.js';

export interface ProbeEvent {
  /** the local wrapping key, hex */
  key: string;
  /** seal and open under this KMS key instead (`sealed` is then ignored) */
  keyArn?: string;
  context: SealContext;
  /** sealed outside the bundle, for the bundle to open */
  sealed: string;
  /** for the bundle to seal */
  secret: string;
}

export const handler = async (
  event: ProbeEvent,
): Promise<{ opened: string; openedByOpener: string; sealed: string }> => {
  if (event.keyArn !== undefined) {
    const kms = { current: { kind: 'kms' as const, keyArn: event.keyArn } };
    const sealed = await createEsdkSealer(kms).seal(event.secret, event.context);
    const opened = await createEsdkOpener({ ...kms, cache: false }).open(sealed, event.context);
    return { opened, openedByOpener: opened, sealed };
  }
  const options = { current: { kind: 'local' as const, key: Buffer.from(event.key, 'hex') } };
  const sealer = createEsdkSealer(options);
  return {
    opened: await sealer.open(event.sealed, event.context),
    openedByOpener: await createEsdkOpener(options).open(event.sealed, event.context),
    sealed: await sealer.seal(event.secret, event.context),
  };
};
