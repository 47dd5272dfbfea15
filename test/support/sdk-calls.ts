/**
 * keypool's DynamoCalls over the AWS SDK's document client: the benchmark's floor and baseline
 * send their requests the way a service built on the SDK does, and tests can hold keypool's own
 * client (lib/adapters/dynamo-wire.ts) against the SDK's with the same commands. An SDK error
 * keeps its name; the item it carries (a refused condition's, a cancelled transaction's) is
 * converted to plain values, as keypool's client gives it.
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoCalls, DynamoCommand, DynamoOperation } from '../../lib/adapters/dynamo-wire.js';

type Operation = DynamoOperation;

const plain = (item: unknown): Record<string, unknown> | undefined =>
  item && typeof item === 'object' ? unmarshall(item as Record<string, AttributeValue>) : undefined;

/** The SDK's error with its items as plain values; anything else as it is. */
function converted(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const e = error as Error & { Item?: unknown; CancellationReasons?: { Item?: unknown }[] };
  if (e.Item) Object.assign(e, { Item: plain(e.Item) });
  if (e.CancellationReasons)
    e.CancellationReasons = e.CancellationReasons.map((reason) => ({ ...reason, Item: plain(reason.Item) }));
  return e;
}

export function sdkCalls(client: DynamoDBDocumentClient): DynamoCalls {
  const send = (command: DynamoCommand<Operation>): Promise<unknown> => {
    const input = command.input as never;
    switch (command.operation) {
      case 'GetItem':
        return client.send(new GetCommand(input));
      case 'PutItem':
        return client.send(new PutCommand(input));
      case 'UpdateItem':
        return client.send(new UpdateCommand(input));
      case 'DeleteItem':
        return client.send(new DeleteCommand(input));
      case 'Query':
        return client.send(new QueryCommand(input));
      case 'Scan':
        return client.send(new ScanCommand(input));
      case 'BatchGetItem':
        return client.send(new BatchGetCommand(input));
      case 'BatchWriteItem':
        return client.send(new BatchWriteCommand(input));
      case 'TransactWriteItems':
        return client.send(new TransactWriteCommand(input));
    }
  };
  return {
    destroy: () => client.destroy(),
    send: async (command) => {
      try {
        return (await send(command)) as never;
      } catch (error) {
        throw converted(error);
      }
    },
  };
}
