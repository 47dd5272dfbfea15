/**
 * openMessage (lib/adapters/esdk-open.ts) against the Encryption SDK's own decrypt as the
 * oracle, on the same bytes with the same keyring: valid messages, every single-byte flip,
 * every truncation, appended bytes, a wrong key, other suites. Ours must never accept what the
 * oracle refuses, and where both accept they must agree on the plaintext and the context.
 * Where ours refuses and the oracle accepts, the test names the case (appended bytes, signed
 * suites: both on purpose). No Java, no network.
 */
import { randomBytes } from 'node:crypto';
import { buildDecrypt } from '@aws-crypto/decrypt-node';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import { KmsKeyringNode } from '@aws-crypto/kms-keyring-node';
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  KeyringNode,
  type NodeDecryptionMaterial,
  type NodeEncryptionMaterial,
} from '@aws-crypto/material-management-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { afterAll, describe, expect, it } from 'vitest';
import { openMessage, ParsedMessage } from '../../lib/adapters/esdk-open.js';
import { EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { LOCAL_PROVIDER, localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { SecretUndecryptable } from '../../lib/domain/errors.js';
import { FakeKms, fakeKeyArn } from '../support/fake-kms.js';
import { prng } from '../support/prng.js';

/** The sealer's settings (esdk-sealer.ts): what both sides are given. */
const MAX_BODY = 64 * 1024;
const POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT;
const oracle = buildDecrypt({ commitmentPolicy: POLICY, maxEncryptedDataKeys: 1 });

const rawKeyring = (key: Uint8Array, keyName = localKeyName(key)): KeyringNode =>
  new RawAesKeyringNode({
    keyNamespace: LOCAL_PROVIDER,
    keyName,
    unencryptedMasterKey: new Uint8Array(key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });

interface Options {
  commitmentPolicy?: CommitmentPolicy;
  maxBodySize?: number;
}
type Outcome = { ok: true; plaintext: Buffer; context: Record<string, string> } | { ok: false };
type Verdict = 'both accept' | 'both refuse' | 'ours refuses, oracle accepts' | 'ours accepts, oracle refuses';

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

async function ours(keyring: KeyringNode, bytes: Buffer, options: Options): Promise<Outcome> {
  try {
    const message = ParsedMessage.parse(bytes, { maxEncryptedDataKeys: 1 });
    if (!message) return { ok: false };
    const { plaintext, messageHeader } = await openMessage(keyring, message, {
      commitmentPolicy: options.commitmentPolicy ?? POLICY,
      maxBodySize: options.maxBodySize ?? MAX_BODY,
    });
    return { ok: true, plaintext, context: { ...messageHeader.encryptionContext } };
  } catch {
    return { ok: false };
  }
}

/** Every verdict of the run, by case, for the summary printed at the end. */
const tally = new Map<string, Map<Verdict, number>>();

/**
 * Opens `bytes` both ways (each gets its own copy: neither may see the other's effects) and
 * asserts the rule: never ours alone accepts; both accepting means the same plaintext and context.
 */
async function compare(label: string, keyring: KeyringNode, bytes: Buffer, options: Options = {}): Promise<Verdict> {
  const [theirs, mine] = [
    await theOracle(keyring, Buffer.from(bytes), options),
    await ours(keyring, Buffer.from(bytes), options),
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
async function compareAll(
  label: string,
  keyring: KeyringNode,
  variants: Iterable<Buffer>,
  options: Options = {},
): Promise<Partial<Record<Verdict, number>>> {
  const counts: Partial<Record<Verdict, number>> = {};
  for (const bytes of variants) {
    const verdict = await compare(label, keyring, bytes, options);
    counts[verdict] = (counts[verdict] ?? 0) + 1;
  }
  return counts;
}

function* flips(message: Buffer, masks: readonly number[]): Generator<Buffer> {
  for (let at = 0; at < message.length; at++) {
    for (const mask of masks) {
      const copy = Buffer.from(message);
      copy[at] = (copy[at] ?? 0) ^ mask;
      yield copy;
    }
  }
}

function* truncations(message: Buffer): Generator<Buffer> {
  for (let length = 0; length < message.length; length++) yield message.subarray(0, length);
}

const secretOf = (random: () => number, length: number): string =>
  `sk-test-${Array.from({ length }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(random() * 36)]).join('')}`;

const sealedBytes = async (sealer: EsdkSealer, secret: string, pool = 'stability'): Promise<Buffer> =>
  Buffer.from(await sealer.seal(secret, { pool, keyId: keyIdFor(secret) }), 'base64');

// One local key and sealer for most cases, as the local stack has.
const KEY = randomBytes(32);
const SEALER = new EsdkSealer({ current: { kind: 'local', key: KEY }, cache: false });
const KEYRING = rawKeyring(KEY);
const SECRET = `sk-test-${'a1b2c3d4'.repeat(7)}`;

/** A message under KEYRING in the sealer's suite, with small frames (the sealer's are single-frame). */
async function multiFrame(plaintext: Buffer, frameLength: number): Promise<Buffer> {
  const { encrypt } = buildEncrypt({ commitmentPolicy: POLICY, maxEncryptedDataKeys: 1 });
  const { result } = await encrypt(KEYRING, plaintext, {
    suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
    encryptionContext: { pool: 'stability', keyId: 'multi-frame' },
    frameLength,
  });
  return result;
}

afterAll(() => {
  // The case counts for the record (the assertions are above, per case).
  const lines = [...tally].map(
    ([label, counts]) => `${label.padEnd(48)} ${[...counts].map(([v, n]) => `${v}: ${n}`).join(', ')}`,
  );
  console.log(`openMessage vs the ESDK's decrypt\n${lines.join('\n')}`);
});

describe('openMessage agrees with the ESDK decrypt on valid messages', () => {
  it('opens 300 sealed secrets of 1 to 400 characters in 20 pools to the same plaintext and context as the ESDK', async () => {
    // Prepare
    const random = prng(7);
    const messages = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        sealedBytes(SEALER, secretOf(random, 1 + Math.floor(random() * 400)), `pool-${i % 20}`),
      ),
    );
    // Act
    const counts = await compareAll('valid (raw AES)', KEYRING, messages);
    // Assess
    expect(counts).toEqual({ 'both accept': 300 });
  });

  it('opens a secret sealed through the KMS keyring (fake KMS) to the same plaintext and context as the ESDK', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms, cache: false });
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- KmsKeyringNode is a KeyringNode built by the ESDK's class factory
    const keyring: KeyringNode = new KmsKeyringNode({ generatorKeyId: fakeKeyArn(1), clientProvider: () => kms });
    const messages = await Promise.all(Array.from({ length: 20 }, (_, i) => sealedBytes(sealer, `${SECRET}-${i}`)));
    // Act
    const counts = await compareAll('valid (KMS keyring)', keyring, messages);
    const flipped = await compareAll(
      'flip every byte (KMS keyring)',
      keyring,
      flips(messages[0] ?? Buffer.alloc(0), [0x01]),
    );
    // Assess
    expect(counts).toEqual({ 'both accept': 20 });
    expect(flipped).toEqual({ 'both refuse': messages[0]?.length });
  });

  it('opens multi-frame messages (frames of 16 and 1 bytes, and an empty final frame) like the ESDK', async () => {
    // Prepare
    const messages = [
      await multiFrame(Buffer.from(SECRET), 16),
      await multiFrame(Buffer.from(`${SECRET}!`), 16),
      await multiFrame(Buffer.from('sk-test-x'), 1),
    ];
    // Act
    const counts = await compareAll('valid multi-frame', KEYRING, messages);
    // Assess
    expect(counts).toEqual({ 'both accept': 3 });
  });
});

