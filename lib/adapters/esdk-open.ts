/**
 * The AWS Encryption SDK's decrypt of one complete message held in one buffer: the same steps,
 * the same checks, in the same order, made with the ESDK's own exported building blocks
 * (@aws-crypto/serialize parses every byte of the format, @aws-crypto/material-management-node
 * holds the keys, derives them and checks the key commitment). Nothing here reads or writes
 * the message format by hand, so a message stays an ESDK message that the ESDK itself opens.
 *
 * Why: `buildDecrypt().decrypt()` runs every message through three Transform streams
 * (readable-stream, duplexify, setImmediate hops between header, body and tag), which cost
 * ~0.35-0.5 ms of CPU per open on Node.js 20 for a message of a few hundred bytes — far more
 * than its crypto. A lease of a key its container has not opened yet paid it every time. Our
 * messages are small and arrive whole, so one pass over one buffer does the same work.
 *
 * Mirrors @aws-crypto/decrypt-node 5.0.2, build/main/src/:
 * - decrypt_stream.js: a keyring is wrapped in NodeDefaultCryptographicMaterialsManager;
 * - parse_header_stream.js: header, commitment and signature policy on the header's suite,
 *   decryptMaterials, the same policies on the material's suite, getDecryptionHelper,
 *   getDecipherInfo (the key commitment check, in material_helpers.js nodeKdf), header auth;
 * - verify_stream.js: decodeBodyHeader per frame, maxBodySize, sequence numbers from 1,
 *   a message must reach its final frame ("Incomplete message");
 * - decipher_stream.js: per-frame AAD (aadFactory), decipher, final() checks the tag;
 *   _destroy disposes the material.
 * Where this is stricter than the ESDK, it says so below.
 */
import {
  CommitmentPolicy,
  CommitmentPolicySuites,
  getDecryptionHelper,
  type KeyringNode,
  NodeAlgorithmSuite,
  NodeDefaultCryptographicMaterialsManager,
  needs,
  SignaturePolicy,
  SignaturePolicySuites,
} from '@aws-crypto/material-management-node';
import {
  aadFactory,
  decodeBodyHeader,
  deserializeFactory,
  type HeaderInfo,
  type MessageHeader,
} from '@aws-crypto/serialize';

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
// The same two factories, with the same arguments, as parse_header_stream.js and decipher_stream.js.
const deserialize = deserializeFactory((bytes: Uint8Array) => toBuffer(bytes).toString('utf8'), NodeAlgorithmSuite);
const aad = aadFactory((text: string) => Buffer.from(text, 'utf8'));

/**
 * This opener verifies no signatures, so it must refuse every signed suite: the policy
 * buildDecrypt() gives decryptUnsignedMessageStream. (Its plain decrypt() allows signed
 * suites, and verifies their signature in verify_stream.js _flush; we do not.)
 */
const SIGNATURE_POLICY = SignaturePolicy.ALLOW_ENCRYPT_FORBID_DECRYPT;

/**
 * One ESDK message and the header parsed from it, made only by ParsedMessage.parse: the header
 * an open authenticates is always the header of the bytes it deciphers, and it is parsed once
 * (the sealer reads the suite and the context from it before any key is used).
 */
export class ParsedMessage {
  // A private field makes the type nominal: no object literal passes for a parsed message.
  readonly #headerInfo: HeaderInfo;

  private constructor(
    readonly bytes: Uint8Array,
    headerInfo: HeaderInfo,
  ) {
    this.#headerInfo = headerInfo;
  }

  get headerInfo(): HeaderInfo {
    return this.#headerInfo;
  }

  /**
   * Parses the header of the ESDK message `bytes` with the ESDK's deserializer, as
   * ParseHeaderStream does. False when `bytes` do not hold a complete header (the stream's
   * "Incomplete Header"); throws when the header is malformed or has more than
   * `maxEncryptedDataKeys` data keys. Decrypts nothing.
   */
  static parse(
    bytes: Uint8Array,
    { maxEncryptedDataKeys }: { maxEncryptedDataKeys: number | false },
  ): ParsedMessage | false {
    const headerInfo = deserialize.deserializeMessageHeader(bytes, { maxEncryptedDataKeys });
    return headerInfo ? new ParsedMessage(bytes, headerInfo) : false;
  }
}

export interface OpenMessageOptions {
  commitmentPolicy: CommitmentPolicy;
  /** the largest frame (or unframed body) accepted, as decrypt()'s maxBodySize; falsy = no bound */
  maxBodySize: number | false;
}

/**
 * Decrypts a parsed ESDK message with `keyring`, making every check the ESDK's decrypt makes,
 * in its order, and refusing signed suites and bytes after the final frame. Resolves only
 * when the header and every frame authenticated; otherwise rejects and returns nothing. The
 * data key is zeroed before it settles either way, and dropped plaintext is zeroed; the
 * caller owns (and should zero) the plaintext it gets.
 */
