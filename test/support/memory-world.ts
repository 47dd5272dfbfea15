/** A small world for unit tests of the use cases: in-memory stores, a fake clock, one pool. */
import { DryPoolCounts } from '../../lib/use-cases/dry-pool-counts.js';
import { KeyAdmin } from '../../lib/use-cases/key-admin.js';
import { KeyImport } from '../../lib/use-cases/key-import.js';
import { Leasing } from '../../lib/use-cases/leasing.js';
import { PoolAdmin } from '../../lib/use-cases/pool-admin.js';
import { PoolDirectory } from '../../lib/use-cases/pool-directory.js';
import { FakeSealer } from './fake-sealer.js';
import { MemoryKeyStore, MemoryPoolStore } from './memory-key-store.js';
import type { ProxyCall } from '../../lib/ports/proxy-call.js';

export const POOL = 'unit';
const T0 = Date.UTC(2026, 0, 1);

/** A clock the test moves by hand. */
export function fakeClock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let at = start;
  return { now: () => at, advance: (ms) => (at += ms) };
}

/** Random numbers from a fixed list, cycling: which candidate a spreading broker takes is then known. */
export function fixedRandom(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

/** A world of one pool: stores, a pool directory, the operator's and the client's use cases. */
export function world<S extends MemoryKeyStore>(
  store: S,
  options: { random?: () => number; candidateLimit?: number } = {},
) {
  const clock = fakeClock();
  const poolStore = new MemoryPoolStore();
  const pools = new PoolDirectory({ store: poolStore, clock: clock.now });
  const sealer = new FakeSealer();
  const admin = new KeyAdmin({ store, pools, clock: clock.now });
  const keyImport = new KeyImport({ store, poolStore, pools, sealer, clock: clock.now });
  const dryPool = new DryPoolCounts({ store, clock: clock.now });
  const leasing = new Leasing({ store, pools, sealer, clock: clock.now, dryPool, ...options });
  const poolAdmin = new PoolAdmin({ poolStore, pools, clock: clock.now });
  const importKeys = async (tag: string, count: number): Promise<string[]> =>
    (
      await keyImport.importKeys(
        POOL,
        Array.from({ length: count }, (_, i) => ({ apiKey: `sk-test-${tag}-${String(i).padStart(4, '0')}-xxxxxxxx` })),
      )
    ).keys.map((k) => k.keyId);
  return { store, clock, poolStore, pools, sealer, admin, keyImport, leasing, poolAdmin, importKeys };
}

export async function setup(keys: number, options: { random?: () => number } = {}) {
  const w = world(new MemoryKeyStore(), options);
  const ids = await w.importKeys('unit', keys);
  return { ...w, ids };
}

/** A proxied call to POOL: a generation's POST with a small body, `over` on top. */
export function proxyCall(over: Partial<ProxyCall> = {}): ProxyCall {
  return {
    pool: POOL,
    method: 'POST',
    path: 'v2beta/stable-image/generate/core',
    query: '',
    headers: { 'content-type': 'text/plain' },
    body: Buffer.from('prompt'),
    ...over,
  };
}
