/**
 * What the Lambda bundles load in place of `bn.js` (infra/bundling.ts BUNDLE_SUBSTITUTES): the
 * few big-number operations the Encryption SDK's modules call, on the language's own BigInt,
 * with bn.js's answers and refusals for them. Where the SDK uses it on the sealing path
 * (@aws-crypto/serialize: a frame's content length as eight big-endian bytes in the AAD, an
 * unframed body's length read back) the bytes are the same; the rest (@aws-crypto/material-
 * management's compressed EC points) serves only signed suites, which keypool refuses, and is
 * kept correct rather than stubbed. bn.js itself is ~45 KB of bundle for these few lines.
 * test/unit/bn-substitute.test.ts checks every operation against bn.js.
 */

/** bn.js's reduction context (BN.mont / BN.red): arithmetic modulo `m`. */
interface Reduction {
  m: bigint;
}

type BnInput = number | string | bigint | ArrayLike<number>;

function toBigInt(value: BnInput, base: number | 'hex' = 10, endian: 'be' | 'le' = 'be'): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError('BN: not a safe integer');
    return BigInt(value);
  }
  if (typeof value === 'string') {
    const radix = base === 'hex' ? 16 : base;
    const negative = value.startsWith('-');
    const digits = negative ? value.slice(1) : value;
    if (radix !== 16 && radix !== 10) throw new RangeError(`BN: base ${radix} is not supported here`);
    if (!(radix === 16 ? /^[0-9a-f]+$/i : /^[0-9]+$/).test(digits)) throw new RangeError('BN: invalid digits');
    const magnitude = BigInt(radix === 16 ? `0x${digits}` : digits);
    return negative ? -magnitude : magnitude;
  }
  // bytes, big-endian unless told otherwise (bn.js ignores the base for arrays)
  const bytes = Array.from(value);
  if (endian === 'le') bytes.reverse();
  return bytes.reduce((n, byte) => (n << 8n) | BigInt(byte & 0xff), 0n);
}

const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;

function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
  }
  return result;
}

export default class BN {
  readonly #n: bigint;
  readonly #red: Reduction | undefined;

  constructor(value: BnInput | BN, base?: number | 'hex', endian?: 'be' | 'le', red?: Reduction) {
    this.#n = value instanceof BN ? value.#n : toBigInt(value, base, endian);
    this.#red = red;
  }

  /** Montgomery form in bn.js; here only the modulus matters. */
  static mont(m: BN): Reduction {
    return { m: m.#n };
  }

  static red(m: BN): Reduction {
    return { m: m.#n };
  }

  add(other: BN): BN {
    return new BN(this.#n + other.#n);
  }

  sub(other: BN): BN {
    return new BN(this.#n - other.#n);
  }

  mul(other: BN): BN {
    return new BN(this.#n * other.#n);
  }

  /** Truncating division, as bn.js's div. */
  div(other: BN): BN {
    return new BN(this.#n / other.#n);
  }

  /** bn.js's mod keeps the dividend's sign; umod is always non-negative. */
  mod(other: BN): BN {
    return new BN(this.#n % other.#n);
  }

  umod(other: BN): BN {
    return new BN(mod(this.#n, other.#n));
  }

  pow(exponent: BN): BN {
    return new BN(this.#n ** exponent.#n);
  }

  eq(other: BN): boolean {
    return this.#n === other.#n;
  }

  cmp(other: BN): -1 | 0 | 1 {
    return this.#n < other.#n ? -1 : this.#n > other.#n ? 1 : 0;
  }

  isZero(): boolean {
    return this.#n === 0n;
  }

  isEven(): boolean {
    return (this.#n & 1n) === 0n;
  }

  isOdd(): boolean {
    return !this.isEven();
  }

  bitLength(): number {
    const n = this.#n < 0n ? -this.#n : this.#n;
    return n === 0n ? 0 : n.toString(2).length;
  }

  byteLength(): number {
    return Math.ceil(this.bitLength() / 8);
  }

  toRed(red: Reduction): BN {
    return new BN(mod(this.#n, red.m), undefined, undefined, red);
  }

  fromRed(): BN {
    return new BN(this.#n);
  }

  redPow(exponent: BN): BN {
    const red = this.#red;
    if (!red) throw new Error('redPow works only with red numbers');
    return new BN(modPow(this.#n, exponent.#n, red.m), undefined, undefined, red);
  }

  /** bn.js refuses numbers past 53 bits; so does this. */
  toNumber(): number {
    if (this.bitLength() > 53) throw new RangeError('Number can only safely store up to 53 bits');
    return Number(this.#n);
  }

  toString(base: number | 'hex' = 10): string {
    return this.#n.toString(base === 'hex' ? 16 : base);
  }

  /** The magnitude as bytes, zero-padded to `length`; refuses a number that does not fit, as bn.js. */
  toArray(endian: 'be' | 'le' = 'be', length?: number): number[] {
    let n = this.#n < 0n ? -this.#n : this.#n;
    const size = Math.max(1, this.byteLength());
    const width = length ?? size;
    if (size > width) throw new RangeError('byte array longer than desired length');
    const bytes = new Array<number>(width).fill(0);
    for (let i = width - 1; i >= 0 && n > 0n; i--, n >>= 8n) bytes[i] = Number(n & 0xffn);
    return endian === 'le' ? bytes.reverse() : bytes;
  }

  toArrayLike<T>(Type: { from(bytes: number[]): T }, endian?: 'be' | 'le', length?: number): T {
    return Type.from(this.toArray(endian, length));
  }

  toBuffer(endian?: 'be' | 'le', length?: number): Buffer {
    return Buffer.from(this.toArray(endian, length));
  }
}
