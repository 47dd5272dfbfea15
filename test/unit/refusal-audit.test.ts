/**
 * The chaos suite's check of every refusal (test/support/audit.ts KeyTimeline): a 409 is false
 * only when the callers' own timeline shows a key certainly usable from the request's start to
 * its answer; anything that may have made the key unusable meanwhile clears the refusal.
 */
import { describe, expect, it } from 'vitest';
import { KeyTimeline } from '../support/audit.js';

const MAX_USES = 1;

/** A timeline where `a` and `b` have each taken maxUses + 1 writes at t=0..3 (both at the cap). */
function bothAtCap(): KeyTimeline {
  const timeline = new KeyTimeline();
  for (const [i, keyId] of ['a', 'a', 'b', 'b'].entries()) timeline.write(keyId, i);
  return timeline;
}

describe('a refusal', () => {
  it('is false while a key no lease ever wrote exists, and names it', () => {
    // Prepare
    const timeline = bothAtCap();
    timeline.refusal(10, 20);
    // Act
    const found = timeline.falseRefusals(['a', 'b', 'c'], MAX_USES);
    // Assess
    expect(found).toEqual([{ fromMs: 10, untilMs: 20, keyId: 'c' }]);
  });

  it('is honest while every key is at its cap', () => {
    // Prepare
    const timeline = bothAtCap();
    timeline.refusal(10, 20);
    // Act / Assess
    expect(timeline.falseRefusals(['a', 'b'], MAX_USES)).toEqual([]);
  });

  it('is false after a refund answered before it asked, honest when the refund was answered while it was decided', () => {
    // Prepare
    const before = bothAtCap();
    before.refund('a', 5);
    before.refusal(10, 20);
    const during = bothAtCap();
    during.refund('a', 15);
    during.refusal(10, 20);
    // Act / Assess
    expect(before.falseRefusals(['a', 'b'], MAX_USES)).toEqual([{ fromMs: 10, untilMs: 20, keyId: 'a' }]);
    expect(during.falseRefusals(['a', 'b'], MAX_USES)).toEqual([]);
  });

  it('is honest when a write that started before its answer may have taken the last use', () => {
    // Prepare: c has one use left, and a lease wrote to it while the refused one was decided
    const timeline = bothAtCap();
    timeline.write('c', 1);
    timeline.write('c', 15);
    timeline.refusal(10, 20);
    // Act / Assess
    expect(timeline.falseRefusals(['a', 'b', 'c'], MAX_USES)).toEqual([]);
  });

  it('is honest while a report may hold the only usable key out, false once that hold has ended', () => {
    // Prepare: c cools from 5 to 30 (a rate_limited report), d is out for good from 15
    const timeline = bothAtCap();
    timeline.hold('c', 5, 30);
    timeline.hold('d', 15, Infinity);
    timeline.refusal(10, 20);
    timeline.refusal(40, 50);
    // Act
    const found = timeline.falseRefusals(['a', 'b', 'c', 'd'], MAX_USES);
    // Assess
    expect(found).toEqual([{ fromMs: 40, untilMs: 50, keyId: 'c' }]);
    expect(timeline.refusals).toBe(2);
  });
});
