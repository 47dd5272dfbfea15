/**
 * openSealedMessage (lib/adapters/sealed-message.ts, the hand-written opener) against the
 * Encryption SDK's own decrypt as the oracle (test/support/esdk-oracle.ts), on the same bytes
 * with the same key material: valid messages, single-byte flips, truncations, appended bytes, a
 * wrong key, other suites, header fields the parser must refuse, KMS answers it must not trust.
 * Ours must never accept what the oracle refuses, and where both accept they must agree on the
 * plaintext and the context. Where ours refuses and the oracle accepts, the test names the case
 * (appended bytes, signed suites, V1 suites: all on purpose). The
 * sweeps run on a seeded sample here; the slow project runs every case
 * (test/slow/esdk-open.test.ts). No Java, no network.
 */
import { randomBytes } from 'node:crypto';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import { AlgorithmSuiteIdentifier, MultiKeyringNode } from '@aws-crypto/material-management-node';
import { describe, expect, it } from 'vitest';
import { SealedMessage, type UnwrapDataKey } from '../../lib/adapters/sealed-message.js';
import { EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { SecretUndecryptable } from '../../lib/domain/errors.js';
import { describeSweeps } from '../support/esdk-open-sweeps.js';
import {
  compare,
  compareAll,
  encryptedWith,
  KEY,
  KEYS,
  kmsKeys,
  localKeys,
  multiFrame,
  nonCommitting,
  ours,
  POLICY,
  printTallyAfterAll,
  SEALER,
  SECRET,
  sealedBytes,
} from '../support/esdk-oracle.js';
import { FakeKms, fakeKeyArn } from '../support/fake-kms.js';
import { sampled } from '../support/sweep.js';

/** Where the parsed header of `message` ends (before its auth tag). */
function headerEndOf(message: Buffer): number {
  const parsed = SealedMessage.parse(message);
  if (!parsed) throw new Error('the message should parse');
  return parsed.headerEnd;
}

/** A copy of `message` with `bytes` written at `at`. */
function edited(message: Buffer, at: number, bytes: number[]): Buffer {
  const copy = Buffer.from(message);
  copy.set(bytes, at);
  return copy;
}

printTallyAfterAll();
describeSweeps(sampled(16));

describe('openSealedMessage agrees with the ESDK decrypt on multi-frame messages', () => {
  it('opens multi-frame messages (frames of 16 and 1 bytes, and an empty final frame) like the ESDK', async () => {
    // Prepare
    const messages = [
      await multiFrame(Buffer.from(SECRET), 16),
      await multiFrame(Buffer.from(`${SECRET}!`), 16),
      await multiFrame(Buffer.from('sk-test-x'), 1),
    ];
    // Act
    const counts = await compareAll('valid multi-frame', KEYS, messages);
    // Assess
    expect(counts).toEqual({ 'both accept': 3 });
  });
});

describe('openSealedMessage refuses a damaged message as the ESDK does', () => {
  it('refuses a message sealed under another key, and under another key with the same name, as the ESDK does', async () => {
    // Prepare
    const otherKey = randomBytes(32);
    const other = await sealedBytes(
      new EsdkSealer({ current: { kind: 'local', key: otherKey }, cache: false }),
      SECRET,
    );
    // Act
    const underOtherName = await compare('another wrapping key', KEYS, other);
    const underSameName = await compare('another wrapping key', localKeys(KEY, localKeyName(otherKey)), other);
    // Assess
    expect([underOtherName, underSameName]).toEqual(['both refuse', 'both refuse']);
  });

  it('refuses a frame larger than maxBodySize, as the ESDK does', async () => {
    // Prepare
    const message = await multiFrame(Buffer.from(SECRET), 32);
    // Act
    const verdicts = [
      await compare('maxBodySize', KEYS, message, { maxBodySize: 31 }),
      await compare('maxBodySize', KEYS, message, { maxBodySize: 32 }),
    ];
    // Assess
    expect(verdicts).toEqual(['both refuse', 'both accept']);
  });

  it('refuses a message with two frames swapped (sequence numbers out of order), as the ESDK does', async () => {
    // Prepare: frames of 16 bytes; each non-final frame is sequence (4) + IV (12) + content (16) + tag (16).
    const message = await multiFrame(Buffer.from(SECRET), 16);
    const bodyStart = headerEndOf(message) + 16;
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
    const verdict = await compare('frames swapped', KEYS, swapped);
    // Assess
    expect(verdict).toBe('both refuse');
  });
});

describe('where openSealedMessage is stricter than the ESDK decrypt', () => {
  it('refuses bytes appended after the final frame (1, 16, 100), which the ESDK ignores for an unsigned suite', async () => {
    // Prepare
    const message = await sealedBytes(SEALER, SECRET);
    const appended = [1, 16, 100].map((n) => Buffer.concat([message, randomBytes(n)]));
    // Act
    const counts = await compareAll('appended bytes', KEYS, appended);
    // Assess
    expect(counts).toEqual({ 'ours refuses, oracle accepts': 3 });
  });

  it('refuses a signed-suite message (ECDSA P-384), which the ESDK decrypt verifies and accepts: we verify no signatures', async () => {
    // Prepare
    const { encrypt } = buildEncrypt({ commitmentPolicy: POLICY, maxEncryptedDataKeys: 1 });
    const { result } = await encrypt(KEYS.keyring, Buffer.from(SECRET), {
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
      encryptionContext: { pool: 'stability', keyId: 'signed' },
    });
    // Act
    const verdict = await compare('signed suite', KEYS, result);
    // Assess
    expect(verdict).toBe('ours refuses, oracle accepts');
  });
});

describe('non-committing (V1) messages', () => {
  it('refuses a non-committing message under the sealer policy, as the ESDK does', async () => {
    // Prepare
    const message = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256);
    // Act
    const verdict = await compare('non-committing, REQUIRE_ENCRYPT_REQUIRE_DECRYPT', KEYS, message);
    // Assess
    expect(verdict).toBe('both refuse');
  });
});

