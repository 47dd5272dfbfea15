/**
 * keypool's conversion of items to DynamoDB's JSON and back (lib/adapters/dynamo-values.ts)
 * against the SDK's own (@aws-sdk/util-dynamodb: marshall with removeUndefinedValues, unmarshall
 * without wrapNumbers), value by value: the same attribute values on the wire, the same plain
 * values read back, and a refusal wherever the SDK refuses. Where keypool refuses what the SDK
 * would let through, the test says so and asserts keypool's refusal.
 */
import { type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { fromWireItem, toWireItem } from '../../lib/adapters/dynamo-values.js';
import { sdkWireItem } from '../support/dynamo-json.js';

const MARSHALL = { removeUndefinedValues: true } as const;

/** DynamoDB's JSON as the SDK's deserializer hands it to unmarshall: every B and BS member as a Uint8Array. */
function asSdkReads(value: unknown, key?: string): unknown {
  if (key === 'B' && typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  if (key === 'BS' && Array.isArray(value)) return value.map((member) => asSdkReads(member, 'B'));
  if (Array.isArray(value)) return value.map((entry) => asSdkReads(entry));
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([name, field]) => [name, asSdkReads(field, name)]));
  return value;
}

const sdkRead = (wire: Record<string, unknown>): unknown =>
  unmarshall(asSdkReads(wire) as Record<string, AttributeValue>);

/** Whether `call` throws. */
const refuses = (call: () => unknown): boolean => {
  try {
    call();
    return false;
  } catch {
    return true;
  }
};

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const bare = Object.assign(Object.create(null) as Record<string, unknown>, { inside: 'no prototype' });

/** Values both conversions accept, each written and read back the same way. */
const ACCEPTED: [string, unknown][] = [
  ['a string', 'sk-test-abc'],
  ['an empty string', ''],
  ['a string outside ASCII', 'ключ 🔑 "quoted" \\ \n'],
  ['zero', 0],
  ['negative zero', -0],
  ['a positive integer', 42],
  ['a negative integer', -17],
  ['a float', 3.14159],
  ['a negative float', -0.5],
  ['a small float written in exponent form', 1e-7],
  ['the largest safe integer', Number.MAX_SAFE_INTEGER],
  ['the smallest safe integer', Number.MIN_SAFE_INTEGER],
  ['a small bigint', 12n],
  ['a bigint past 2^53', 2n ** 63n],
  ['a negative bigint past -2^53', -(2n ** 70n) - 1n],
  ['true', true],
  ['false', false],
  ['null', null],
  ['bytes', new Uint8Array([0, 1, 127, 128, 255])],
  ['no bytes', new Uint8Array(0)],
  ['a Buffer', Buffer.from('sealed secret')],
  ['a view into a larger buffer', new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4)],
  ['a nested map', { a: { b: { c: 'deep', n: 1 } }, empty: {} }],
  ['a list of every kind', ['s', 1, true, null, new Uint8Array([1]), [2, [3]], { m: 'x' }]],
  ['an empty list', []],
  ['a map without a prototype', bare],
  ['a map with an undefined field', { kept: 1, dropped: undefined }],
  ['a list with an undefined entry', [1, undefined, 2]],
  ['a string set', new Set(['a', 'b', 'c'])],
  ['a number set', new Set([1, 2.5, -3, 0])],
  ['a bigint set', new Set([1n, 2n ** 60n])],
  ['a byte set', new Set([new Uint8Array([1, 2]), new Uint8Array([3])])],
  ['a set with an undefined member', new Set(['a', undefined, 'b'])],
];