describe('openMessage refuses every damaged message the ESDK refuses', () => {
  it('refuses every single-byte flip (3 masks) at every position of three sealed secrets, as the ESDK does', async () => {
    // Prepare
    const messages = await Promise.all([
      sealedBytes(SEALER, 'sk-test-1'),
      sealedBytes(SEALER, SECRET),
      sealedBytes(SEALER, `${SECRET}${SECRET}`),
    ]);
    // Act
    const counts = await Promise.all(
      messages.map((m) => compareAll('flip every byte (raw AES)', KEYRING, flips(m, [0x01, 0x80, 0xff]))),
    );
    // Assess
    expect(counts).toEqual(messages.map((m) => ({ 'both refuse': m.length * 3 })));
  });

  it('refuses every single-byte flip of a multi-frame message (frame headers, sequence numbers, tags), as the ESDK does', async () => {
    // Prepare
    const message = await multiFrame(Buffer.from(SECRET), 16);
    // Act
    const counts = await compareAll('flip every byte (multi-frame)', KEYRING, flips(message, [0x01, 0xff]));
    // Assess
    expect(counts).toEqual({ 'both refuse': message.length * 2 });
  });

  it('refuses every truncation of a sealed secret and of a multi-frame message, as the ESDK does', async () => {
    // Prepare
    const single = await sealedBytes(SEALER, SECRET);
    const multi = await multiFrame(Buffer.from(SECRET), 16);
    // Act
    const counts = await compareAll('every truncation', KEYRING, [...truncations(single), ...truncations(multi)]);
    // Assess
    expect(counts).toEqual({ 'both refuse': single.length + multi.length });
  });

  it('refuses a message sealed under another key, and under another key with the same name, as the ESDK does', async () => {
    // Prepare
    const otherKey = randomBytes(32);
    const other = await sealedBytes(
      new EsdkSealer({ current: { kind: 'local', key: otherKey }, cache: false }),
      SECRET,
    );
    // Act
    const underOtherName = await compare('another wrapping key', KEYRING, other);
    const underSameName = await compare('another wrapping key', rawKeyring(KEY, localKeyName(otherKey)), other);
    // Assess
    expect([underOtherName, underSameName]).toEqual(['both refuse', 'both refuse']);
  });

  it('refuses a frame larger than maxBodySize, as the ESDK does', async () => {
    // Prepare
    const message = await multiFrame(Buffer.from(SECRET), 32);
    // Act
    const verdicts = [
      await compare('maxBodySize', KEYRING, message, { maxBodySize: 31 }),
      await compare('maxBodySize', KEYRING, message, { maxBodySize: 32 }),
    ];
    // Assess
    expect(verdicts).toEqual(['both refuse', 'both accept']);
  });

  it('refuses a message with two frames swapped (sequence numbers out of order), as the ESDK does', async () => {
    // Prepare: frames of 16 bytes; each non-final frame is sequence (4) + IV (12) + content (16) + tag (16).
    const message = await multiFrame(Buffer.from(SECRET), 16);
    const parsed = ParsedMessage.parse(message, { maxEncryptedDataKeys: 1 });
    if (!parsed) throw new Error('the message should parse');
    const bodyStart = parsed.headerInfo.rawHeader.byteLength + parsed.headerInfo.headerAuth.headerAuthLength;
    const frame = 4 + 12 + 16 + 16;
    const first = message.subarray(bodyStart, bodyStart + frame);
    const second = message.subarray(bodyStart + frame, bodyStart + 2 * frame);
    const swapped = Buffer.concat([
      message.subarray(0, bodyStart),
      second,
      first,
      message.subarray(bodyStart + 2 * frame),
    ]);
    // Act
    const verdict = await compare('frames swapped', KEYRING, swapped);
    // Assess
    expect(verdict).toBe('both refuse');
  });
});

