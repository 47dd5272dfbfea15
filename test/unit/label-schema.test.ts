/**
 * Labels are shown to operators (`keypool list`, the API's key views): no character may
 * change how the text around it reads, neither a control (Cc) nor a format character (Cf),
 * such as U+202E RIGHT-TO-LEFT OVERRIDE, which makes "key-for-evil\u202Eodp" display as
 * "key-for-evilpdo", nor a line or paragraph separator (Zl, Zp), nor a character that renders
 * as nothing (Unicode's default-ignorable code points, such as the Hangul filler U+3164, and
 * U+2800 BRAILLE PATTERN BLANK), which makes a label look empty or like another one.
 */
import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { Label } from '../../lib/domain/primitives.js';

function problem(label: string): string | undefined {
  const result = Label.safeParse(label);
  return result.success ? undefined : z.prettifyError(result.error);
}

describe('Label schema', () => {
  it.each([
    ['U+202E right-to-left override', 'invoice\u202Efdp.exe'],
    ['U+202D left-to-right override', 'a\u202Db'],
    ['U+2066 left-to-right isolate', 'a\u2066b'],
    ['U+200B zero-width space', 'ops\u200B'],
    ['U+200D zero-width joiner', 'o\u200Dps'],
    ['U+FEFF byte-order mark', '\uFEFFops'],
    ['U+00AD soft hyphen', 'op\u00ADs'],
    ['U+E0001 language tag (astral)', 'ops\u{E0001}'],
    ['a newline (control)', 'ops\nroot'],
    ['an escape (control)', 'ops\u001b[31m'],
    ['DEL (control)', 'ops\u007f'],
    ['U+2028 line separator', 'ops\u2028root'],
    ['U+2029 paragraph separator', 'ops\u2029root'],
    ['U+3164 Hangul filler (renders as nothing)', '\u3164'],
    ['U+115F Hangul choseong filler', 'ops\u115F'],
    ['U+1160 Hangul jungseong filler', 'o\u1160ps'],
    ['U+FFA0 halfwidth Hangul filler', '\uFFA0ops'],
    ['U+034F combining grapheme joiner', 'op\u034Fs'],
    ['U+17B4 Khmer vowel inherent (invisible)', 'ops\u17B4'],
    ['U+2800 braille blank (a blank that is not a space)', '\u2800'],
    ['a lone surrogate (not a character)', 'ops\uD800'],
  ])('refuses a label with %s', (_name, label) => {
    // Act
    const why = problem(label);
    // Assess
    expect(why).toContain('a label is visible text: no control, format, separator or invisible characters');
  });

  it.each([
    ['ops'],
    ['team a / prod #2'],
    ['équipe café'],
    ['日本語のラベル'],
    ['emoji 🔑'],
    [''],
    ['an emoji with its presentation selector ❤\uFE0F'],
    ['an ideographic space 東京\u3000本社'],
    ['a Hangul label 한국어'],
  ])('accepts the visible label %j', (label) => {
    // Act / Assess
    expect(problem(label)).toBeUndefined();
  });

  it('still refuses more than 128 characters', () => {
    expect(Label.safeParse('x'.repeat(129)).success).toBe(false);
    expect(Label.safeParse('x'.repeat(128)).success).toBe(true);
  });
});
