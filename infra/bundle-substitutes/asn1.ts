/**
 * What the Lambda bundles load in place of `asn1.js` (infra/bundling.ts BUNDLE_SUBSTITUTES).
 * The Encryption SDK uses asn1.js only for ECDSA: a signature's DER form
 * (@aws-crypto/serialize ecdsa_signature.js) and a signing key's PEM (@aws-crypto/material-
 * management pem_helpers.js). keypool seals with an unsigned suite (lib/adapters/esdk-sealer.ts)
 * and opens without the ESDK, refusing signed suites (lib/adapters/sealed-message.ts), so the
 * modules only need `define` to load; any use of what it returns fails loudly. asn1.js with its own copy of bn.js is ~67 KB
 * of bundle.
 */
const REFUSAL = 'asn1.js is not bundled: it serves only ECDSA-signed algorithm suites, which keypool refuses';

function refused(): never {
  throw new Error(REFUSAL);
}

/** An ASN.1 model that cannot encode or decode. */
export function define(): { encode: () => never; decode: () => never } {
  return { encode: refused, decode: refused };
}

/** asn1.js's bignum export: never called on a path keypool runs. */
export const bignum = { BN: refused };

export default { define, bignum };
