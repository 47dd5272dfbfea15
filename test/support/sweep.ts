/**
 * How much of an exhaustive sweep a run covers. The slow project runs every case; the unit
 * project runs a seeded sample of each sweep, so it stays fast and still repeats exactly:
 * each sweep has its own seed, and KEYPOOL_SAMPLE_SEED=<n> draws other samples, as repeatable.
 */
import { prng } from './prng.js';

export interface Sweep {
  /** what a test name says it covers: "all", or "32 (seeded sample)" */
  readonly scope: string;
  /** the cases of `all` this run covers, in their order; `seed` keeps one sweep's sample apart from another's */
  pick<T>(all: readonly T[], seed: number): T[];
}

export const EVERY: Sweep = { scope: 'all', pick: (all) => [...all] };

const SEED_OFFSET = Number(process.env.KEYPOOL_SAMPLE_SEED ?? 0);

/** At most `size` cases of each sweep, drawn without repeats by a seeded partial Fisher-Yates shuffle. */
export function sampled(size: number): Sweep {
  return {
    scope: `${size} (seeded sample${SEED_OFFSET === 0 ? '' : `, KEYPOOL_SAMPLE_SEED=${SEED_OFFSET}`})`,
    pick<T>(all: readonly T[], seed: number): T[] {
      const random = prng(seed + SEED_OFFSET);
      const order = all.map((_, i) => i);
      const taken = Math.min(size, order.length);
      for (let i = 0; i < taken; i++) {
        const j = i + Math.floor(random() * (order.length - i));
        [order[i], order[j]] = [order[j] as number, order[i] as number];
      }
      return order
        .slice(0, taken)
        .sort((a, b) => a - b)
        .map((i) => all[i] as T);
    },
  };
}
