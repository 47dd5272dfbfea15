/**
 * Sealed secrets (lib/adapters/esdk-sealer.ts): binding to the item, tamper and wrong-key
 * failures, the opened-secret cache and its bounds, rotation detection, and the local key
 * file. KMS is the fake in test/support/fake-kms.ts, which enforces KMS's context rule and
 * counts calls. No Java, no network.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EsdkSealer, inspectSealed } from '../../lib/adapters/esdk-sealer.js';
import { shownRef, wrappingKeyRef, type WrappingKeySpec } from '../../lib/adapters/wrapping-keys.js';
import {
  LOCAL_SEALING_KEY_FILE,
  loadOrCreateLocalSealingKey,
  readLocalSealingKey,
  UnsafeSealingKeyFile,
} from '../../lib/adapters/local-sealing-key.js';
import { cacheKeyFor, OpenedSecretCache } from '../../lib/adapters/opened-secret-cache.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import type { SealContext } from '../../lib/domain/types.js';
import { SealingMisconfigured, SealingUnavailable, SecretUndecryptable } from '../../lib/domain/errors.js';
import { FakeKms, fakeKeyArn } from '../support/fake-kms.js';

const SECRET = `sk-test-${'a1b2c3d4'.repeat(7)}`; // 64 characters, like a provider key
const OTHER_SECRET = `sk-test-${'z9y8x7w6'.repeat(7)}`;
const contextFor = (secret: string, pool = 'stability'): SealContext => ({ pool, keyId: keyIdFor(secret) });
const CONTEXT = contextFor(SECRET);
const OTHER_CONTEXT = contextFor(OTHER_SECRET);

const localKey = (): WrappingKeySpec => ({ kind: 'local', key: randomBytes(32) });

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A copy of `sealed` with byte `index` (negative: from the end) flipped. */
function flipByte(sealed: string, index: number): string {
  const bytes = Buffer.from(sealed, 'base64');
  const at = index < 0 ? bytes.length + index : index;
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  return bytes.toString('base64');
}

/** An offset inside the KMS ciphertext blob of a message's one encrypted data key. */
function inBlob(sealed: string, keyArn: string): number {
  return Buffer.from(sealed, 'base64').indexOf(Buffer.from(keyArn)) + keyArn.length + 2 + 10;
}

describe('sealing binds a secret to its item', () => {
  it('a sealed secret opens to the same secret, and its header names the item and the wrapping key', async () => {
    // Prepare
    const key = localKey();
    const sealer = new EsdkSealer({ current: key });
    // Act
    const sealed = await sealer.seal(SECRET, CONTEXT);
    const opened = await sealer.open(sealed, CONTEXT);
    // Assess
    expect(opened).toBe(SECRET);
    expect(sealed).not.toContain(SECRET);
    expect(inspectSealed(sealed)).toEqual({
      sealed: true,
      suiteId: 0x0478,
      context: { pool: 'stability', keyId: CONTEXT.keyId },
      wrappedBy: [wrappingKeyRef(key)],
    });
  });

  it('sealing the same secret twice gives two different ciphertexts (a fresh data key each time)', async () => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    // Act
    const [a, b] = await Promise.all([sealer.seal(SECRET, CONTEXT), sealer.seal(SECRET, CONTEXT)]);
    // Assess
    expect(a).not.toBe(b);
  });

  it.each([
    ['another key id', { pool: 'stability', keyId: OTHER_CONTEXT.keyId }],
    ['another pool', { pool: 'other-pool', keyId: CONTEXT.keyId }],
    ['both', { pool: 'other-pool', keyId: OTHER_CONTEXT.keyId }],
  ])('a ciphertext copied onto an item with %s does not open', async (_, elsewhere) => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    const error = await rejection(sealer.open(sealed, elsewhere));
    // Assess
    expect(error).toBeInstanceOf(SecretUndecryptable);
    expect(error).toMatchObject({ reason: 'context-mismatch', context: elsewhere, code: 'secret_undecryptable' });
  });

  it('swapping two items ciphertexts makes both undecryptable', async () => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    const a = await sealer.seal(SECRET, CONTEXT);
    const b = await sealer.seal(OTHER_SECRET, OTHER_CONTEXT);
    // Act
    const errors = await Promise.all([rejection(sealer.open(b, CONTEXT)), rejection(sealer.open(a, OTHER_CONTEXT))]);
    // Assess
    for (const error of errors) expect(error).toBeInstanceOf(SecretUndecryptable);
  });

  it('a cached secret is never served to another item holding the same ciphertext', async () => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    await sealer.open(sealed, CONTEXT);
    // Act
    const error = await rejection(sealer.open(sealed, OTHER_CONTEXT));
    // Assess
    expect(error).toMatchObject({ reason: 'context-mismatch' });
  });
});

