/** A seeded random number generator, for tests and models that must repeat exactly. */

/**
 * mulberry32: small, fast, and the same sequence in [0, 1) for the same seed on every machine,
 * so a seeded run (a test's key ids, the partition model's arrivals) is reproducible.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
