/**
 * openSealedMessage (lib/adapters/sealed-message.ts, the hand-written opener) against the
 * Encryption SDK's own decrypt as the oracle, on the same bytes with the same key material:
 * the oracle through the ESDK's keyring, ours through the unwrap the opener holds for that key
 * (lib/adapters/wrapping-keys.ts). `compare` asserts the rule: ours never accepts what the
 * oracle refuses, and where both accept they agree on the plaintext and the context. Shared by
 * the unit tests and the exhaustive sweeps of the slow project.
 */
import { randomBytes } from 'node:crypto';
import { buildDecrypt } from '@aws-crypto/decrypt-node';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import { KmsKeyringNode } from '@aws-crypto/kms-keyring-node';
import { AlgorithmSuiteIdentifier, CommitmentPolicy, type KeyringNode } from '@aws-crypto/material-management-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { afterAll, expect } from 'vitest';
import { openSealedMessage, SealedMessage, type UnwrapDataKey } from '../../lib/adapters/sealed-message.js';
import { EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import {
  heldKey,
  type KmsClientLike,
  LOCAL_PROVIDER,
  localKeyName,
  rawAesUnwrap,
} from '../../lib/adapters/wrapping-keys.js';
import { keyIdFor } from '../../lib/domain/keys.js';

/** The sealer's settings (esdk-sealer.ts): what both sides are given. */
const MAX_BODY = 64 * 1024;
export const POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT;
const oracle = buildDecrypt({ commitmentPolicy: POLICY, maxEncryptedDataKeys: 1 });

export const rawKeyring = (key: Uint8Array, keyName = localKeyName(key)): KeyringNode =>
  new RawAesKeyringNode({
    keyNamespace: LOCAL_PROVIDER,
    keyName,
    unencryptedMasterKey: new Uint8Array(key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });

/** One wrapping key as each side holds it: the ESDK's keyring for the oracle, our unwrap for ours. */
export interface Keys {
  keyring: KeyringNode;
  unwrap: UnwrapDataKey;
}

/** A local key (named `keyName` in headers), both ways. */
export const localKeys = (key: Uint8Array, keyName = localKeyName(key)): Keys => {
  const unwrap = rawAesUnwrap(key, keyName);
  return { keyring: rawKeyring(key, keyName), unwrap: (dataKey, context) => unwrap(dataKey, context, []) };
};

/** A KMS key through `kms`, both ways. */
export const kmsKeys = (keyArn: string, kms: KmsClientLike): Keys => {
  const { unwrap } = heldKey({ kind: 'kms', keyArn }, () => kms);
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- KmsKeyringNode is a KeyringNode built by the ESDK's class factory
  const keyring: KeyringNode = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => kms });
  return { keyring, unwrap: (dataKey, context) => unwrap(dataKey, context, []) };
};

export interface Options {
  /** the oracle's policy (ours opens only the committing suite we seal with) */
  commitmentPolicy?: CommitmentPolicy;
  maxBodySize?: number;
}
type Outcome = { ok: true; plaintext: Buffer; context: Record<string, string> } | { ok: false };
export type Verdict = 'both accept' | 'both refuse' | 'ours refuses, oracle accepts' | 'ours accepts, oracle refuses';

async function theOracle(keyring: KeyringNode, bytes: Buffer, options: Options): Promise<Outcome> {
  const { decrypt } = options.commitmentPolicy
    ? buildDecrypt({ commitmentPolicy: options.commitmentPolicy, maxEncryptedDataKeys: 1 })
    : oracle;
  try {
    const { plaintext, messageHeader } = await decrypt(keyring, bytes, {
      maxBodySize: options.maxBodySize ?? MAX_BODY,
    });
    return { ok: true, plaintext, context: { ...messageHeader.encryptionContext } };
  } catch {
    return { ok: false };
  }
}

/** openSealedMessage on `bytes`, as EsdkOpener calls it. */
export async function ours(unwrap: UnwrapDataKey, bytes: Buffer, options: Options): Promise<Outcome> {
  try {
    const message = SealedMessage.parse(bytes);
    if (!message) return { ok: false };
    const plaintext = await openSealedMessage(message, unwrap, { maxBodySize: options.maxBodySize ?? MAX_BODY });
    return { ok: true, plaintext, context: { ...message.header.context } };
  } catch {
    return { ok: false };
  }
}

/** Every verdict of the run, by case, for the summary printed at the end. */
const tally = new Map<string, Map<Verdict, number>>();

