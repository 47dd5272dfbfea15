/** The opaque cursors of paged lists: the last item's id, as base64url JSON under one letter. */
import { InvalidRequest } from '../domain/errors.js';

/** A list page's size when the query names none, and the most it may name (the query schema's 1..1000). */
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/** A cursor that continues after `value` (`tag`: the list's letter, so cursors of two lists differ). */
export function encodeCursor(tag: string, value: string): string {
  return Buffer.from(JSON.stringify({ [tag]: value }), 'utf8').toString('base64url');
}

/** The value a cursor of this list holds; a cursor this API did not return is refused (400). */
export function decodeCursor(tag: string, cursor: string, valid: (value: string) => boolean): string {
  let value: unknown;
  try {
    value = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>)[tag];
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string' || !valid(value)) {
    throw new InvalidRequest('cursor is not one this API returned', [
      { path: 'cursor', message: 'unrecognised cursor' },
    ]);
  }
  return value;
}

/**
 * Every item of a paged list, in order: `read` is given each page's cursor (none for the first)
 * and `items` picks a page's items, until a page returns no cursor.
 */
export async function readAllPages<P extends { cursor: string | null }, T>(
  read: (at: { cursor?: string }) => Promise<P>,
  items: (page: P) => readonly T[],
): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  do {
    const page: P = await read(cursor ? { cursor } : {});
    all.push(...items(page));
    cursor = page.cursor;
  } while (cursor);
  return all;
}
