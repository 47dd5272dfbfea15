/**
 * Opening the one AWS Encryption SDK message shape keypool writes (esdk-sealer.ts seals with
 * the ESDK itself): message format V2, suite ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY
 * (0x0478: unsigned, committing), exactly one encrypted data key, framed content. Written by
 * hand over node:crypto, with no ESDK code: the ESDK's building blocks (immutable classes,
 * material managers, serialize helpers) cost ~0.25 ms of CPU per open and ~50 KB in every
 * bundle that opens, for a message of a few hundred bytes whose crypto is a few HMACs and two
 * AES-GCM calls.
 *
 * Every check is the ESDK's (@aws-crypto/decrypt-node 5.0.2 and what it calls, named below),
 * made on the same bytes in the same order: the header is parsed whole before any key is used,
 * the data key is unwrapped, the key commitment checked before the data key is derived, the
 * header authenticated, then each frame. Where this is stricter than the ESDK it says so; the
 * differential tests (test/support/esdk-oracle.ts) hold it to "never accept what the ESDK's
 * decrypt refuses; where both accept, the same plaintext and context".
 */
import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';

/** ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY: the one suite keypool seals and opens. */
export const SEALING_SUITE = 0x0478;
/** Its signed sibling (ECDSA P-384): parsed, so a header can say it, never opened (we verify no signatures). */
const SIGNED_SUITE = 0x0578;

const VERSION_2 = 0x02;
const MESSAGE_ID_BYTES = 32;
const CONTENT_FRAMED = 0x02;
const SUITE_DATA_BYTES = 32; // the key commitment
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const FINAL_FRAME = 0xffffffff;
/** serialize: identifiers.js ENCODED_SIGNER_KEY, reserved for signed suites. */
const ENCODED_SIGNER_KEY = 'aws-crypto-public-key';
// serialize/build/main/src/kdf_info.js and identifiers.js (ContentAADString).
const COMMIT_LABEL = Buffer.from('COMMITKEY');
const KEY_LABEL = Buffer.concat([Buffer.from([SEALING_SUITE >> 8, SEALING_SUITE & 0xff]), Buffer.from('DERIVEKEY')]);
const FRAME_AAD = Buffer.from('AWSKMSEncryptionClient Frame');
const FINAL_FRAME_AAD = Buffer.from('AWSKMSEncryptionClient Final Frame');

// ignoreBOM: a leading U+FEFF is kept as a character, as Buffer#toString (the ESDK's toUtf8) keeps it,
// so no two byte strings decode to one key.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The message's one encrypted data key, as the header holds it. */
export interface EncryptedDataKey {
  /** decoded as the ESDK decodes it (invalid UTF-8 becomes U+FFFD) */
  providerId: string;
  providerInfo: string;
  /** the provider info's bytes (a raw AES key's carry its IV) */
  rawInfo: Buffer;
  encryptedDataKey: Buffer;
}

/** What a message header says. */
export interface SealedHeader {
  suiteId: number;
  messageId: Buffer;
  context: Readonly<Record<string, string>>;
  dataKey: EncryptedDataKey;
  frameLength: number;
  commitment: Buffer;
}

/** Unwraps the encrypted data key under the context it was wrapped with; rejects if it cannot. */
export type UnwrapDataKey = (dataKey: EncryptedDataKey, context: Readonly<Record<string, string>>) => Promise<Buffer>;

/** Refuses: the reason is for debugging only; callers map every refusal to their own error. */
export function needs(condition: unknown, reason: string): asserts condition {
  if (!condition) throw new Error(reason);
}

