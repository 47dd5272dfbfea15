/**
 * The old system's rows, mapped to keypool keys. Pure: no I/O, no clock (the caller passes
 * the migration time). Every rule of issue 4's "Mapping" lives here and nowhere else:
 *
 *   api_key       required, the secret: a string the API accepts as a key (lib/domain/secret-rule.ts),
 *                 so "sk-...01 " or "sk-...01\r" is an invalid row, not a second key beside "sk-...01"
 *   usage_count   if present (newer than credits_left); else max(0, initialCredits - credits_left)
 *                 rounded up (a partial use counts as a use); neither: 0. A non-numeric or
 *                 negative usage_count, or a non-numeric credits_left, makes the row invalid.
 *   is_active     false -> disabled; anything else (absent included) -> active
 *   last_used, else last_checked, else none -> lastUsedAt; created_at, else the migration time -> createdAt;
 *                 a date after the migration time reads as the migration time
 *   other fields  ignored, counted once per distinct name (`_id` is expected and not counted)
 *
 * Values arrive as MongoDB Extended JSON v2 (relaxed or canonical) from an export, or as
 * unmarshalled DynamoDB attributes from a legacy table (its numbers read as exact
 * `{"$numberDecimal": "<digits>"}`, see lib/adapters/migration-sources.ts); `decodeExtended` makes both plain.
 * Invalid reasons are fixed phrases naming a field, never a value: a reason can never echo
 * a secret.
 */
import { API_KEY_MAX_LENGTH, API_KEY_MIN_LENGTH, isValidApiKey } from './secret-rule.js';

export const DEFAULT_INITIAL_CREDITS = 25;

/** Fields the mapping reads; `_id` is every export's document id and is expected, not "unknown". */
export const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  '_id',
  'api_key',
  'credits_left',
  'usage_count',
  'last_used',
  'last_checked',
  'is_active',
  'created_at',
]);

/**
 * Float noise in the old credits arithmetic (25 - 21.999999999999996) must not count as a
 * partial use; real fractional prices are far coarser than this.
 */
const FLOAT_NOISE = 1e-9;

/** A row as the old system held it, mapped: what keypool should know about the key. */
export interface MappedRow {
  apiKey: string;
  usageCount: number;
  disabled: boolean;
  /** ISO 8601, or null when the row never recorded a use */
  lastUsedAt: string | null;
  createdAt: string;
}

export type MapResult =
  { ok: true; row: MappedRow; unknownFields: string[] } | { ok: false; reason: string; unknownFields: string[] };