describe('where openMessage is stricter than the ESDK decrypt', () => {
  it('refuses bytes appended after the final frame (1, 16, 100), which the ESDK ignores for an unsigned suite', async () => {
    // Prepare
    const message = await sealedBytes(SEALER, SECRET);
    const appended = [1, 16, 100].map((n) => Buffer.concat([message, randomBytes(n)]));
    // Act
    const counts = await compareAll('appended bytes', KEYRING, appended);
    // Assess
    expect(counts).toEqual({ 'ours refuses, oracle accepts': 3 });
  });

  it('refuses a signed-suite message (ECDSA P-384), which the ESDK decrypt verifies and accepts: we verify no signatures', async () => {
    // Prepare
    const { encrypt } = buildEncrypt({ commitmentPolicy: POLICY, maxEncryptedDataKeys: 1 });
    const { result } = await encrypt(KEYRING, Buffer.from(SECRET), {
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
      encryptionContext: { pool: 'stability', keyId: 'signed' },
    });
    // Act
    const verdict = await compare('signed suite', KEYRING, result);
    // Assess
    expect(verdict).toBe('ours refuses, oracle accepts');
  });
});

describe('non-committing (V1) messages', () => {
  async function nonCommitting(suiteId: AlgorithmSuiteIdentifier): Promise<Buffer> {
    // Only a policy that forbids committing encryption writes these (REQUIRE_* refuses to).
    const { encrypt } = buildEncrypt({
      commitmentPolicy: CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
      maxEncryptedDataKeys: 1,
    });
    const { result } = await encrypt(KEYRING, Buffer.from(SECRET), {
      suiteId,
      encryptionContext: { pool: 'stability', keyId: 'v1' },
    });
    return result;
  }

  it('refuses a non-committing message under the sealer policy, as the ESDK does', async () => {
    // Prepare
    const message = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256);
    // Act
    const verdict = await compare('non-committing, REQUIRE_ENCRYPT_REQUIRE_DECRYPT', KEYRING, message);
    // Assess
    expect(verdict).toBe('both refuse');
  });

  it('under a policy that allows them, opens V1 messages like the ESDK and refuses their every flip and truncation', async () => {
    // Prepare
    const options = { commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT };
    const hkdf = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256);
    const noKdf = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16);
    // Act
    const valid = await compareAll('V1 allowed: valid', KEYRING, [hkdf, noKdf], options);
    const damaged = await compareAll(
      'V1 allowed: flips and truncations',
      KEYRING,
      [...flips(hkdf, [0x01]), ...truncations(hkdf)],
      options,
    );
    // Assess
    expect(valid).toEqual({ 'both accept': 2 });
    expect(damaged).toEqual({ 'both refuse': hkdf.length * 2 });
  });
});