/** Reads big-endian fields off a buffer, refusing any read past its end. */
class Reader {
  pos = 0;
  constructor(readonly bytes: Buffer) {}
  take(length: number): Buffer {
    needs(this.pos + length <= this.bytes.length, 'Incomplete message');
    const slice = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return slice;
  }
  u8(): number {
    return this.take(1).readUInt8(0);
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  u32(): number {
    return this.take(4).readUInt32BE(0);
  }
  /** a field with a 2-byte length (serialize/build/main/src/read_element.js) */
  element(): Buffer {
    return this.take(this.u16());
  }
}

/**
 * The encryption context (serialize: decode_encryption_context.js): an empty section is the
 * empty context; otherwise a count and that many key/value pairs filling the section exactly,
 * no key twice (as the ESDK). Stricter than the ESDK, so one context has one encoding: keys and
 * values must be valid UTF-8 (the ESDK decodes invalid bytes to U+FFFD) and keys in ascending
 * byte order (the ESDK reads any order, and its encrypt writes this one: utf8Sorting).
 */
function readContext(section: Buffer): Record<string, string> {
  const context: Record<string, string> = Object.create(null) as Record<string, string>;
  if (section.length === 0) return context;
  const reader = new Reader(section);
  let previous: Buffer | undefined;
  for (let count = reader.u16(); count > 0; count--) {
    const key = reader.element();
    const value = reader.element();
    needs(!previous || Buffer.compare(previous, key) < 0, 'Encryption context keys out of order, or repeated.');
    previous = key;
    context[strictUtf8.decode(key)] = strictUtf8.decode(value);
  }
  needs(reader.pos === section.length, 'Overflow, too much data.');
  return context;
}

/**
 * One message and its parsed header, made only by SealedMessage.parse: the header an open
 * authenticates is always the header of the bytes it deciphers, parsed once.
 */
export class SealedMessage {
  // A private field makes the type nominal: no object literal passes for a parsed message.
  readonly #headerEnd: number;

  private constructor(
    readonly bytes: Buffer,
    readonly header: SealedHeader,
    headerEnd: number,
  ) {
    this.#headerEnd = headerEnd;
  }

  /** Where the header (without its auth tag) ends: what the header auth tag authenticates. */
  get headerEnd(): number {
    return this.#headerEnd;
  }