export async function openMessage(
  keyring: KeyringNode,
  message: ParsedMessage,
  { commitmentPolicy, maxBodySize }: OpenMessageOptions,
): Promise<{ plaintext: Buffer; messageHeader: MessageHeader }> {
  const { bytes, headerInfo } = message;
  // parse_header_stream.js _transform: policies on the suite the header names.
  const { messageHeader, algorithmSuite, rawHeader, headerAuth } = headerInfo;
  const messageIdHex = toBuffer(messageHeader.messageId).toString('hex');
  CommitmentPolicySuites.isDecryptEnabled(commitmentPolicy, algorithmSuite, messageIdHex);
  SignaturePolicySuites.isDecryptEnabled(SIGNATURE_POLICY, algorithmSuite, messageIdHex);

  // decrypt_stream.js wraps a keyring in the default CMM; parse_header_stream.js asks it.
  const { messageId, encryptionContext, encryptedDataKeys, contentType } = messageHeader;
  const cmm = new NodeDefaultCryptographicMaterialsManager(keyring);
  const material = await cmm.decryptMaterials({
    suite: new NodeAlgorithmSuite(algorithmSuite.id),
    encryptionContext,
    encryptedDataKeys,
  });
  const clear: Buffer[] = [];
  try {
    CommitmentPolicySuites.isDecryptEnabled(commitmentPolicy, material.suite, messageIdHex);
    SignaturePolicySuites.isDecryptEnabled(SIGNATURE_POLICY, material.suite, messageIdHex);

    const { getDecipherInfo, getVerify } = getDecryptionHelper(material);
    // Only signed suites have a verifier, and the policy refused them; never skip a signature.
    needs(!getVerify, 'Signed messages are not supported.');
    // Derives the data key and checks the key commitment (material_helpers.js nodeKdf). Only
    // V2 (committing) headers carry suiteData; for V1 it is undefined, as the ESDK passes it.
    const getDecipher = getDecipherInfo(messageId, 'suiteData' in messageHeader ? messageHeader.suiteData : undefined);
    const headerAuthCheck = getDecipher(headerAuth.headerIv);
    headerAuthCheck.setAAD(toBuffer(rawHeader));
    headerAuthCheck.setAuthTag(toBuffer(headerAuth.headerAuthTag));
    headerAuthCheck.update(Buffer.alloc(0));
    headerAuthCheck.final(); // throws unless the header is authentic

    // verify_stream.js _transform and decipher_stream.js, over the one buffer.
    let readPos = rawHeader.byteLength + headerAuth.headerAuthLength;
    for (let sequenceNumber = 1; ; sequenceNumber++) {
      const frame = decodeBodyHeader(bytes, headerInfo, readPos);
      // The stream would wait for more bytes, then fail in _flush.
      needs(frame, 'Incomplete message');
      needs(!maxBodySize || maxBodySize >= frame.contentLength, 'maxBodySize exceeded.');
      needs(frame.sequenceNumber === sequenceNumber, 'Encrypted body sequence out of order.');
      const contentEnd = frame.readPos + frame.contentLength;
      const tagEnd = contentEnd + frame.tagLength / 8;
      needs(tagEnd <= bytes.byteLength, 'Incomplete message');

      const { isFinalFrame } = frame;
      const frameAad = aad.messageAAD(
        messageId,
        aad.messageAADContentString({ contentType, isFinalFrame }),
        frame.sequenceNumber,
        frame.contentLength,
      );
      const decipher = getDecipher(frame.iv)
        .setAAD(toBuffer(frameAad))
        .setAuthTag(toBuffer(bytes.subarray(contentEnd, tagEnd)));
      clear.push(decipher.update(toBuffer(bytes.subarray(frame.readPos, contentEnd))));
      clear.push(decipher.final()); // throws unless the frame is authentic
      readPos = tagEnd;
      if (isFinalFrame) break;
    }
    // Stricter than the ESDK: for an unsigned suite verify_stream.js keeps whatever follows the
    // final frame as "signature" bytes and, with no signature to check, ignores them. We refuse
    // them, so one message has one encoding.
    needs(readPos === bytes.byteLength, 'Unexpected bytes after the final frame.');
    return { plaintext: Buffer.concat(clear), messageHeader };
  } finally {
    for (const chunk of clear) chunk.fill(0);
    // What the helper's dispose() does (material_helpers.js), called on the material itself so
    // it also runs when a check fails before the helper exists. The ESDK disposes only from
    // the decipher stream's _destroy, which a failed header never reaches.
    material.zeroUnencryptedDataKey();
  }
}
