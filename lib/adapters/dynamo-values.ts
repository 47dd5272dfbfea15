/**
 * Plain JavaScript values to DynamoDB's JSON attribute values and back, as the SDK's document
 * client converts them (util-dynamodb with removeUndefinedValues, numbers as JavaScript numbers):
 *
 *   string S · number and bigint N · boolean BOOL · null NULL · Uint8Array B (base64 on the
 *   wire) · array L · plain object M · Set of strings SS, of numbers NS, of byte arrays BS
 *
 * An undefined field of a map, entry of a list or member of a set is left out; a number that is
 * not finite or not an exact integer past 2^53, an empty set, and anything else (a Date, a class
 * instance) are refused, as there. Read back, a number past 2^53 is a bigint, as unmarshall
 * gives it.
 */

/** An item (or a key) as plain values. */
export type WireItem = Record<string, unknown>;

type AttributeJson =
  | { S: string }
  | { N: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { B: string }
  | { L: AttributeJson[] }
  | { M: Record<string, AttributeJson> }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] };

function numberText(value: number | bigint): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`special numeric value ${value} cannot be stored`);
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      throw new TypeError(`number ${value} is past Number.MAX_SAFE_INTEGER: use a bigint`);
  }
  return String(value);
}

const base64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function toSet(values: Set<unknown>): AttributeJson {
  // An undefined member is left out, as an undefined entry of a list is.
  const members = [...values].filter((member) => member !== undefined);
  const [first] = members;
  if (first === undefined) throw new TypeError('an empty set cannot be stored');
  if (members.every((member) => typeof member === 'string')) return { SS: members };
  if (members.every((member) => typeof member === 'number' || typeof member === 'bigint'))
    return { NS: members.map((member) => numberText(member)) };
  if (members.every((member) => member instanceof Uint8Array)) return { BS: members.map((member) => base64(member)) };
  throw new TypeError('a set must hold only strings, only numbers or only byte arrays');
}

function toAttribute(value: unknown): AttributeJson {
  switch (typeof value) {
    case 'string':
      return { S: value };
    case 'number':
    case 'bigint':
      return { N: numberText(value) };
    case 'boolean':
      return { BOOL: value };
    case 'object':
      if (value === null) return { NULL: true };
      if (value instanceof Uint8Array) return { B: base64(value) };
      if (Array.isArray(value)) return { L: value.filter((entry) => entry !== undefined).map(toAttribute) };
      if (value instanceof Set) return toSet(value);
      if (isPlainObject(value)) return { M: toWireItem(value) as Record<string, AttributeJson> };
      throw new TypeError(`a ${value.constructor.name} cannot be stored: convert it to plain values first`);
    default:
      throw new TypeError(`a ${typeof value} cannot be stored`);
  }
}

/** An item as DynamoDB's JSON spells it; undefined fields left out. */
export function toWireItem(item: WireItem): Record<string, unknown> {
  const out: Record<string, AttributeJson> = {};
  for (const [name, value] of Object.entries(item)) if (value !== undefined) out[name] = toAttribute(value);
  return out;
}

/**
 * A number as unmarshall reads it: a JavaScript number within the safe integers' range, else a
 * bigint; a fraction past that range, or anything not finite, is refused rather than read inexactly.
 */
function fromNumber(text: string): number | bigint {
  const value = Number(text);
  if (!Number.isFinite(value))
    throw new RangeError(`number ${text} cannot be read as a JavaScript number without losing precision`);
  if (value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER) return value;
  try {
    return BigInt(text);
  } catch {
    throw new RangeError(`number ${text} is past 2^53 and not an integer: it cannot be read without losing precision`);
  }
}

/** Bytes of their own, not a view of Node's shared pool. */
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

function fromAttribute(attribute: unknown): unknown {
  const value = attribute as Partial<Record<string, unknown>>;
  if (typeof value.S === 'string') return value.S;
  if (typeof value.N === 'string') return fromNumber(value.N);
  if (typeof value.BOOL === 'boolean') return value.BOOL;
  if (value.NULL === true) return null;
  if (typeof value.B === 'string') return fromBase64(value.B);
  if (Array.isArray(value.L)) return value.L.map(fromAttribute);
  if (typeof value.M === 'object' && value.M !== null) return fromWireItem(value.M as Record<string, unknown>);
  if (Array.isArray(value.SS)) return new Set(value.SS as string[]);
  if (Array.isArray(value.NS)) return new Set((value.NS as string[]).map(fromNumber));
  if (Array.isArray(value.BS)) return new Set((value.BS as string[]).map(fromBase64));
  throw new TypeError(`an attribute value of no known type: ${Object.keys(value).join(', ') || 'empty'}`);
}

/** An item from DynamoDB's JSON as plain values. */
export function fromWireItem(item: Record<string, unknown>): WireItem {
  const out: WireItem = {};
  for (const [name, attribute] of Object.entries(item)) out[name] = fromAttribute(attribute);
  return out;
}
