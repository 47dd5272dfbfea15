/**
 * Streaming readers for a `mongoexport` file: one JSON document per line, or one JSON array
 * (`--jsonArray`, usually all on one line). Neither ever holds more than one row (at most
 * MAX_ROW_BYTES) and the chunk being scanned: memory stays flat however large the export.
 *
 * Positions (the report's `line`): for line-per-document exports the 1-based line number;
 * for an array the element's 1-based position, which is the line the same document has in the
 * line-per-document export of the same collection (an array export is one line, so its line
 * number would say nothing).
 *
 * The array tokenizer only finds element boundaries (strings, escapes, bracket nesting);
 * each element is then parsed with JSON.parse. A malformed element is an invalid row; a
 * broken structure (unclosed array, mismatched bracket, junk between elements) makes the
 * whole file unreadable: `checkExport` scans the file for exactly that before anything is
 * written.
 */
import { UnreadableSource } from '../domain/errors.js';
import type { ReadOptions, SourceRow } from '../ports/migration-source.js';

export const MAX_ROW_BYTES = 1024 * 1024;
const MAX_DEPTH = 10_000;

export type ExportFormat = 'lines' | 'array' | 'empty';

const NEWLINE = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === NEWLINE || byte === CR || byte === 0x09;
}

/** The next chunk; an I/O failure becomes UnreadableSource, which ends the run before any write. */
async function readNext(iterator: AsyncIterator<Uint8Array>): Promise<IteratorResult<Uint8Array>> {
  try {
    return await iterator.next();
  } catch (error) {
    throw new UnreadableSource(`cannot read the export: ${describeIoError(error)}`);
  }
}

/** The chunks, after peeking at the first meaningful byte (a UTF-8 BOM and blanks skipped). */
async function detect(
  chunks: AsyncIterable<Uint8Array>,
  options: ReadOptions,
): Promise<{ format: ExportFormat; rest: AsyncIterable<Buffer> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const held: Buffer[] = [];
  let size = 0;
  let bomChecked = false;
  for (;;) {
    const next = await readNext(iterator);
    if (!next.done) {
      held.push(Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength));
      size += next.value.byteLength;
    }
    if (!bomChecked && (size >= 3 || next.done)) {
      // The byte order mark may straddle chunks: look at the first three bytes together.
      bomChecked = true;
      const head = Buffer.concat(held);
      held.length = 0;
      const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf;
      if (bom) options.onBytes?.(3);
      held.push(bom ? head.subarray(3) : head);
    }
    if (!bomChecked) continue;
    for (const chunk of held) {
      for (const byte of chunk) {
        if (isSpace(byte)) continue;
        if (byte === OPEN_OBJECT) return { format: 'lines', rest: replay(held, iterator, options) };
        if (byte === OPEN_ARRAY) return { format: 'array', rest: replay(held, iterator, options) };
        throw new UnreadableSource(
          'not a mongoexport file: it must start with "{" (one document per line) or "[" (--jsonArray)',
        );
      }
    }
    if (next.done) return { format: 'empty', rest: replay(held, undefined, options) };
  }
}

async function* replay(
  held: Buffer[],
  iterator: AsyncIterator<Uint8Array> | undefined,
  options: ReadOptions,
): AsyncGenerator<Buffer> {
  for (const chunk of held) {
    options.onBytes?.(chunk.length);
    yield chunk;
  }
  if (!iterator) return;
  for (;;) {
    const next = await readNext(iterator);
    if (next.done) return;
    options.onBytes?.(next.value.byteLength);
    yield Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
  }
}

function describeIoError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code ?? e.name;
}

function parseRow(position: number, text: string): SourceRow {
  try {
    return { position, value: JSON.parse(text) as unknown };
  } catch {
    // JSON.parse's message quotes the input, which may hold a secret: a fixed reason instead.
    return { position, error: 'not valid JSON' };
  }
}

const TOO_LARGE = `larger than ${MAX_ROW_BYTES} bytes`;

/** Rows of a line-per-document export: blank lines skipped but counted, `\r\n` accepted. */
async function* lineRows(chunks: AsyncIterable<Buffer>): AsyncGenerator<SourceRow> {
  let line = 0;
  let parts: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  const finish = (): SourceRow | undefined => {
    line++;
    const whole = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    parts = [];
    size = 0;
    if (tooLarge) {
      tooLarge = false;
      return { position: line, error: TOO_LARGE };
    }
    let end = whole.length;
    while (end > 0 && isSpace(whole[end - 1] as number)) end--;
    let start = 0;
    while (start < end && isSpace(whole[start] as number)) start++;
    if (start === end) return undefined;
    return parseRow(line, whole.toString('utf8', start, end));
  };
  for await (const chunk of chunks) {
    let from = 0;
    for (;;) {
      const at = chunk.indexOf(NEWLINE, from);
      const piece = chunk.subarray(from, at === -1 ? chunk.length : at);
      if (!tooLarge) {
        size += piece.length;
        if (size > MAX_ROW_BYTES) {
          tooLarge = true;
          parts = [];
        } else if (piece.length) parts.push(piece);
      }
      if (at === -1) break;
      const row = finish();
      if (row) yield row;
      from = at + 1;
    }
  }
  if (size > 0 || tooLarge) {
    const row = finish();
    if (row) yield row;
  }
}

type ArrayState = 'start' | 'first' | 'value' | 'element' | 'string' | 'scalar' | 'after' | 'end';