describe('what does not open', () => {
  it('a secret sealed under another local key is a configuration fault (SealingMisconfigured) naming both keys by fingerprint and file, found without trying the key', async () => {
    // Prepare
    const theirs = localKey();
    const sealed = await new EsdkSealer({ current: theirs }).seal(SECRET, CONTEXT);
    const ours = { kind: 'local', key: randomBytes(32), label: 'key file /data/sealing-key' } as const;
    const sealer = new EsdkSealer({ current: ours });
    // Act
    const error = await rejection(sealer.open(sealed, CONTEXT));
    // Assess
    expect(error).toBeInstanceOf(SealingMisconfigured);
    expect(error).not.toBeInstanceOf(SecretUndecryptable);
    const { key: theirName } = wrappingKeyRef(theirs);
    const { key: ourName } = wrappingKeyRef(ours);
    expect(error).toMatchObject({
      code: 'sealing_misconfigured',
      subject: CONTEXT,
      sealedUnder: [theirName],
      held: [`key file /data/sealing-key (${ourName})`],
    });
    expect((error as Error).message).toContain(`sealed under ${theirName}, which this process does not hold`);
    expect((error as Error).message).not.toContain('\n');
    expect(sealer.stats().unwraps).toBe(0);
  });

  it('a secret sealed under a KMS key ARN the sealer does not hold (a previous ARN dropped) is SealingMisconfigured, with no KMS call', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealed = await new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms }).seal(SECRET, CONTEXT);
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(2) }, kms });
    const calls = kms.calls.decrypt;
    // Act
    const error = await rejection(sealer.open(sealed, CONTEXT));
    // Assess
    expect(error).toBeInstanceOf(SealingMisconfigured);
    expect(error).toMatchObject({ sealedUnder: [fakeKeyArn(1)], held: [fakeKeyArn(2)] });
    expect(kms.calls.decrypt).toBe(calls);
  });

  it('a header naming a wrapping key in text that is no key name is shown by a placeholder, never as stored', () => {
    // Act / Assess
    expect(shownRef({ provider: 'aws-kms', key: 'sk-test-not-an-arn-0123456789' })).toBe(
      '(a KMS key that is not a key ARN)',
    );
    expect(shownRef({ provider: 'keypool-local', key: '(unrecognised)' })).toBe('(an unrecognised local key)');
    expect(shownRef({ provider: 'raw-other', key: 'anything' })).toBe('(a key of an unknown provider)');
    expect(shownRef({ provider: 'aws-kms', key: fakeKeyArn(3) })).toBe(fakeKeyArn(3));
  });

  it.each([
    ['the last byte of the body (the frame tag)', -1],
    ['a byte in the middle of the message', 180],
    ['a byte of the header (the message id)', 5],
  ])('a tampered ciphertext (%s) is undecryptable', async (_, index) => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    const error = await rejection(sealer.open(flipByte(sealed, index), CONTEXT));
    // Assess
    expect(error).toBeInstanceOf(SecretUndecryptable);
  });

  it('a header edited to name another item does not open there (the edit breaks authentication)', async () => {
    // Prepare: the two key ids have the same length, so the edit keeps the header's layout.
    const sealer = new EsdkSealer({ current: localKey() });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    const edited = Buffer.from(
      Buffer.from(sealed, 'base64').toString('latin1').replace(CONTEXT.keyId, OTHER_CONTEXT.keyId),
      'latin1',
    ).toString('base64');
    // Act
    const error = await rejection(sealer.open(edited, OTHER_CONTEXT));
    // Assess
    expect(inspectSealed(edited)).toMatchObject({ context: { keyId: OTHER_CONTEXT.keyId } });
    expect(error).toMatchObject({ reason: 'authentication-failed' });
  });

  it.each([
    ['a plain secret', SECRET],
    ['an empty string', ''],
    ['truncated', 'AgR4'],
    ['not canonical base64', 'AgR4 AAAA'],
  ])('%s is malformed', async (_, value) => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    // Act
    const error = await rejection(sealer.open(value, CONTEXT));
    // Assess
    expect(error).toMatchObject({ reason: 'malformed' });
  });

  it('a ciphertext one character off is not read as the original (canonical base64 only)', async () => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    const error = await rejection(sealer.open(`${sealed.slice(0, 100)}!${sealed.slice(100)}`, CONTEXT));
    // Assess
    expect(error).toMatchObject({ reason: 'malformed' });
  });
});

