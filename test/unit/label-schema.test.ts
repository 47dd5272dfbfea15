/**
 * Labels are shown to operators (`keypool list`, the API's key views): no character may
 * change how the text around it reads, neither a control (Cc) nor a format character (Cf),
 * such as U+202E RIGHT-TO-LEFT OVERRIDE, which makes "key-for-evil\u202Eodp" display as
 * "key-for-evilpdo".
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
  ])('refuses a label with %s', (_name, label) => {
    // Act
    const why = problem(label);
    // Assess
    expect(why).toContain('a label has no control or format characters');
  });

  it.each([['ops'], ['team a / prod #2'], ['équipe café'], ['日本語のラベル'], ['emoji 🔑'], ['']])(
    'accepts the visible label %j',
    (label) => {
      // Act / Assess
      expect(problem(label)).toBeUndefined();
    },
  );

  it('still refuses more than 128 characters', () => {
    expect(Label.safeParse('x'.repeat(129)).success).toBe(false);
    expect(Label.safeParse('x'.repeat(128)).success).toBe(true);
  });
});