/** Prints the case counts of the file's run for the record (the assertions are per case). */
export function printTallyAfterAll(): void {
  afterAll(() => {
    const lines = [...tally].map(
      ([label, counts]) => `${label.padEnd(48)} ${[...counts].map(([v, n]) => `${v}: ${n}`).join(', ')}`,
    );
    console.log(`openSealedMessage vs the ESDK's decrypt\n${lines.join('\n')}`);
  });
}

/**
 * Opens `bytes` both ways (each gets its own copy: neither may see the other's effects) and
 * asserts the rule: never ours alone accepts; both accepting means the same plaintext and context.
 */
export async function compare(label: string, keys: Keys, bytes: Buffer, options: Options = {}): Promise<Verdict> {
  const [theirs, mine] = [
    await theOracle(keys.keyring, Buffer.from(bytes), options),
    await ours(keys.unwrap, Buffer.from(bytes), options),
  ];
  const verdict: Verdict = theirs.ok
    ? mine.ok
      ? 'both accept'
      : 'ours refuses, oracle accepts'
    : mine.ok
      ? 'ours accepts, oracle refuses'
      : 'both refuse';
  const counts = tally.get(label) ?? new Map<Verdict, number>();
  counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
  tally.set(label, counts);
  expect(verdict, `${label}: ${bytes.toString('hex')}`).not.toBe('ours accepts, oracle refuses');
  if (theirs.ok && mine.ok) {
    expect(mine.plaintext.equals(theirs.plaintext), label).toBe(true);
    expect(mine.context, label).toEqual(theirs.context);
  }
  return verdict;
}

/** The verdicts of `compare` over every variant, counted. */
export async function compareAll(
  label: string,
  keys: Keys,
  variants: Iterable<Buffer>,
  options: Options = {},
): Promise<Partial<Record<Verdict, number>>> {
  const counts: Partial<Record<Verdict, number>> = {};
  for (const bytes of variants) {
    const verdict = await compare(label, keys, bytes, options);
    counts[verdict] = (counts[verdict] ?? 0) + 1;
  }
  return counts;
}

/** Every single-byte flip of `message` under each mask, position by position. */
export function flips(message: Buffer, masks: readonly number[]): Buffer[] {
  const all: Buffer[] = [];
  for (let at = 0; at < message.length; at++) {
    for (const mask of masks) {
      const copy = Buffer.from(message);
      copy[at] = (copy[at] ?? 0) ^ mask;
      all.push(copy);
    }
  }
  return all;
}

/** Every proper prefix of `message`, the empty one included. */
export function truncations(message: Buffer): Buffer[] {
  return Array.from({ length: message.length }, (_, length) => message.subarray(0, length));
}

export const secretOf = (random: () => number, length: number): string =>
  `sk-test-${Array.from({ length }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(random() * 36)]).join('')}`;

export const sealedBytes = async (sealer: EsdkSealer, secret: string, pool = 'stability'): Promise<Buffer> =>
  Buffer.from(await sealer.seal(secret, { pool, keyId: keyIdFor(secret) }), 'base64');

// One local key and sealer for most cases, as the local stack has.
export const KEY = randomBytes(32);
export const SEALER = new EsdkSealer({ current: { kind: 'local', key: KEY }, cache: false });
export const KEYS = localKeys(KEY);
export const SECRET = `sk-test-${'a1b2c3d4'.repeat(7)}`;

/** A message under KEYS in the sealer's suite, with small frames (the sealer's are single-frame). */
export async function multiFrame(plaintext: Buffer, frameLength: number): Promise<Buffer> {
  return encryptedWith(KEYS.keyring, plaintext, { pool: 'stability', keyId: 'multi-frame' }, frameLength);
}

/** A message in the sealer's suite under `keyring` (several keys: a multi-keyring) with `context`. */
export async function encryptedWith(
  keyring: KeyringNode,
  plaintext: Buffer,
  encryptionContext: Record<string, string>,
  frameLength?: number,
  maxEncryptedDataKeys = 1,
): Promise<Buffer> {
  const { encrypt } = buildEncrypt({ commitmentPolicy: POLICY, maxEncryptedDataKeys });
  const { result } = await encrypt(keyring, plaintext, {
    suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    encryptionContext,
    ...(frameLength === undefined ? {} : { frameLength }),
  });
  return result;
}

/** A non-committing (V1) message under KEYS: only a policy that forbids committing encryption writes these. */
export async function nonCommitting(suiteId: AlgorithmSuiteIdentifier): Promise<Buffer> {
  const { encrypt } = buildEncrypt({
    commitmentPolicy: CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    maxEncryptedDataKeys: 1,
  });
  const { result } = await encrypt(KEYS.keyring, Buffer.from(SECRET), {
    suiteId,
    encryptionContext: { pool: 'stability', keyId: 'v1' },
  });
  return result;
}