describe('values keypool writes, against the SDK', () => {
  it.each(ACCEPTED)('writes %s as the SDK does', (_label, value) => {
    // Prepare
    const item = { keyId: 'k-1', value };
    // Act
    const ours = toWireItem(item);
    // Assess: the same JSON on the wire, once the SDK's bytes are in base64 as its serializer sends them.
    expect(ours).toEqual(sdkWireItem(item));
    expect(JSON.parse(JSON.stringify(ours))).toEqual(ours);
  });

  it.each(ACCEPTED)('reads %s back as the SDK does', (_label, value) => {
    // Prepare
    const wire = toWireItem({ keyId: 'k-1', value });
    // Act
    const ours = fromWireItem(JSON.parse(JSON.stringify(wire)) as Record<string, unknown>);
    // Assess
    expect(ours).toStrictEqual(sdkRead(wire));
  });

  it('leaves out an undefined field of the item itself, as removeUndefinedValues does', () => {
    // Act
    const ours = toWireItem({ keyId: 'k-1', note: undefined });
    // Assess
    expect(ours).toEqual({ keyId: { S: 'k-1' } });
    expect(sdkWireItem({ keyId: 'k-1', note: undefined })).toEqual(ours);
  });

  it('writes numbers in the text the SDK writes, and a bigint in all its digits', () => {
    // Act
    const ours = toWireItem({ a: 1e-7, b: -0, c: 2n ** 64n, d: 0.1 + 0.2 });
    // Assess
    expect(ours).toEqual({
      a: { N: '1e-7' },
      b: { N: '0' },
      c: { N: '18446744073709551616' },
      d: { N: '0.30000000000000004' },
    });
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['an integer past 2^53 as a number', 2 ** 53],
    ['an integer below -2^53 as a number', -(2 ** 53)],
    ['a huge float', 1.7976931348623157e308],
    ['an empty set', new Set()],
    ['a set of nothing but undefined', new Set([undefined])],
    ['a set holding NaN', new Set([1, Number.NaN])],
    ['a Date', new Date(0)],
    ['a class instance', new Point(1, 2)],
    ['a symbol', Symbol('s')],
    ['a Date inside a list', [new Date(0)]],
    ['a class instance inside a map', { at: new Point(1, 2) }],
  ] as [string, unknown][])('refuses %s, as the SDK does', (_label, value) => {
    // Prepare
    const item = { keyId: 'k-1', value };
    // Act and Assess
    expect(refuses(() => marshall(item, MARSHALL))).toBe(true);
    expect(() => toWireItem(item)).toThrow(TypeError);
  });

  // Where keypool is stricter than the SDK, on purpose: each of these would reach the table as
  // something other than what the caller holds (a function silently dropped, a mixed set's
  // numbers turned into strings, a Map or a boxed value whose type is lost on the way back, a
  // typed array of wider elements read back as bytes), so keypool refuses it.
  it.each([
    ['a function field (the SDK drops it)', { f: () => 1 }],
    ['a function in a list (the SDK drops it)', [1, () => 2]],
    ['a set of strings and numbers (the SDK makes the numbers strings)', new Set(['a', 1])],
    ['a Map (the SDK writes it as a map and reads back an object)', new Map([['a', 1]])],
    ['a boxed string (the SDK writes it as a string)', Object('boxed') as unknown],
    ['an Int16Array (the SDK writes it as bytes)', new Int16Array([1, -1])],
    ['an ArrayBuffer (the SDK writes it as bytes)', new ArrayBuffer(2)],
  ] as [string, unknown][])('refuses %s, where the SDK does not', (_label, value) => {
    // Prepare
    const item = { keyId: 'k-1', value };
    // Act and Assess
    expect(refuses(() => marshall(item, MARSHALL))).toBe(false);
    expect(() => toWireItem(item)).toThrow(TypeError);
  });
});

describe('values keypool reads, against the SDK', () => {
  it.each([
    ['an integer past 2^53', '9007199254740993'],
    ['an integer below -2^53', '-9007199254740993'],
    ['DynamoDB’s 38 digits', '12345678901234567890123456789012345678'],
    ['a decimal', '0.1'],
    ['an exponent', '1E+2'],
    ['a negative exponent', '-2.5e-3'],
  ])('reads %s as the SDK does', (_label, text) => {
    // Prepare
    const wire = { n: { N: text }, ns: { NS: [text, '1'] } };
    // Act
    const ours = fromWireItem(wire);
    // Assess: a number where it is exact as one, else a bigint, as unmarshall gives it
    expect(ours).toStrictEqual(sdkRead(wire));
  });

  it.each([
    ['a fraction past 2^53', { N: '12345678901234567.5' }],
    ['an exponent past 2^53', { N: '1.5e300' }],
    ['a type DynamoDB has not', { Z: '1' }],
    ['an attribute with no type', {}],
  ])('refuses %s, as the SDK does', (_label, attribute) => {
    // Prepare
    const wire = { a: attribute };
    // Act and Assess
    expect(refuses(() => sdkRead(wire))).toBe(true);
    expect(refuses(() => fromWireItem(wire))).toBe(true);
  });

  // On purpose: DynamoDB never answers a number it cannot store, so a non-finite one is not DynamoDB's.
  it.each([
    ['a number past the double range (the SDK reads Infinity)', '1e400'],
    ['NaN (the SDK reads NaN)', 'NaN'],
  ])('refuses %s, where the SDK does not', (_label, text) => {
    // Prepare
    const wire = { a: { N: text } };
    // Act and Assess
    expect(refuses(() => sdkRead(wire))).toBe(false);
    expect(() => fromWireItem(wire)).toThrow(RangeError);
  });

  it('reads bytes as a plain Uint8Array of their own, not a Buffer or a view of a shared pool', () => {
    // Prepare
    const wire = { b: { B: 'AAEC/w==' }, bs: { BS: ['AQ==', 'AgM='] }, l: { L: [{ B: 'BA==' }] } };
    // Act
    const read = fromWireItem(wire);
    const bytes = [read.b, ...(read.bs as Set<Uint8Array>), ...(read.l as Uint8Array[])];
    // Assess
    expect(bytes).toHaveLength(4);
    for (const value of bytes) {
      expect(Object.getPrototypeOf(value)).toBe(Uint8Array.prototype);
      expect(Buffer.isBuffer(value)).toBe(false);
      const view = value as Uint8Array;
      expect(view.byteOffset).toBe(0);
      expect(view.buffer.byteLength).toBe(view.byteLength);
    }
    expect([...(read.b as Uint8Array)]).toEqual([0, 1, 2, 255]);
  });

  it('reads back what it wrote: every kind at once', () => {
    // Prepare
    const item = {
      keyId: 'k-1',
      s: 'x',
      n: -1.25,
      big: 2n ** 60n,
      t: true,
      z: null,
      b: new Uint8Array([1, 2, 3]),
      m: { l: [1, 'two', { three: new Set(['3']) }] },
      ss: new Set(['a']),
      ns: new Set([1, 2]),
      bs: new Set([new Uint8Array([7])]),
    };
    // Act
    const back = fromWireItem(JSON.parse(JSON.stringify(toWireItem(item))) as Record<string, unknown>);
    // Assess
    expect(back).toStrictEqual(item);
  });
});