describe('openMessage disposes of the data key', () => {
  /** Delegates to a raw AES keyring and keeps the decryption materials it was handed. */
  class Watching extends KeyringNode {
    readonly seen: NodeDecryptionMaterial[] = [];
    constructor(readonly inner: KeyringNode) {
      super();
    }
    _onEncrypt(material: NodeEncryptionMaterial): Promise<NodeEncryptionMaterial> {
      return this.inner.onEncrypt(material);
    }
    async _onDecrypt(
      material: NodeDecryptionMaterial,
      edks: Parameters<KeyringNode['onDecrypt']>[1],
    ): Promise<NodeDecryptionMaterial> {
      this.seen.push(material);
      return this.inner.onDecrypt(material, edks);
    }
  }

  it('zeroes the data key after an open that succeeds and after one whose body fails to authenticate', async () => {
    // Prepare
    const keyring = new Watching(KEYRING);
    const message = await sealedBytes(SEALER, SECRET);
    const tampered = Buffer.from(message);
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1;
    // Act
    const opened = await ours(keyring, message, {});
    const refused = await ours(keyring, tampered, {});
    // Assess
    expect([opened.ok, refused.ok]).toEqual([true, false]);
    expect(keyring.seen).toHaveLength(2);
    expect(keyring.seen.map((m) => m.hasUnencryptedDataKey)).toEqual([false, false]);
  });
});

describe('EsdkSealer opens with openMessage', () => {
  it('refuses a sealed secret with bytes appended after its final frame (authentication-failed), which the ESDK decrypt opened', async () => {
    // Prepare
    const context = { pool: 'stability', keyId: keyIdFor(SECRET) };
    const sealed = await SEALER.seal(SECRET, context);
    const appended = Buffer.concat([Buffer.from(sealed, 'base64'), Buffer.from([0])]).toString('base64');
    // Act
    const error = await SEALER.open(appended, context).catch((e: unknown) => e);
    // Assess
    expect(await SEALER.open(sealed, context)).toBe(SECRET);
    expect(error).toBeInstanceOf(SecretUndecryptable);
    expect(error).toMatchObject({ reason: 'authentication-failed' });
  });
});
