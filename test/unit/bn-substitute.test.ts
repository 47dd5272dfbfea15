/**
 * The bundles' substitute for bn.js (infra/bundle-substitutes/bn.ts) against bn.js itself, for
 * every operation the Encryption SDK's bundled modules call: the frame-length bytes of the AAD
 * and an unframed length read back (the sealing path), and the curve arithmetic of compressed
 * EC points (signed suites only, kept correct all the same).
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import BN from '../../infra/bundle-substitutes/bn.js';

/** The part of bn.js's API compared here (bn.js ships no types). */
interface RealBn {
  add(o: RealBn): RealBn;
  sub(o: RealBn): RealBn;
  mul(o: RealBn): RealBn;
  div(o: RealBn): RealBn;
  mod(o: RealBn): RealBn;
  pow(o: RealBn): RealBn;
  eq(o: RealBn): boolean;
  bitLength(): number;
  toNumber(): number;
  toString(base: number): string;
  toArray(endian: 'be' | 'le', length?: number): number[];
  toRed(red: unknown): RealBn;
  redPow(e: RealBn): RealBn;
  fromRed(): RealBn;
}
type RealBnClass = (new (value: number | string | number[], base?: number, endian?: 'be' | 'le') => RealBn) & {
  mont(m: RealBn): unknown;
};
const Real = createRequire(import.meta.url)('bn.js') as RealBnClass;

// Up to P-384 sizes.
const hex = fc.bigInt({ min: 1n, max: (1n << 384n) - 1n }).map((n) => n.toString(16));
const bytes = fc.uint8Array({ minLength: 0, maxLength: 12 });

describe('the bn.js substitute answers as bn.js', () => {
  it("writes a frame's content length as the same eight big-endian bytes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(new BN(n).toArray('be', 8)).toEqual(new Real(n).toArray('be', 8));
      }),
    );
  });

  it('reads bytes back to the same number, and refuses past 53 bits as bn.js does', () => {
    fc.assert(
      fc.property(bytes, (b) => {
        const real = new Real([...b], 16, 'be');
        const ours = new BN([...b], 16, 'be');
        if (real.bitLength() > 53) expect(() => ours.toNumber()).toThrow(/53 bits/);
        else expect(ours.toNumber()).toBe(real.toNumber());
      }),
    );
  });

  it('refuses a length that does not fit the bytes asked for', () => {
    expect(() => new Real(256).toArray('be', 1)).toThrow();
    expect(() => new BN(256).toArray('be', 1)).toThrow(/longer than desired/);
    expect(new BN(0).toArray('be')).toEqual(new Real(0).toArray('be'));
  });

  it('does the curve arithmetic of compressed points alike: add, sub, mul, div, mod, pow, modular pow', () => {
    fc.assert(
      fc.property(hex, hex, hex, fc.integer({ min: 0, max: 5 }), (a, b, m, e) => {
        const [ra, rb, rm] = [new Real(a, 16), new Real(b, 16), new Real(m, 16)];
        const [oa, ob, om] = [new BN(a, 16), new BN(b, 16), new BN(m, 16)];
        const same = (ours: BN, real: RealBn) => expect(ours.toString(16)).toBe(real.toString(16));
        same(oa.add(ob), ra.add(rb));
        same(oa.mul(ob), ra.mul(rb));
        same(oa.div(ob), ra.div(rb));
        same(oa.mod(om), ra.mod(rm));
        same(oa.add(ob).sub(ob), ra.add(rb).sub(rb));
        same(oa.pow(new BN(e)), ra.pow(new Real(e)));
        expect(oa.bitLength()).toBe(ra.bitLength());
        expect(oa.mod(om).eq(ob.mod(om))).toBe(ra.mod(rm).eq(rb.mod(rm)));
        // Montgomery reduction needs an odd modulus, as the curves' primes are.
        const odd = new Real(m, 16).mul(new Real(2)).add(new Real(1));
        const oddOurs = new BN(m, 16).mul(new BN(2)).add(new BN(1));
        same(oa.toRed(BN.mont(oddOurs)).redPow(ob).fromRed(), ra.toRed(Real.mont(odd)).redPow(rb).fromRed());
        expect(oa.toArray('be', 60)).toEqual(ra.toArray('be', 60));
      }),
      { numRuns: 60 },
    );
  });
});