describe('openSealedMessage disposes of the data key', () => {
  it('zeroes the data key after an open that succeeds and after one whose body fails to authenticate', async () => {
    // Prepare: an unwrap that keeps every data key it hands out
    const handedOut: Buffer[] = [];
    const watching: UnwrapDataKey = async (dataKey, context) => {
      const key = await KEYS.unwrap(dataKey, context);
      handedOut.push(key);
      return key;
    };
    const message = await sealedBytes(SEALER, SECRET);
    const tampered = Buffer.from(message);
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1;
    // Act
    const opened = await ours(watching, message, {});
    const refused = await ours(watching, tampered, {});
    // Assess
    expect([opened.ok, refused.ok]).toEqual([true, false]);
    expect(handedOut.map((key) => key.length)).toEqual([32, 32]);
    expect(handedOut.map((key) => key.every((byte) => byte === 0))).toEqual([true, true]);
  });
});

describe('the header fields the hand-written parser reads, refused where the ESDK refuses them', () => {
  it('refuses a non-framed content type (0x01) and a frame length of 0 in a sealed header', async () => {
    // Prepare: the header ends with content type (1), frame length (4), commitment (32)
    const message = await sealedBytes(SEALER, SECRET);
    const contentType = headerEndOf(message) - 32 - 4 - 1;
    const nonFramed = edited(message, contentType, [0x01]);
    const noFrameLength = edited(message, contentType + 1, [0, 0, 0, 0]);
    // Act
    const verdicts = [
      await compare('non-framed content type', KEYS, nonFramed),
      await compare('frame length 0', KEYS, noFrameLength),
    ];
    // Assess
    expect(verdicts).toEqual(['both refuse', 'both refuse']);
    expect([SealedMessage.parse(nonFramed), SealedMessage.parse(noFrameLength)]).toEqual([false, false]);
  });

  it('refuses a message with no encrypted data key, and one with two (a multi-keyring), as the ESDK does', async () => {
    // Prepare: the data key count follows the context section; the sealer's context is {keyId, pool}
    const message = await sealedBytes(SEALER, SECRET);
    const contextLength = message.readUInt16BE(1 + 2 + 32);
    const noKey = edited(message, 1 + 2 + 32 + 2 + contextLength, [0, 0]);
    const other = localKeys(randomBytes(32));
    const twoKeys = await encryptedWith(
      new MultiKeyringNode({ generator: KEYS.keyring, children: [other.keyring] }),
      Buffer.from(SECRET),
      { pool: 'stability', keyId: 'two-keys' },
      undefined,
      2,
    );
    // Act
    const verdicts = [await compare('no data key', KEYS, noKey), await compare('two data keys', KEYS, twoKeys)];
    // Assess
    expect(verdicts).toEqual(['both refuse', 'both refuse']);
    expect([SealedMessage.parse(noKey), SealedMessage.parse(twoKeys)]).toEqual([false, false]);
  });

  it('refuses a context with a key twice, out of order, or not UTF-8, as the ESDK does', async () => {
    // Prepare: context {k1: v, k2: w}; the second key's last byte is edited to k1 (twice) and k0
    // (out of order), its value to 0xff (no UTF-8)
    const message = await encryptedWith(KEYS.keyring, Buffer.from(SECRET), { k1: 'v', k2: 'w' });
    const second = message.indexOf(Buffer.from('k2'), 1 + 2 + 32) + 1; // after the version, suite and message id
    const variants = [
      edited(message, second, [0x31]),
      edited(message, second, [0x30]),
      edited(message, second + 1 + 2, [0xff]),
    ];
    // Act
    const verdicts = [
      await compare('context key twice', KEYS, variants[0] ?? message),
      await compare('context keys out of order', KEYS, variants[1] ?? message),
      await compare('context not UTF-8', KEYS, variants[2] ?? message),
    ];
    // Assess
    expect(verdicts).toEqual(['both refuse', 'both refuse', 'both refuse']);
    expect(variants.map((variant) => SealedMessage.parse(variant))).toEqual([false, false, false]);
  });

  it('opens a context whose byte order and localeCompare order differ ({a, B}) as the ESDK does: the header in byte order, the raw AES data key authenticated in localeCompare order', async () => {
    // Prepare
    const message = await encryptedWith(KEYS.keyring, Buffer.from(SECRET), { a: '1', B: '2' });
    // Act
    const verdict = await compare('context orders differ', KEYS, message);
    // Assess
    expect(message.indexOf(Buffer.from('B'), 1 + 2 + 32)).toBeLessThan(message.indexOf(Buffer.from('a'), 1 + 2 + 32));
    expect(verdict).toBe('both accept');
  });
});

