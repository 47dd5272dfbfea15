/** What every contender of the benchmark is built from (./contenders.ts, ./proxied.ts). */
import type { DynamoCalls } from '../lib/adapters/dynamo-wire.js';
import type { CapacityMeter } from '../lib/adapters/dynamo-key-store.js';

export interface ContenderSetup {
  /** keypool's contenders: keypool's own client; the floor's and the baseline's: the SDK's document client */
  client: DynamoCalls;
  tableName: string;
  pool: string;
  maxUses: number;
  meter: CapacityMeter;
  /** candidates read per index query (keypool's candidateLimit, the floor's page) */
  pageSize: number;
  /** the usage-index partitions the pool is spread over (the floor picks one at random per use) */
  shards?: number;
  /** the proxied contenders': the provider's URL, each key's secret (the floor's own), where kept answers go */
  proxy?: ProxySetup;
}

export interface ProxySetup {
  providerUrl: string;
  secrets: ReadonlyMap<string, string>;
  answersDir: string;
}

/** One counted use for caller `caller`: the key granted, or undefined when none was. */
export type UseFn = (caller: number) => Promise<string | undefined>;
