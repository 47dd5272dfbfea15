/**
 * Partition heat: the benchmark knows every write it makes and each key's usage-index
 * partition value, so it can add up, per partition value and per key item, the write units
 * DynamoDB reports for each request (ReturnConsumedCapacity INDEXES: the table's units and
 * the usage-count index's apart). DynamoDB Local enforces no partition limits; these sums say
 * how close a run would come to DynamoDB's 1,000 WCU/s per partition (docs/scaling.md).
 *
 * What each operation does to the index, as reported: a lease moves the key's sort key (2
 * index WCU: delete + put), a success completion and a refused write touch no index entry (0),
 * a refunding completion moves the sort key back (2). A refused conditional write returns no
 * ConsumedCapacity but is billed 1 WCU on the table (the item is under 1 KB).
 */
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { isConditionFailure } from '../lib/adapters/dynamo-table.js';
import type { DynamoCalls } from '../lib/adapters/dynamo-wire.js';
import { TABLE } from '../lib/table.js';

/** One measured stretch (a round): write units per partition value and per item. */
interface Stretch {
  index: Map<string, number>;
  items: Map<string, number>;
  startMs: number;
  endMs: number | undefined;
}

/** The hottest partition and item of a run, as rates over the time measured. */
export interface HeatFigures {
  /** WCU/s of the hottest usage-index partition value, per round, averaged over the rounds' time */
  hottestIndexWcuPerSec: number;
  /** WCU/s of the hottest key item on the base table, likewise */
  hottestItemWcuPerSec: number;
  /** index WCU per second over all partitions */
  indexWcuPerSec: number;
  /** index WCU over the whole run */
  indexWcu: number;
  /** the number of partition values written */
  partitions: number;
}

/** A key value as a document (`"k_..."`) or as an attribute value (`{ S: "k_..." }`). */
function keyOf(record: unknown): string | undefined {
  if (!record || typeof record !== 'object') return undefined;
  const value: unknown = (record as Record<string, unknown>)[TABLE.partitionKey];
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { S?: unknown }).S === 'string')
    return (value as { S: string }).S;
  return undefined;
}

/** The table's and the usage index's write units of one request. */
function unitsOf(consumed: ConsumedCapacity | undefined): { table: number; index: number } {
  const index = consumed?.GlobalSecondaryIndexes?.[TABLE.usageIndex.name]?.CapacityUnits ?? 0;
  const table = consumed?.Table?.CapacityUnits ?? Math.max(0, (consumed?.CapacityUnits ?? 0) - index);
  return { table, index };
}

export class PartitionHeat {
  private readonly stretches: Stretch[] = [];
  private current: Stretch | undefined;
  /** each key's usage partition value (where its index entry lives) */
  private readonly partitionOfKey = new Map<string, string>();

  /** Tells where a key's index entry lives (it does not move during a run: no reshard, no status change). */
  place(keyId: string, partition: string): void {
    this.partitionOfKey.set(keyId, partition);
  }

  /** Starts counting (a measured round). */
  start(nowMs: number = performance.now()): void {
    this.current = { index: new Map(), items: new Map(), startMs: nowMs, endMs: undefined };
    this.stretches.push(this.current);
  }

  /** Stops counting. */
  stop(nowMs: number = performance.now()): void {
    if (this.current) this.current.endMs = nowMs;
    this.current = undefined;
  }

  /** A write to the item `keyId` and what it consumed (undefined: refused, 1 WCU on the table). */
  write(keyId: string, consumed: ConsumedCapacity | undefined): void {
    const stretch = this.current;
    if (!stretch) return;
    const units = consumed ? unitsOf(consumed) : { table: 1, index: 0 };
    stretch.items.set(keyId, (stretch.items.get(keyId) ?? 0) + units.table);
    if (units.index > 0) {
      const partition = this.partitionOfKey.get(keyId) ?? '(unknown)';
      stretch.index.set(partition, (stretch.index.get(partition) ?? 0) + units.index);
    }
  }

  figures(): HeatFigures {
    let seconds = 0;
    let hottestIndex = 0;
    let hottestItem = 0;
    let index = 0;
    const partitions = new Set<string>();
    for (const s of this.stretches) {
      if (s.endMs === undefined) continue;
      seconds += (s.endMs - s.startMs) / 1000;
      hottestIndex += Math.max(0, ...s.index.values());
      hottestItem += Math.max(0, ...s.items.values());
      for (const [partition, units] of s.index) {
        partitions.add(partition);
        index += units;
      }
    }
    const rate = (x: number): number => (seconds > 0 ? x / seconds : 0);
    return {
      hottestIndexWcuPerSec: rate(hottestIndex),
      hottestItemWcuPerSec: rate(hottestItem),
      indexWcuPerSec: rate(index),
      indexWcu: index,
      partitions: partitions.size,
    };
  }
}

/**
 * `client` with its writes to each table handed to that table's PartitionHeat: UpdateItem and
 * PutItem by the key they name, with the consumed capacity the answer carries (a refused
 * condition: none). Reads and batch writes (the seeding) are not counted.
 */
export function watchWrites(
  client: DynamoCalls,
  heatOf: (tableName: string) => PartitionHeat | undefined,
): DynamoCalls {
  return {
    destroy: () => client.destroy(),
    send: async (command) => {
      const input = command.input as { TableName?: string; Key?: unknown; Item?: unknown };
      const heat = typeof input.TableName === 'string' ? heatOf(input.TableName) : undefined;
      const keyId =
        command.operation === 'UpdateItem'
          ? keyOf(input.Key)
          : command.operation === 'PutItem'
            ? keyOf(input.Item)
            : undefined;
      if (!heat || keyId === undefined) return client.send(command);
      try {
        const output = await client.send(command);
        const consumed = (output as { ConsumedCapacity?: ConsumedCapacity }).ConsumedCapacity;
        // A write that did not ask for its capacity says nothing; every contender's writes do ask.
        if (consumed) heat.write(keyId, consumed);
        return output;
      } catch (error) {
        if (isConditionFailure(error)) heat.write(keyId, undefined);
        throw error;
      }
    },
  };
}