describe('errors never carry the secret or the ciphertext', () => {
  it('no failure shows the secret or any part of the ciphertext, in message, JSON or inspection', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: localKey() });
    const kmsSealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    const kmsSealed = await kmsSealer.seal(SECRET, CONTEXT);
    kms.failNext('ThrottlingException');
    // Act
    const errors = await Promise.all([
      rejection(sealer.open(sealed, OTHER_CONTEXT)),
      rejection(sealer.open(flipByte(sealed, -1), CONTEXT)),
      rejection(new EsdkSealer({ current: localKey() }).open(sealed, CONTEXT)),
      rejection(sealer.open(SECRET, CONTEXT)),
      rejection(sealer.open(sealed, { pool: 'stability', keyId: SECRET })),
      rejection(kmsSealer.open(kmsSealed, CONTEXT)),
      rejection(kmsSealer.open(flipByte(kmsSealed, inBlob(kmsSealed, fakeKeyArn(1))), CONTEXT)),
    ]);
    // Assess
    const chunks = (text: string) =>
      Array.from({ length: Math.floor(text.length / 12) }, (_, i) => text.slice(i * 12, i * 12 + 12));
    for (const error of errors) {
      const shown = [
        String(error),
        JSON.stringify(error),
        inspect(error, { depth: 5 }),
        (error as Error).stack ?? '',
      ].join('\n');
      expect(shown).not.toContain(SECRET.slice(8, 24));
      for (const chunk of [...chunks(sealed), ...chunks(kmsSealed)]) expect(shown).not.toContain(chunk);
    }
    expect(errors.map((e) => e?.constructor.name)).toEqual([
      'SecretUndecryptable',
      'SecretUndecryptable',
      'SealingMisconfigured',
      'SecretUndecryptable',
      'SecretUndecryptable',
      'SealingUnavailable',
      'SecretUndecryptable',
    ]);
  });

  it('the sealer and its cache show counts, never an opened secret', async () => {
    // Prepare
    const sealer = new EsdkSealer({ current: localKey() });
    await sealer.open(await sealer.seal(SECRET, CONTEXT), CONTEXT);
    const cache = new OpenedSecretCache();
    cache.set('k', SECRET);
    // Act
    const shown = [
      JSON.stringify(sealer),
      inspect(sealer, { depth: 10, showHidden: true }),
      JSON.stringify(cache),
      inspect(cache, { depth: 10, showHidden: true }),
      JSON.stringify({ sealer, cache }),
    ].join('\n');
    // Assess
    expect(shown).not.toContain(SECRET);
    expect(JSON.stringify(cache)).toBe('{"openedSecrets":1}');
  });
});

