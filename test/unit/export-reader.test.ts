import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UnreadableSource } from '../../lib/domain/errors.js';
import { checkExport, MAX_ROW_BYTES, readExport } from '../../lib/adapters/export-reader.js';
import type { SourceRow } from '../../lib/ports/migration-source.js';

/** The text as a stream of chunks of `size` bytes, so every token can straddle a boundary. */
function chunks(text: string | Buffer, size = 7): AsyncIterable<Uint8Array> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts, { objectMode: true }) as AsyncIterable<Uint8Array>;
}

async function rows(text: string | Buffer, size = 7): Promise<SourceRow[]> {
  const out: SourceRow[] = [];
  for await (const row of readExport(chunks(text, size))) out.push(row);
  return out;
}

const DOCS = [
  { api_key: 'sk-test-a', credits_left: { $numberDouble: '22.5' } },
  { api_key: 'sk-test-b, with "quotes" and ] brackets }', usage_count: { $numberInt: '3' }, tags: [[1], { x: '\\' }] },
  { api_key: 'sk-test-ü', created_at: { $date: { $numberLong: '1717243200000' } } },
];

describe('line-per-document exports', () => {
  it('yields each line with its 1-based line number, skipping (but counting) blank lines, with CRLF', async () => {
    // Prepare
    const text = `${JSON.stringify(DOCS[0])}\r\n\r\n${JSON.stringify(DOCS[1])}\n${JSON.stringify(DOCS[2])}`;
    // Act
    const result = await rows(text, 5);
    // Assess
    expect(result).toEqual([
      { position: 1, value: DOCS[0] },
      { position: 3, value: DOCS[1] },
      { position: 4, value: DOCS[2] },
    ]);
  });

  it('reports a malformed line as that line, without echoing it, and goes on', async () => {
    // Prepare
    const text = `${JSON.stringify(DOCS[0])}\n{"api_key": "sk-test-secret-in-a-broken-line"\n${JSON.stringify(DOCS[2])}\n`;
    // Act
    const result = await rows(text);
    // Assess
    expect(result[1]).toEqual({ position: 2, error: 'not valid JSON' });
    expect(result).toHaveLength(3);
    expect(JSON.stringify(result[1])).not.toContain('sk-test');
  });

  it('reports a line over the size limit as invalid instead of holding it', async () => {
    // Prepare
    const text = `{"api_key":"${'x'.repeat(MAX_ROW_BYTES + 10)}"}\n${JSON.stringify(DOCS[0])}\n`;
    // Act
    const result = await rows(text, 64 * 1024);
    // Assess
    expect(result).toEqual([
      { position: 1, error: `larger than ${MAX_ROW_BYTES} bytes` },
      { position: 2, value: DOCS[0] },
    ]);
  });

  it('skips a UTF-8 byte order mark', async () => {
    const result = await rows(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(DOCS[0]))]),
      2,
    );
    expect(result).toEqual([{ position: 1, value: DOCS[0] }]);
  });
});

describe('--jsonArray exports', () => {
  it.each([1, 3, 7, 4096])(
    'yields each element with its 1-based position, whatever the chunking (%i-byte chunks)',
    async (size) => {
      // Prepare: pretty and compact forms of the same array
      const compact = JSON.stringify(DOCS);
      const pretty = JSON.stringify(DOCS, null, 2);
      // Act
      const fromCompact = await rows(compact, size);
      const fromPretty = await rows(`\n ${pretty}\n`, size);
      // Assess
      const expected = DOCS.map((value, i) => ({ position: i + 1, value }));
      expect(fromCompact).toEqual(expected);
      expect(fromPretty).toEqual(expected);
    },
  );

  it('reports a malformed or non-object element as invalid and goes on', async () => {
    // Prepare
    const text = `[{"api_key":"sk-test-a"}, {"api_key" "sk-test-b"}, 42, "sk-test-c", {"api_key":"sk-test-d"}]`;
    // Act
    const result = await rows(text);
    // Assess
    expect(result).toEqual([
      { position: 1, value: { api_key: 'sk-test-a' } },
      { position: 2, error: 'not valid JSON' },
      { position: 3, value: 42 },
      { position: 4, value: 'sk-test-c' },
      { position: 5, value: { api_key: 'sk-test-d' } },
    ]);
  });

  it('reads an empty array and an empty file as no rows', async () => {
    expect(await rows('[ ]')).toEqual([]);
    expect(await rows('  \n')).toEqual([]);
  });

  it.each([
    ['a truncated array', '[{"api_key":"sk-test-a"},{"api_key":"sk-'],
    ['a missing closing bracket', '[{"api_key":"sk-test-a"}'],
    ['a mismatched bracket', '[{"api_key":"sk-test-a"]]'],
    ['junk between elements', '[{"api_key":"sk-test-a"} x {"api_key":"sk-test-b"}]'],
    ['a trailing comma', '[{"api_key":"sk-test-a"},]'],
    ['content after the array', '[{"api_key":"sk-test-a"}] {"api_key":"sk-test-b"}'],
  ])('finds %s unreadable in the pre-write check, without quoting the file', async (_name, text) => {
    // Act
    const check = checkExport(chunks(text));
    // Assess
    await expect(check).rejects.toBeInstanceOf(UnreadableSource);
    await expect(checkExport(chunks(text))).rejects.not.toThrow(/sk-test/);
  });

  it('passes the check for a well-formed array and for a line-per-document file with a bad line', async () => {
    expect(await checkExport(chunks(JSON.stringify(DOCS)))).toBe('array');
    expect(await checkExport(chunks(`${JSON.stringify(DOCS[0])}\nnot json\n`))).toBe('lines');
  });
});

describe('files that are not exports at all', () => {
  it.each([
    ['CSV', 'api_key,credits_left\nsk-test-a,25\n'],
    ['gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00])],
    ['UTF-16', Buffer.from('\ufeff[{}]', 'utf16le')],
  ])('rejects %s before reading rows', async (_name, content) => {
    await expect(checkExport(chunks(content))).rejects.toThrow(/not a mongoexport file/);
    await expect(rows(content)).rejects.toBeInstanceOf(UnreadableSource);
  });
});
