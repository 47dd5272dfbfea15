/**
 * DynamoDB's JSON as the SDK writes it, for holding keypool's own conversion
 * (lib/adapters/dynamo-values.ts) and client against the SDK's: marshall's attribute values with
 * their bytes in base64, as the SDK's JSON serializer sends them (marshall keeps bytes as bytes).
 */
import { marshall } from '@aws-sdk/util-dynamodb';

/** `value` with every byte array in it as base64 text. */
export function bytesInBase64(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(bytesInBase64);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([name, field]) => [name, bytesInBase64(field)]));
  return value;
}

/** An item as DynamoDB's JSON spells it on the wire, by the SDK's marshall with removeUndefinedValues (not keypool's). */
export const sdkWireItem = (item: Record<string, unknown>): Record<string, unknown> =>
  bytesInBase64(marshall(item, { removeUndefinedValues: true })) as Record<string, unknown>;