export interface MappingOptions {
  initialCredits: number;
  /** the migration time, ISO 8601: createdAt of rows without created_at */
  nowIso: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Longest number string read. Decimal128's longest form is 42 characters
 * ("-1.234567890123456789012345678901234E+6144"), DynamoDB's numbers hold 38 digits, a Python
 * float's repr at most 24: anything longer is no count, balance or date, only a way to make
 * parsing slow.
 */
export const MAX_NUMBER_LENGTH = 64;

/**
 * One number, unambiguously: each character can be taken by one part only, so a failed match
 * backtracks at most once per character (the old `\d+\.?\d*` let two groups share a digit run
 * and took quadratic time: 47 s for a 200 KB $numberLong).
 */
const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

function numberFromString(text: string): number {
  // Extended JSON's number strings: digits, a decimal, or Infinity/-Infinity/NaN for doubles.
  if (text.length > MAX_NUMBER_LENGTH) return NaN;
  if (text === 'Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  if (!NUMBER.test(text)) return NaN;
  return Number(text);
}

/**
 * One Extended JSON v2 value made plain: `{"$numberInt"|"$numberLong"|"$numberDouble"|"$numberDecimal": "<n>"}`
 * -> number, `{"$date": "<ISO>" | {"$numberLong": "<ms>"} | <ms>}` -> Date, `{"$oid": "<hex>"}`
 * -> string. Relaxed values (plain numbers, strings) pass through. A malformed wrapper becomes
 * NaN or an invalid Date, so the field it sits in is reported invalid. Other wrappers
 * (`$binary`, `$timestamp`, ...) stay objects: never a number, string or date.
 */
export function decodeExtended(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  const [wrapper] = keys as [string];
  const inner = value[wrapper];
  switch (wrapper) {
    case '$numberInt':
    case '$numberLong':
    case '$numberDouble':
    case '$numberDecimal':
      return typeof inner === 'string' ? numberFromString(inner) : NaN;
    case '$oid':
      return typeof inner === 'string' ? inner : value;
    case '$date': {
      if (typeof inner === 'string') return new Date(parseIsoDate(inner) ?? NaN);
      if (typeof inner === 'number') return new Date(inner);
      const ms = decodeExtended(inner);
      return new Date(typeof ms === 'number' && isPlainObject(inner) && '$numberLong' in inner ? ms : NaN);
    }
    default:
      return value;
  }
}

const ISO_LIKE = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Milliseconds for an ISO 8601 date as the old system wrote it: with `T` or a space (Python's
 * str(datetime)), up to microseconds, and without a zone meaning UTC (the old system stored
 * utcnow()). Anything else, including the loose formats Date.parse accepts, is undefined.
 */
export function parseIsoDate(text: string): number | undefined {
  const match = ISO_LIKE.exec(text.trim());
  if (!match) return undefined;
  const [, day, time, fraction, zone] = match;
  const millis = fraction ? `.${fraction.slice(1, 4).padEnd(3, '0')}` : '';
  const normalized = `${day}T${time ?? '00:00'}${time && time.length === 5 ? ':00' : ''}${millis}${normalizeZone(zone)}`;
  const ms = Date.parse(normalized);
  return Number.isNaN(ms) ? undefined : ms;
}

function normalizeZone(zone: string | undefined): string {
  if (zone === undefined || zone.toUpperCase() === 'Z') return 'Z';
  return zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
}

/** Epoch numbers: below 1e11 they are seconds (Python's time.time()), else milliseconds. */
function epochMs(value: number): number {
  return Math.abs(value) < 1e11 ? value * 1000 : value;
}

type Field<T> = { present: false } | { present: true; value: T } | { present: true; invalid: string };

/**
 * A date field: absent or null is "not there", so the next field in the chain applies. A date
 * after `notAfterIso` (the migration time) reads as that time: nothing was used or created
 * after the migration, and a future date is only the old system's clock.
 */
function dateField(row: Record<string, unknown>, name: string, notAfterIso: string): Field<string> {
  const raw = decodeExtended(row[name]);
  if (raw === undefined || raw === null) return { present: false };
  let ms: number | undefined;
  if (raw instanceof Date) ms = raw.getTime();
  else if (typeof raw === 'string') ms = parseIsoDate(raw);
  else if (typeof raw === 'number' && Number.isFinite(raw)) ms = epochMs(raw);
  if (ms === undefined || !Number.isFinite(ms) || Number.isNaN(new Date(ms).getTime()))
    return { present: true, invalid: `${name} is not a date` };
  return { present: true, value: new Date(Math.min(ms, Date.parse(notAfterIso))).toISOString() };
}

/** A use count from a possibly fractional amount: rounded up, float noise aside, never below 0. */
function wholeUses(amount: number): number {
  return Math.max(0, Math.ceil(amount - FLOAT_NOISE));
}

function usageCount(row: Record<string, unknown>, initialCredits: number): Field<number> {
  const usage = decodeExtended(row.usage_count);
  if (usage !== undefined && usage !== null) {
    if (typeof usage !== 'number' || !Number.isFinite(usage))
      return { present: true, invalid: 'usage_count is not a number' };
    if (usage < 0) return { present: true, invalid: 'usage_count is negative' };
    return bounded(wholeUses(usage), 'usage_count');
  }
  const credits = decodeExtended(row.credits_left);
  if (credits !== undefined && credits !== null) {
    if (typeof credits !== 'number' || !Number.isFinite(credits))
      return { present: true, invalid: 'credits_left is not a number' };
    return bounded(wholeUses(initialCredits - credits), 'credits_left');
  }
  return { present: true, value: 0 };
}

/** Counts beyond 2^53 cannot be stored exactly (nor their sort key): such a row is reported, not stored. */
function bounded(count: number, field: string): Field<number> {
  return Number.isSafeInteger(count)
    ? { present: true, value: count }
    : { present: true, invalid: `${field} is out of range` };
}

/**
 * Maps one row of the old system to a key, or says why it cannot. `unknownFields` lists the
 * row's field names the mapping does not read (for the report's count; names only, never values).
 */
export function mapRow(input: unknown, options: MappingOptions): MapResult {
  if (!isPlainObject(input)) return { ok: false, reason: 'not a JSON object', unknownFields: [] };
  const unknownFields = Object.keys(input).filter((name) => !KNOWN_FIELDS.has(name));
  const fail = (reason: string): MapResult => ({ ok: false, reason, unknownFields });

  const apiKey = decodeExtended(input.api_key);
  if (apiKey === undefined || apiKey === null) return fail('api_key is missing');
  if (typeof apiKey !== 'string') return fail('api_key is not a string');
  if (apiKey.length === 0) return fail('api_key is empty');
  if (!isValidApiKey(apiKey)) {
    const length = apiKey.length < API_KEY_MIN_LENGTH || apiKey.length > API_KEY_MAX_LENGTH;
    return fail(
      length
        ? `api_key is not ${API_KEY_MIN_LENGTH}-${API_KEY_MAX_LENGTH} characters long`
        : 'api_key has a space, control or non-ASCII character',
    );
  }

  const count = usageCount(input, options.initialCredits);
  if ('invalid' in count) return fail(count.invalid);

  let lastUsedAt: string | null = null;
  for (const name of ['last_used', 'last_checked']) {
    const field = dateField(input, name, options.nowIso);
    if (!field.present) continue;
    if ('invalid' in field) return fail(field.invalid);
    lastUsedAt = field.value;
    break;
  }
  const created = dateField(input, 'created_at', options.nowIso);
  if (created.present && 'invalid' in created) return fail(created.invalid);

  return {
    ok: true,
    unknownFields,
    row: {
      apiKey,
      usageCount: count.present ? count.value : 0,
      disabled: decodeExtended(input.is_active) === false,
      lastUsedAt,
      createdAt: created.present ? created.value : options.nowIso,
    },
  };
}