describe('a KMS answer is checked as the ESDK checks it', () => {
  /** A fake KMS whose Decrypt answers are edited by `edit`. */
  class EditingKms extends FakeKms {
    constructor(readonly edit: (answer: { KeyId: string; Plaintext: Uint8Array }) => object) {
      super();
    }
    override async decrypt(input: Parameters<FakeKms['decrypt']>[0]) {
      return this.edit(await super.decrypt(input)) as Awaited<ReturnType<FakeKms['decrypt']>>;
    }
  }

  it.each([
    ['names another key', (a: { KeyId: string; Plaintext: Uint8Array }) => ({ ...a, KeyId: fakeKeyArn(2) })],
    ['names no key', (a: { KeyId: string; Plaintext: Uint8Array }) => ({ Plaintext: a.Plaintext })],
    [
      'has a 31-byte plaintext',
      (a: { KeyId: string; Plaintext: Uint8Array }) => ({ ...a, Plaintext: a.Plaintext.slice(1) }),
    ],
    [
      'has a 33-byte plaintext',
      (a: { KeyId: string; Plaintext: Uint8Array }) => ({ ...a, Plaintext: new Uint8Array([...a.Plaintext, 0]) }),
    ],
    ['has no plaintext', (a: { KeyId: string; Plaintext: Uint8Array }) => ({ KeyId: a.KeyId })],
  ])('refuses a message whose Decrypt answer %s, as the ESDK does', async (_, edit) => {
    // Prepare
    const kms = new EditingKms(edit);
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms, cache: false });
    const message = await sealedBytes(sealer, SECRET);
    // Act
    const verdict = await compare('edited KMS answer', kmsKeys(fakeKeyArn(1), kms), message);
    // Assess
    expect(verdict).toBe('both refuse');
    expect(kms.calls.decrypt).toBe(2);
  });
});

describe('EsdkSealer opens with openSealedMessage', () => {
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
