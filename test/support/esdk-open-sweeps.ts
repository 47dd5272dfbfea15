/**
 * The sweeps of openSealedMessage against the ESDK's decrypt (./esdk-oracle.ts): many valid
 * messages, and single-byte flips and truncations of several kinds of message. The slow
 * project runs every case (test/slow/esdk-open.test.ts); the unit project a seeded sample
 * of each (test/unit/esdk-open.test.ts).
 */
import { AlgorithmSuiteIdentifier, CommitmentPolicy } from '@aws-crypto/material-management-node';
import { describe, expect, it } from 'vitest';
import { EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import {
  compareAll,
  flips,
  KEYS,
  kmsKeys,
  multiFrame,
  nonCommitting,
  SEALER,
  SECRET,
  sealedBytes,
  secretOf,
  truncations,
} from './esdk-oracle.js';
import { FakeKms, fakeKeyArn } from './fake-kms.js';
import { prng } from './prng.js';
import type { Sweep } from './sweep.js';

/** Registers the sweeps, each covering what `sweep` picks of its cases (every sweep its own seed). */
export function describeSweeps(sweep: Sweep): void {
  const { scope } = sweep;

  describe('openSealedMessage agrees with the ESDK decrypt on valid messages', () => {
    it(`opens ${scope} of 300 sealed secrets of 1 to 400 characters in 20 pools to the same plaintext and context as the ESDK`, async () => {
      // Prepare
      const random = prng(7);
      const secrets = Array.from({ length: 300 }, (_, i) => ({
        secret: secretOf(random, 1 + Math.floor(random() * 400)),
        pool: `pool-${i % 20}`,
      }));
      const messages = await Promise.all(
        sweep.pick(secrets, 1).map(({ secret, pool }) => sealedBytes(SEALER, secret, pool)),
      );
      // Act
      const counts = await compareAll('valid (raw AES)', KEYS, messages);
      // Assess
      expect(counts).toEqual({ 'both accept': messages.length });
    });

    it(`opens ${scope} of 20 secrets sealed through the KMS keyring (fake KMS) as the ESDK does, and refuses ${scope} single-byte flips of one`, async () => {
      // Prepare
      const kms = new FakeKms();
      const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms, cache: false });
      const keys = kmsKeys(fakeKeyArn(1), kms);
      const secrets = Array.from({ length: 20 }, (_, i) => `${SECRET}-${i}`);
      const messages = await Promise.all(sweep.pick(secrets, 3).map((secret) => sealedBytes(sealer, secret)));
      const flipped = sweep.pick(flips(messages[0] ?? Buffer.alloc(0), [0x01]), 2);
      // Act
      const valid = await compareAll('valid (KMS keyring)', keys, messages);
      const damaged = await compareAll('flip every byte (KMS keyring)', keys, flipped);
      // Assess
      expect(valid).toEqual({ 'both accept': messages.length });
      expect(damaged).toEqual({ 'both refuse': flipped.length });
    });
  });

  describe('openSealedMessage refuses damaged messages as the ESDK does', () => {
    it(`refuses ${scope} single-byte flips (3 masks) at each position of three sealed secrets`, async () => {
      // Prepare
      const messages = await Promise.all([
        sealedBytes(SEALER, 'sk-test-1'),
        sealedBytes(SEALER, SECRET),
        sealedBytes(SEALER, `${SECRET}${SECRET}`),
      ]);
      const variants = messages.map((m, i) => sweep.pick(flips(m, [0x01, 0x80, 0xff]), 10 + i));
      // Act
      const counts = await Promise.all(variants.map((v) => compareAll('flip every byte (raw AES)', KEYS, v)));
      // Assess
      expect(counts).toEqual(variants.map((v) => ({ 'both refuse': v.length })));
    });

    it(`refuses ${scope} single-byte flips of a multi-frame message (frame headers, sequence numbers, tags)`, async () => {
      // Prepare
      const variants = sweep.pick(flips(await multiFrame(Buffer.from(SECRET), 16), [0x01, 0xff]), 20);
      // Act
      const counts = await compareAll('flip every byte (multi-frame)', KEYS, variants);
      // Assess
      expect(counts).toEqual({ 'both refuse': variants.length });
    });

    it(`refuses ${scope} truncations of a sealed secret and of a multi-frame message`, async () => {
      // Prepare
      const single = await sealedBytes(SEALER, SECRET);
      const multi = await multiFrame(Buffer.from(SECRET), 16);
      const variants = sweep.pick([...truncations(single), ...truncations(multi)], 30);
      // Act
      const counts = await compareAll('every truncation', KEYS, variants);
      // Assess
      expect(counts).toEqual({ 'both refuse': variants.length });
    });
  });

  describe('non-committing (V1) messages, under an oracle policy that allows them', () => {
    it(`refuses V1 messages, which the ESDK then opens (ours opens only the committing suite), and ${scope} flips and truncations`, async () => {
      // Prepare
      const options = { commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT };
      const hkdf = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256);
      const noKdf = await nonCommitting(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16);
      const variants = sweep.pick([...flips(hkdf, [0x01]), ...truncations(hkdf)], 40);
      // Act
      const valid = await compareAll('V1 allowed: valid', KEYS, [hkdf, noKdf], options);
      const damaged = await compareAll('V1 allowed: flips and truncations', KEYS, variants, options);
      // Assess
      expect(valid).toEqual({ 'ours refuses, oracle accepts': 2 });
      expect(damaged).toEqual({ 'both refuse': variants.length });
    });
  });
}
