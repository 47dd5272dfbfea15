// The Python client maps every error code the API documents: a class of its own, or one of the
// codes it names generic (KeypoolApiError carries them by `code`). Read from the package's source
// as text, so the unit project needs no Python; the Python tests check the classes behave.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../lib/http/errors.js';

const source = readFileSync(new URL('../../clients/python/src/keypool_client/errors.py', import.meta.url), 'utf8');

function block(start: string, end: string): string {
  const from = source.indexOf(start);
  return from < 0 ? '' : source.slice(from, source.indexOf(end, from));
}

describe('the Python client error map', () => {
  it('has a class or a generic entry for every code the API documents, and no code the API lacks', () => {
    // Prepare
    const mapped = [...block('_BY_CODE', '}').matchAll(/^\s+"([a-z_]+)":/gm)].map((m) => m[1]);
    const generic = [...block('GENERIC_CODES', ')').matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
    // Act
    const covered = [...mapped, ...generic].sort();
    // Assess
    expect(mapped.length).toBeGreaterThan(0);
    expect(covered).toEqual([...ERROR_CODES].sort());
  });
});
