/**
 * The rule the local server's edges apply to a query as sent: each name and value must
 * percent-decode to UTF-8; what is text passes, whatever else it looks like.
 */
import { describe, expect, it } from 'vitest';
import { InvalidRequest } from '../../lib/domain/errors.js';
import { assertQueryText } from '../../lib/http/query-text.js';

/** The place named by the refusal of `query`, or undefined when it passes. */
function refusedAt(query: string): string | undefined {
  try {
    assertQueryText(query);
    return undefined;
  } catch (error) {
    if (!(error instanceof InvalidRequest)) throw error;
    return error.details[0]?.path;
  }
}

describe('a query as sent', () => {
  it.each([
    ['empty', ''],
    ['plain', 'a=1&b=two'],
    ['UTF-8 escapes', 'prompt=%E2%82%AC&fish=%F0%9F%90%9F'],
    ['a bare % (as URLs read it: itself)', 'a=100%&b=%zz&c=%4'],
    ['a name alone, an empty value, repeats', 'flag&x=&x=1&&'],
  ])('passes when it is text: %s', (_why, query) => {
    // Act
    const place = refusedAt(query);
    // Assess
    expect(place).toBeUndefined();
  });

  it.each([
    ['a value of one byte that starts nothing', 'ok=1&prompt=%FF', 'query.prompt'],
    ['a value cut mid-character', 'prompt=%E2%82', 'query.prompt'],
    ["a lone surrogate's bytes", 'p=%ED%A0%80', 'query.p'],
    ['an overlong encoding of /', 'p=%C0%AF', 'query.p'],
    ['a name', '%FF=1', 'query'],
    ['a name alone', 'ok&%C3', 'query'],
    ['a value whose name is encoded, + read as a space', 'my+na%6De=%FF', 'query.my name'],
  ])('is refused, naming its place: %s', (_why, query, where) => {
    // Act
    const place = refusedAt(query);
    // Assess
    expect(place).toBe(where);
  });
});
