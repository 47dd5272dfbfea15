/** readAllPages, which the CLI's whole lists (keys, accounts) read through. */
import { describe, expect, it } from 'vitest';
import { readAllPages } from '../../lib/use-cases/page-cursor.js';

describe('readAllPages', () => {
  it("reads page after page, each from the last one's cursor, until a page has none", async () => {
    // Prepare
    const pages: Record<string, { rows: number[]; cursor: string | null }> = {
      first: { rows: [1, 2], cursor: 'b' },
      b: { rows: [], cursor: 'c' },
      c: { rows: [3], cursor: null },
    };
    const asked: (string | undefined)[] = [];
    // Act
    const all = await readAllPages(
      ({ cursor }) => {
        asked.push(cursor);
        return Promise.resolve(pages[cursor ?? 'first'] ?? { rows: [], cursor: null });
      },
      (page) => page.rows,
    );
    // Assess
    expect(all).toEqual([1, 2, 3]);
    expect(asked).toEqual([undefined, 'b', 'c']);
  });
});