describe('KMS keyring', () => {
  it('sends KMS exactly the item context on GenerateDataKey and Decrypt (what IAM conditions see)', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    // Act
    await sealer.open(await sealer.seal(SECRET, CONTEXT), CONTEXT);
    // Assess
    expect(kms.contexts).toEqual([
      { operation: 'GenerateDataKey', context: { pool: 'stability', keyId: CONTEXT.keyId } },
      { operation: 'Decrypt', context: { pool: 'stability', keyId: CONTEXT.keyId } },
    ]);
    expect(kms.calls).toEqual({ generateDataKey: 1, encrypt: 0, decrypt: 1 });
  });

  it('a ciphertext copied from another item is refused before any KMS call', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    const error = await rejection(sealer.open(sealed, OTHER_CONTEXT));
    // Assess
    expect(error).toMatchObject({ reason: 'context-mismatch' });
    expect(kms.calls.decrypt).toBe(0);
  });

  it('a throttled or refused KMS call is SealingUnavailable (retry), is not cached, and the next open succeeds', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    kms.failNext('ThrottlingException');
    kms.failNext('AccessDeniedException');
    // Act
    const first = await rejection(sealer.open(sealed, CONTEXT));
    const second = await rejection(sealer.open(sealed, CONTEXT));
    const third = await sealer.open(sealed, CONTEXT);
    // Assess
    expect(first).toBeInstanceOf(SealingUnavailable);
    expect(first).toMatchObject({ causes: ['ThrottlingException'], operation: 'open' });
    expect(second).toMatchObject({ causes: ['AccessDeniedException'] });
    expect(third).toBe(SECRET);
  });

  it('concurrent opens each answer for their own KMS call: a throttled one is unavailable, a refused ciphertext beside it is undecryptable', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    const throttled = await sealer.seal(SECRET, CONTEXT);
    const sealedOther = await sealer.seal(OTHER_SECRET, OTHER_CONTEXT);
    const broken = flipByte(sealedOther, inBlob(sealedOther, fakeKeyArn(1)));
    kms.failNext('ThrottlingException');
    // Act: both in flight at once; the first Decrypt KMS sees is throttled.
    const [first, second, third] = await Promise.all([
      rejection(sealer.open(throttled, CONTEXT)),
      rejection(sealer.open(broken, OTHER_CONTEXT)),
      sealer.open(throttled, { ...CONTEXT }).catch((error: unknown) => error),
    ]);
    // Assess: the throttle is charged to the open that met it, never to the other one.
    expect(first).toMatchObject({ operation: 'open', causes: ['ThrottlingException'] });
    expect(second).toBeInstanceOf(SecretUndecryptable);
    expect(second).toMatchObject({ reason: 'authentication-failed' });
    expect(third).toBe(first);
    expect(kms.calls.decrypt).toBe(2);
  });

  it('sealing while KMS fails is SealingUnavailable', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    kms.failNext('KMSInvalidStateException');
    // Act
    const error = await rejection(sealer.seal(SECRET, CONTEXT));
    // Assess
    expect(error).toMatchObject({ operation: 'seal', causes: ['KMSInvalidStateException'] });
  });

  it('an encrypted data key KMS refuses (InvalidCiphertextException) is undecryptable, not unavailable', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act: past the key ARN and the 2-byte length that follows it lies the KMS ciphertext blob.
    const error = await rejection(sealer.open(flipByte(sealed, inBlob(sealed, fakeKeyArn(1))), CONTEXT));
    // Assess
    expect(error).toMatchObject({ reason: 'authentication-failed' });
    expect(kms.calls.decrypt).toBe(1);
  });

  it('a KMS wrapping key must be a key ARN: an alias would never match the ARN messages record', () => {
    // Prepare
    const alias = 'arn:aws:kms:eu-west-1:111122223333:alias/keypool-secrets';
    // Act
    const build = () => new EsdkSealer({ current: { kind: 'kms', keyArn: alias } });
    // Assess
    expect(build).toThrow(/key ARN/);
  });
});