  /**
   * Parses the header of `bytes` as the ESDK's deserializeMessageHeaderV2 does, with
   * maxEncryptedDataKeys 1, up to and including the header auth tag. False for anything else:
   * another version or suite, a truncated or malformed header, no data key or more than one.
   * Stricter than the ESDK: the content must be framed (the ESDK also reads non-framed bodies,
   * which its encrypt never writes), with frames of at least one byte. Decrypts nothing.
   */
  static parse(bytes: Buffer): SealedMessage | false {
    try {
      const reader = new Reader(bytes);
      needs(reader.u8() === VERSION_2, 'Malformed Header.');
      const suiteId = reader.u16();
      needs(suiteId === SEALING_SUITE || suiteId === SIGNED_SUITE, 'Unsupported algorithm suite.');
      const messageId = reader.take(MESSAGE_ID_BYTES);
      const context = readContext(reader.element());
      // deserialize_encrypted_data_keys.js: at least one, at most maxEncryptedDataKeys (1).
      needs(reader.u16() === 1, 'Exactly one EncryptedDataKey.');
      const rawId = reader.element();
      const rawInfo = reader.element();
      const encryptedDataKey = reader.element();
      needs(reader.u8() === CONTENT_FRAMED, 'Unsupported contentType.');
      const frameLength = reader.u32();
      needs(frameLength > 0, 'Frame length 0.');
      const commitment = reader.take(SUITE_DATA_BYTES);
      const headerEnd = reader.pos;
      reader.take(TAG_BYTES); // the header auth tag must be there too
      const dataKey = {
        providerId: rawId.toString('utf8'),
        providerInfo: rawInfo.toString('utf8'),
        rawInfo,
        encryptedDataKey,
      };
      return new SealedMessage(bytes, { suiteId, messageId, context, dataKey, frameLength, commitment }, headerEnd);
    } catch {
      return false;
    }
  }
}

/** HMAC-SHA512 of `parts` under `key`. */
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const mac = createHmac('sha512', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};
const ONE = Buffer.from([1]);

/**
 * HKDF-SHA512 with the message id as salt (material-management-node: material_helpers.js
 * nodeKdf, hkdf-node): the key commitment, compared in constant time with the header's before
 * the data key is derived, then the derived key. Each output (32 bytes) is one HMAC block.
 */
function deriveKey(dataKey: Buffer, { messageId, commitment }: SealedHeader): Buffer {
  const prk = hmac(messageId, dataKey);
  const expected = hmac(prk, COMMIT_LABEL, ONE);
  try {
    needs(timingSafeEqual(expected.subarray(0, SUITE_DATA_BYTES), commitment), 'Commitment does not match.');
    const block = hmac(prk, KEY_LABEL, ONE);
    const derived = Buffer.from(block.subarray(0, KEY_BYTES));
    block.fill(0);
    return derived;
  } finally {
    prk.fill(0);
    expected.fill(0);
  }
}

/**
 * AES-256-GCM decryption of `content`; throws unless `tag` authenticates it and `aad`, having
 * zeroed what it deciphered (the real plaintext when only the tag or the AAD was changed). Also
 * the raw AES unwrap of a data key (wrapping-keys.ts).
 */
export function decipher(key: Buffer, iv: Buffer, aad: Buffer, content: Buffer, tag: Buffer): Buffer[] {
  const gcm = createDecipheriv('aes-256-gcm', key, iv).setAAD(aad).setAuthTag(tag);
  const head = gcm.update(content);
  try {
    return [head, gcm.final()];
  } catch (error) {
    head.fill(0); // unauthenticated, but the real plaintext when only the tag or AAD was changed
    throw error;
  }
}

/** The body AAD of a frame (serialize: aad_factory.js messageAAD): message id, kind, sequence, 64-bit length. */
function frameAad(messageId: Buffer, final: boolean, sequence: number, contentLength: number): Buffer {
  const numbers = Buffer.alloc(12);
  numbers.writeUInt32BE(sequence, 0);
  numbers.writeUInt32BE(Math.floor(contentLength / 2 ** 32), 4);
  numbers.writeUInt32BE(contentLength % 2 ** 32, 8);
  return Buffer.concat([messageId, final ? FINAL_FRAME_AAD : FRAME_AAD, numbers]);
}

/**
 * Decrypts a parsed message, unwrapping its data key with `unwrap`, making the ESDK decrypt's
 * checks in its order (decrypt-node: parse_header_stream.js, verify_stream.js,
 * decipher_stream.js): the suite, the data key (32 bytes), the key commitment, the header auth
 * tag (IV all zero), then each frame (decode_body_header.js): sequence numbers from 1 in order,
 * a final frame no longer than the frame length, no frame over `maxBodySize`, each frame's tag.
 * Stricter than the ESDK: no byte may follow the final frame (the ESDK ignores them for an
 * unsigned suite), so one message has one encoding. Resolves with the plaintext only when the
 * header and every frame authenticated. The data key and the derived key are zeroed before it
 * settles either way, and dropped plaintext is zeroed; the caller owns (and should zero) the
 * plaintext it gets.
 */
export async function openSealedMessage(
  message: SealedMessage,
  unwrap: UnwrapDataKey,
  { maxBodySize }: { maxBodySize: number },
): Promise<Buffer> {
  const { bytes, header, headerEnd } = message;
  // CommitmentPolicy REQUIRE_ENCRYPT_REQUIRE_DECRYPT and SignaturePolicy ALLOW_ENCRYPT_FORBID_DECRYPT leave this one.
  needs(header.suiteId === SEALING_SUITE, 'Unsupported algorithm suite.');
  // material-management-node: NodeDefaultCryptographicMaterialsManager._initializeDecryptionMaterial.
  needs(
    !Object.hasOwn(header.context, ENCODED_SIGNER_KEY),
    'Encryption context contains public verification key for unsigned algorithm suite.',
  );
  const dataKey = await unwrap(header.dataKey, header.context);
  const clear: Buffer[] = [];
  let key: Buffer | undefined;
  try {
    needs(dataKey.length === KEY_BYTES, 'Unencrypted data key is invalid.');
    key = deriveKey(dataKey, header);
    const reader = new Reader(bytes);
    reader.pos = headerEnd;
    decipher(key, Buffer.alloc(IV_BYTES), bytes.subarray(0, headerEnd), Buffer.alloc(0), reader.take(TAG_BYTES));

    for (let expected = 1; ; expected++) {
      let sequence = reader.u32();
      const final = sequence === FINAL_FRAME;
      if (final) sequence = reader.u32();
      needs(sequence > 0, 'Malformed sequenceNumber.');
      const iv = reader.take(IV_BYTES);
      const contentLength = final ? reader.u32() : header.frameLength;
      needs(contentLength <= header.frameLength, 'Final frame length exceeds frame length.');
      needs(contentLength <= maxBodySize, 'maxBodySize exceeded.');
      needs(sequence === expected, 'Encrypted body sequence out of order.');
      const content = reader.take(contentLength);
      const tag = reader.take(TAG_BYTES);
      clear.push(...decipher(key, iv, frameAad(header.messageId, final, sequence, contentLength), content, tag));
      if (final) break;
    }
    needs(reader.pos === bytes.length, 'Unexpected bytes after the final frame.');
    return Buffer.concat(clear);
  } finally {
    for (const chunk of clear) chunk.fill(0);
    key?.fill(0);
    dataKey.fill(0);
  }
}
