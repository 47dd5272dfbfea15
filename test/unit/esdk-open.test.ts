/**
 * openMessage (lib/adapters/esdk-open.ts) against the Encryption SDK's own decrypt as the
 * oracle (test/support/esdk-oracle.ts), on the same bytes with the same keyring: valid
 * messages, single-byte flips, truncations, appended bytes, a wrong key, other suites. Ours
 * must never accept what the oracle refuses, and where both accept they must agree on the
 * plaintext and the context. Where ours refuses and the oracle accepts, the test names the case
 * (appended bytes, signed suites: both on purpose). The sweeps run on a seeded sample here; the
 * slow project runs every case (test/slow/esdk-open.test.ts). No Java, no network.
 */
import { randomBytes } from 'node:crypto';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import {
  AlgorithmSuiteIdentifier,
  KeyringNode,
  type NodeDecryptionMaterial,
  type NodeEncryptionMaterial,
} from '@aws-crypto/material-management-node';
import { describe, expect, it } from 'vitest';
import { ParsedMessage } from '../../lib/adapters/esdk-open.js';
import { EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { SecretUndecryptable } from '../../lib/domain/errors.js';
import { describeSweeps } from '../support/esdk-open-sweeps.js';
import {
  compare,
  compareAll,
  KEY,
  KEYRING,
  multiFrame,
  nonCommitting,
  ours,
  POLICY,
  printTallyAfterAll,
  rawKeyring,
  SEALER,
  SECRET,
  sealedBytes,
} from '../support/esdk-oracle.js';
import { sampled } from '../support/sweep.js';

printTallyAfterAll();
describeSweeps(sampled(16));

describe('openMessage agrees with the ESDK decrypt on multi-frame messages', () => {
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

describe('openMessage refuses a damaged message as the ESDK does', () => {
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
  it('refuses a non-committing message under the sealer policy, as the ESDK does', async () => {
    // Prepare
    const message = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256);
    // Act
    const verdict = await compare('non-committing, REQUIRE_ENCRYPT_REQUIRE_DECRYPT', KEYRING, message);
    // Assess
    expect(verdict).toBe('both refuse');
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