describe('the opened-secret cache', () => {
  let kms: FakeKms;
  let now: number;
  const sealerWith = (cache: { maxEntries?: number; maxAgeMs?: number }) =>
    new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms, cache: { ...cache, now: () => now } });

  beforeEach(() => {
    kms = new FakeKms();
    now = 1_000_000;
  });

  it('N opens of the same ciphertext in a warm process make one KMS Decrypt', async () => {
    // Prepare
    const sealer = sealerWith({});
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    const opened = [];
    for (let i = 0; i < 50; i++) opened.push(await sealer.open(sealed, CONTEXT));
    // Assess
    expect(new Set(opened)).toEqual(new Set([SECRET]));
    expect(kms.calls.decrypt).toBe(1);
    expect(sealer.stats()).toMatchObject({ opens: 50, cacheHits: 49, unwraps: 1 });
  });

  it('concurrent opens of one ciphertext share one KMS Decrypt', async () => {
    // Prepare
    const sealer = sealerWith({});
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    const opened = await Promise.all(Array.from({ length: 20 }, () => sealer.open(sealed, CONTEXT)));
    // Assess
    expect(opened.every((s) => s === SECRET)).toBe(true);
    expect(kms.calls.decrypt).toBe(1);
  });

  it('a changed ciphertext for the same item (resealed) is opened anew, never served stale', async () => {
    // Prepare
    const sealer = sealerWith({});
    const before = await sealer.seal(SECRET, CONTEXT);
    await sealer.open(before, CONTEXT);
    const after = await sealer.seal(OTHER_SECRET, CONTEXT);
    // Act
    const opened = await sealer.open(after, CONTEXT);
    // Assess
    expect(opened).toBe(OTHER_SECRET);
    expect(kms.calls.decrypt).toBe(2);
  });

  it('an entry expires maxAgeMs after it was opened, however often it was used since', async () => {
    // Prepare
    const sealer = sealerWith({ maxAgeMs: 60_000 });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    await sealer.open(sealed, CONTEXT);
    now += 59_999;
    await sealer.open(sealed, CONTEXT);
    // Act
    now += 1;
    await sealer.open(sealed, CONTEXT);
    // Assess
    expect(kms.calls.decrypt).toBe(2);
  });

  it('beyond maxEntries the oldest opened secret is evicted first', async () => {
    // Prepare
    const sealer = sealerWith({ maxEntries: 2 });
    const secrets = [SECRET, OTHER_SECRET, `sk-test-${'q'.repeat(56)}`];
    const sealed = await Promise.all(secrets.map((s) => sealer.seal(s, contextFor(s))));
    for (const [i, s] of secrets.entries()) await sealer.open(sealed[i] ?? '', contextFor(s));
    // Act
    await sealer.open(sealed[2] ?? '', contextFor(secrets[2] ?? '')); // still cached
    await sealer.open(sealed[1] ?? '', contextFor(OTHER_SECRET)); // still cached
    await sealer.open(sealed[0] ?? '', contextFor(SECRET)); // evicted: decrypts again
    // Assess
    expect(kms.calls.decrypt).toBe(4);
  });

  it('with the cache off every open decrypts', async () => {
    // Prepare
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms, cache: false });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    // Act
    for (let i = 0; i < 3; i++) await sealer.open(sealed, CONTEXT);
    // Assess
    expect(kms.calls.decrypt).toBe(3);
  });

  it('never answers an entry older than maxAgeMs, even when the clock stepped back between two opens', () => {
    // Prepare
    const cache = new OpenedSecretCache({ maxAgeMs: 60_000, now: () => now });
    const first = cacheKeyFor('sealed-first', CONTEXT);
    const second = cacheKeyFor('sealed-second', CONTEXT);
    now = 1_000;
    cache.set(first, 'secret-first');
    now = 0; // the wall clock stepped back a second
    cache.set(second, 'secret-second');
    // Act
    now = 60_000;
    // Assess
    expect(cache.get(second)).toBeUndefined();
    expect(cache.get(first)).toBe('secret-first');
  });

  it('holds at most maxEntries and zeroes what it evicts', () => {
    // Prepare
    const cache = new OpenedSecretCache({ maxEntries: 3, now: () => now });
    // Act
    for (let i = 0; i < 10; i++) cache.set(cacheKeyFor(`sealed-${i}`, CONTEXT), `secret-${i}`);
    // Assess
    expect(cache.size).toBe(3);
    expect(cache.get(cacheKeyFor('sealed-6', CONTEXT))).toBeUndefined();
    expect(cache.get(cacheKeyFor('sealed-9', CONTEXT))).toBe('secret-9');
  });
});

