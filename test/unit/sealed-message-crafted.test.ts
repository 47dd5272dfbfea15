/**
 * Messages built by hand (node:crypto) under the test's local key, that openSealedMessage
 * accepts and the ESDK's decrypt refuses.
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openSealedMessage, SealedMessage } from '../../lib/adapters/sealed-message.js';
import { LOCAL_PROVIDER, localKeyName } from '../../lib/adapters/wrapping-keys.js';
import { EsdkSealer } from '../../lib/adapters/esdk-sealer.js';
import { compare, KEY, KEYS, SEALER, SECRET } from '../support/esdk-oracle.js';
import { FakeKms, fakeKeyArn } from '../support/fake-kms.js';

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const field = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const pairs = (entries: [Buffer, Buffer][]) =>
  Buffer.concat([u16(entries.length), ...entries.flatMap(([k, v]) => [field(k), field(v)])]);
const hmac = (key: Buffer, ...parts: Buffer[]) => {
  const m = createHmac('sha512', key);
  for (const p of parts) m.update(p);
  return m.digest();
};
const gcm = (key: Buffer, iv: Buffer, aad: Buffer, plain: Buffer) => {
  const c = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { ct, tag: c.getAuthTag() };
};

/**
 * A V2 / 0x0478 message under KEY: `header` are the context pairs as written in the header (raw
 * bytes, in order), `wrapAad` the serialized context the data key is wrapped under.
 */
function handMade(header: [Buffer, Buffer][], wrapAad: Buffer, plaintext: Buffer): Buffer {
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const keyName = Buffer.from(localKeyName(KEY));
  const wrapIv = randomBytes(12);
  const wrapped = gcm(Buffer.from(KEY), wrapIv, wrapAad, dataKey);
  const prk = hmac(messageId, dataKey);
  const commitment = hmac(prk, Buffer.from('COMMITKEY'), Buffer.from([1])).subarray(0, 32);
  const key = hmac(prk, Buffer.from([0x04, 0x78]), Buffer.from('DERIVEKEY'), Buffer.from([1])).subarray(0, 32);
  const context = pairs(header);
  const head = Buffer.concat([
    Buffer.from([0x02, 0x04, 0x78]),
    messageId,
    field(context),
    u16(1),
    field(Buffer.from(LOCAL_PROVIDER)),
    field(Buffer.concat([keyName, u32(128), u32(12), wrapIv])),
    field(Buffer.concat([wrapped.ct, wrapped.tag])),
    Buffer.from([0x02]),
    u32(4096),
    commitment,
  ]);
  const headerTag = gcm(key, Buffer.alloc(12), head, Buffer.alloc(0)).tag;
  const iv = randomBytes(12);
  const lengths = Buffer.concat([u32(1), u32(0), u32(plaintext.length)]);
  const frame = gcm(
    key,
    iv,
    Buffer.concat([messageId, Buffer.from('AWSKMSEncryptionClient Final Frame'), lengths]),
    plaintext,
  );
  return Buffer.concat([head, headerTag, u32(0xffffffff), u32(1), iv, u32(plaintext.length), frame.ct, frame.tag]);
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const b = (s: string) => Buffer.from(s, 'utf8');
const KEY_ID = 'k_0123456789abcdef01234567';

describe('review: contexts openSealedMessage reads differently from the ESDK', () => {
  it('a context key with a UTF-8 BOM is read as the key without it (TextDecoder strips a leading BOM)', async () => {
    // header: {keyId, "\uFEFFpool": "stability"}; data key wrapped under {keyId, pool: "stability"}
    const message = handMade(
      [
        [b('keyId'), b(KEY_ID)],
        [Buffer.concat([BOM, b('pool')]), b('stability')],
      ],
      pairs([
        [b('keyId'), b(KEY_ID)],
        [b('pool'), b('stability')],
      ]),
      Buffer.from(SECRET),
    );
    const parsed = SealedMessage.parse(message);
    // the header's context is {keyId, "\uFEFFpool"}, as the ESDK reads it, not {keyId, pool}
    expect(parsed && Object.keys(parsed.header.context)).toEqual(['keyId', '\uFEFFpool']);
    // so the opener must not open it for {pool: stability}
    await expect(SEALER.open(message.toString('base64'), { pool: 'stability', keyId: KEY_ID })).rejects.toThrow();
    // and the differential rule: the ESDK refuses it
    expect(await compare('BOM in a context key', KEYS, message)).toBe('both refuse');
  });

  it('a context key twice (once behind a BOM) passes the order check and the second value wins', async () => {
    // header (3 pairs): keyId, pool = "other", "\uFEFFpool" = "stability"
    const message = handMade(
      [
        [b('keyId'), b(KEY_ID)],
        [b('pool'), b('other')],
        [Buffer.concat([BOM, b('pool')]), b('stability')],
      ],
      pairs([
        [b('keyId'), b(KEY_ID)],
        [b('pool'), b('stability')],
      ]),
      Buffer.from(SECRET),
    );
    await expect(SEALER.open(message.toString('base64'), { pool: 'stability', keyId: KEY_ID })).rejects.toThrow();
    expect(await compare('context key twice behind a BOM', KEYS, message)).toBe('both refuse');
  });

  it('an unsigned message whose context holds aws-crypto-public-key (the ESDK default CMM refuses it)', async () => {
    const entries: [Buffer, Buffer][] = [[b('aws-crypto-public-key'), b('AAAA')]];
    const message = handMade(entries, pairs(entries), Buffer.from(SECRET));
    const parsed = SealedMessage.parse(message);
    if (!parsed) throw new Error('should parse');
    await expect(openSealedMessage(parsed, KEYS.unwrap, { maxBodySize: 65536 })).rejects.toThrow();
    expect(await compare('reserved context key, unsigned suite', KEYS, message)).toBe('both refuse');
  });
});

describe('review: the KMS unwrap names the key it asks KMS to use', () => {
  it('Decrypt gets the key ARN as KeyId (FakeKms checks KeyId only when one is sent)', async () => {
    const keyIds: (string | undefined)[] = [];
    class RecordingKms extends FakeKms {
      override async decrypt(input: Parameters<FakeKms['decrypt']>[0]) {
        keyIds.push(input.KeyId);
        return super.decrypt(input);
      }
    }
    const kms = new RecordingKms();
    const sealer = new EsdkSealer({ current: { kind: 'kms', keyArn: fakeKeyArn(1) }, kms, cache: false });
    const context = { pool: 'stability', keyId: KEY_ID };
    expect(await sealer.open(await sealer.seal(SECRET, context), context)).toBe(SECRET);
    expect(keyIds).toEqual([fakeKeyArn(1)]);
  });
});