/**
 * Elements of a JSON array export. With `collect` false it only checks the structure (the
 * pre-write pass) and yields nothing.
 */
async function* arrayRows(chunks: AsyncIterable<Buffer>, collect: boolean): AsyncGenerator<SourceRow> {
  // Widened on purpose: `finish` moves it to 'after' from a closure, which narrowing does not see.
  let state = 'start' as ArrayState;
  let line = 1;
  let position = 0;
  const closers: number[] = [];
  let escaped = false;
  /** inside a string within an element (not a top-level string element) */
  let inString = false;
  let parts: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  const fail = (what: string): never => {
    throw new UnreadableSource(`the export is not a valid JSON array: ${what} (line ${line})`);
  };
  const take = (chunk: Buffer, from: number, to: number): void => {
    if (!collect || tooLarge) return;
    size += to - from;
    if (size > MAX_ROW_BYTES) {
      tooLarge = true;
      parts = [];
    } else if (to > from) parts.push(chunk.subarray(from, to));
  };
  const emit = (): SourceRow | undefined => {
    position++;
    if (!collect) return undefined;
    const text = parts.length === 1 ? (parts[0] as Buffer).toString('utf8') : Buffer.concat(parts).toString('utf8');
    const row = tooLarge ? { position, error: TOO_LARGE } : parseRow(position, text);
    parts = [];
    size = 0;
    tooLarge = false;
    return row;
  };

  for await (const chunk of chunks) {
    const rows: SourceRow[] = [];
    let elementStart = -1;
    /** The element that started at `elementStart` (or in an earlier chunk) ends before `end`. */
    const finish = (end: number): void => {
      take(chunk, Math.max(elementStart, 0), end);
      elementStart = -1;
      const row = emit();
      if (row) rows.push(row);
      state = 'after';
    };
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (byte === NEWLINE) line++;
      switch (state) {
        case 'start':
          if (byte === OPEN_ARRAY) state = 'first';
          else if (!isSpace(byte)) fail('expected "["');
          break;
        case 'first':
        case 'value':
          if (isSpace(byte)) break;
          if (byte === CLOSE_ARRAY) {
            if (state === 'value') fail('expected a value after ","');
            state = 'end';
            break;
          }
          if (byte === COMMA) fail('expected a value, found ","');
          elementStart = i;
          if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
            closers.push(byte === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY);
            state = 'element';
          } else if (byte === QUOTE) {
            state = 'string';
          } else {
            state = 'scalar';
          }
          break;
        case 'element':
          if (inString) {
            if (escaped) escaped = false;
            else if (byte === BACKSLASH) escaped = true;
            else if (byte === QUOTE) inString = false;
            break;
          }
          if (byte === QUOTE) inString = true;
          else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
            closers.push(byte === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY);
            if (closers.length > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
          } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
            if (closers.pop() !== byte) fail(`mismatched "${String.fromCharCode(byte)}"`);
            if (closers.length === 0) {
              finish(i + 1);
            }
          }
          break;
        case 'string':
          if (escaped) escaped = false;
          else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) {
            finish(i + 1);
          }
          break;
        case 'scalar':
          if (isSpace(byte) || byte === COMMA || byte === CLOSE_ARRAY) {
            finish(i);
            i--; // the delimiter belongs to the array
            if (byte === NEWLINE) line--;
          } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY || byte === CLOSE_OBJECT || byte === QUOTE) {
            fail(`unexpected "${String.fromCharCode(byte)}" in a value`);
          }
          break;
        case 'after':
          if (isSpace(byte)) break;
          if (byte === COMMA) state = 'value';
          else if (byte === CLOSE_ARRAY) state = 'end';
          else fail('expected "," or "]" after an element');
          break;
        case 'end':
          if (!isSpace(byte)) fail('unexpected content after the closing "]"');
          break;
      }
    }
    // An element that continues into the next chunk keeps what this chunk holds of it.
    if (state === 'element' || state === 'string' || state === 'scalar')
      take(chunk, Math.max(elementStart, 0), chunk.length);
    for (const row of rows) yield row;
  }
  if (state !== 'end') fail(state === 'start' ? 'no "["' : 'the array is not closed (is the file truncated?)');
}

/**
 * The rows of an export, streamed. Throws UnreadableSource when the file is not an export at
 * all or its array structure breaks; a malformed row is yielded as an error instead.
 */
export async function* readExport(
  chunks: AsyncIterable<Uint8Array>,
  options: ReadOptions = {},
): AsyncGenerator<SourceRow> {
  const { format, rest } = await detect(chunks, options);
  if (format === 'lines') yield* lineRows(rest);
  else if (format === 'array') yield* arrayRows(rest, true);
  else for await (const _ of rest); // drain for the byte count
}

/**
 * The pre-write pass: reads the whole export and throws UnreadableSource if it cannot be
 * read or parsed at all. Line-per-document exports need only the format check (a bad line
 * is an invalid row, not a broken file) but are read to the end too, so a read error
 * surfaces here rather than half-way through the writes.
 */
export async function checkExport(chunks: AsyncIterable<Uint8Array>): Promise<ExportFormat> {
  const { format, rest } = await detect(chunks, {});
  if (format === 'array') {
    for await (const _ of arrayRows(rest, false));
  } else {
    for await (const _ of rest);
  }
  return format;
}