describe('rotation: which wrapping key sealed a secret', () => {
  it('with the local key replaced, old secrets open through the previous key and are flagged for reseal', async () => {
    // Prepare
    const oldKey = localKey();
    const newKey = localKey();
    const oldSealed = await new EsdkSealer({ current: oldKey }).seal(SECRET, CONTEXT);
    const sealer = new EsdkSealer({ current: newKey, previous: [oldKey] });
    // Act
    const opened = await sealer.open(oldSealed, CONTEXT);
    const resealed = await sealer.seal(opened, CONTEXT);
    // Assess
    expect(opened).toBe(SECRET);
    expect(await sealer.resealNeeded(oldSealed)).toBe(true);
    expect(await sealer.resealNeeded(resealed)).toBe(false);
    expect(inspectSealed(resealed)).toMatchObject({ wrappedBy: [wrappingKeyRef(newKey)] });
  });

  it('with a new KMS key ARN, old secrets are flagged and open through the previous ARN', async () => {
    // Prepare
    const kms = new FakeKms();
    const oldSealed = await new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms }).seal(
      SECRET,
      CONTEXT,
    );
    const sealer = new EsdkSealer({
      current: { kind: 'kms', keyArn: fakeKeyArn(2) },
      previous: [{ kind: 'kms', keyArn: fakeKeyArn(1) }],
      kms,
    });
    // Act
    const opened = await sealer.open(oldSealed, CONTEXT);
    // Assess
    expect(opened).toBe(SECRET);
    expect(await sealer.resealNeeded(oldSealed)).toBe(true);
    expect(inspectSealed(oldSealed)).toMatchObject({ wrappedBy: [{ provider: 'aws-kms', key: fakeKeyArn(1) }] });
    expect(kms.calls.decrypt).toBe(1);
  });

  it('once the previous key is dropped, its secrets do not open (SealingMisconfigured: the key is not held), and still need a reseal', async () => {
    // Prepare
    const oldSealed = await new EsdkSealer({ current: localKey() }).seal(SECRET, CONTEXT);
    const sealer = new EsdkSealer({ current: localKey() });
    // Act
    const error = await rejection(sealer.open(oldSealed, CONTEXT));
    // Assess
    expect(error).toBeInstanceOf(SealingMisconfigured);
    expect(await sealer.resealNeeded(oldSealed)).toBe(true);
  });

  it('a plain legacy secret or garbage needs sealing; a header is read without any KMS call', async () => {
    // Prepare
    const kms = new FakeKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms });
    const sealed = await sealer.seal(SECRET, CONTEXT);
    const callsAfterSeal = { ...kms.calls };
    // Act
    const answers = await Promise.all([
      sealer.resealNeeded(SECRET),
      sealer.resealNeeded('not base64 at all'),
      sealer.resealNeeded(sealed),
    ]);
    // Assess
    expect(answers).toEqual([true, true, false]);
    expect(inspectSealed(SECRET)).toEqual({ sealed: false });
    expect(kms.calls).toEqual(callsAfterSeal);
  });
});

describe('the local sealing key file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keypool-sealing-key-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is generated on first start as 32 bytes with mode 0600', async () => {
    // Act
    const loaded = await loadOrCreateLocalSealingKey(join(dir, 'data'));
    // Assess
    const info = await stat(loaded.path);
    expect(loaded.created).toBe(true);
    expect(loaded.key).toHaveLength(32);
    expect(info.mode & 0o777).toBe(0o600);
    expect(await readFile(loaded.path)).toEqual(loaded.key);
  });

  it('is reused, not regenerated, on the next start', async () => {
    // Prepare
    const first = await loadOrCreateLocalSealingKey(dir);
    // Act
    const second = await loadOrCreateLocalSealingKey(dir);
    // Assess
    expect(second.created).toBe(false);
    expect(second.key.equals(first.key)).toBe(true);
  });

  it('concurrent first starts end with one key that all of them use', async () => {
    // Act
    const loads = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateLocalSealingKey(dir)));
    // Assess
    expect(loads.filter((l) => l.created)).toHaveLength(1);
    expect(new Set(loads.map((l) => l.key.toString('hex'))).size).toBe(1);
  });

  it('is refused when group or others can read it, with a message that says what to do', async () => {
    // Prepare
    const { path } = await loadOrCreateLocalSealingKey(dir);
    await chmod(path, 0o644);
    // Act
    const error = await rejection(loadOrCreateLocalSealingKey(dir));
    // Assess
    expect(error).toBeInstanceOf(UnsafeSealingKeyFile);
    expect(String(error)).toMatch(/mode 0644.*chmod 600/);
  });

  it('is refused when it is not 32 bytes', async () => {
    // Prepare
    const path = join(dir, LOCAL_SEALING_KEY_FILE);
    await writeFile(path, randomBytes(31), { mode: 0o600 });
    // Act
    const error = await rejection(readLocalSealingKey(path));
    // Assess
    expect(String(error)).toMatch(/31 bytes.*exactly 32/);
  });

  it('seals and opens across a restart with the reloaded key', async () => {
    // Prepare
    const first = await loadOrCreateLocalSealingKey(dir);
    const sealed = await new EsdkSealer({ current: { kind: 'local', key: first.key } }).seal(SECRET, CONTEXT);
    // Act
    const second = await loadOrCreateLocalSealingKey(dir);
    const opened = await new EsdkSealer({ current: { kind: 'local', key: second.key } }).open(sealed, CONTEXT);
    // Assess
    expect(opened).toBe(SECRET);
  });
});
