/** The Pacer (lib/use-cases/maintenance/pacer.ts): how fast maintenance asks the provider. */
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../lib/use-cases/maintenance/pacer.js';

describe('Pacer', () => {
  it('grants starts at least 1000/rate ms apart by its clock, and twice that after halve()', async () => {
    // Prepare
    let now = 0;
    const pacer = new Pacer({ rate: 5, clock: () => now, sleep: (ms) => Promise.resolve(void (now += ms)) });
    // Act
    const starts: number[] = [];
    for (let i = 0; i < 3; i++) if (await pacer.acquire()) starts.push(now);
    pacer.halve();
    for (let i = 0; i < 2; i++) if (await pacer.acquire()) starts.push(now);
    const late = await pacer.acquire(now + 10);
    // Assess
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] ?? 0));
    expect(gaps.slice(0, 2).every((g) => g >= 200)).toBe(true);
    expect(gaps.slice(2).every((g) => g >= 400)).toBe(true);
    expect(late).toBe(false);
  });
});
