/**
 * Which DynamoDB answers carry the sealed secret: only those of the paths that open it (the
 * lease, its idempotent replay, maintenance and reseal). Every other store method — import,
 * listing, counting, completion, operator writes, the undecryptable mark, the reseal write —
 * gets back no `sealedKey` from DynamoDB at all (projections, UPDATED_NEW, no ALL_OLD), so it
 * cannot leak it. Proven on DynamoDB Local by recording every answer the client receives.
 */
import type { DynamoCalls } from '../../lib/adapters/dynamo-wire.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lib/adapters/dynamo-client.js';
import { DynamoKeyStore } from '../../lib/adapters/dynamo-key-store.js';
import { keyIdFor } from '../../lib/domain/keys.js';
import { sealNewKey } from '../../lib/use-cases/new-key.js';
import { createTestTable, fakeKey, uniqueName } from '../support/dynamo.js';
import { testSealer } from '../support/sealing.js';

/** keypool's client, keeping every answer (and every refusal's item) it receives, as text. */
function recordingClient(endpoint: string): { client: DynamoCalls; answers: string[] } {
  const inner = documentClient({ endpoint, region: undefined });
  const answers: string[] = [];
  const client: DynamoCalls = {
    destroy: () => inner.destroy(),
    send: async (command) => {
      try {
        const out = await inner.send(command);
        answers.push(JSON.stringify(out));
        return out;
      } catch (error) {
        answers.push(
          JSON.stringify({
            error: (error as { name?: string }).name,
            item: (error as { Item?: unknown }).Item ?? null,
          }),
        );
        throw error;
      }
    },
  };
  return { client, answers };
}

let store: DynamoKeyStore;
let answers: string[];
let pool: string;

beforeAll(async () => {
  const table = await createTestTable('reads');
  const recording = recordingClient(table.endpoint);
  store = new DynamoKeyStore({ client: recording.client, tableName: table.tableName });
  answers = recording.answers;
  pool = uniqueName('reads');
  await table.pools.put(pool, {}, new Date().toISOString());
});

/** Runs `work` and answers what DynamoDB sent back meanwhile. */
async function answered(work: () => Promise<unknown>): Promise<string> {
  const from = answers.length;
  await work();
  return answers.slice(from).join('\n');
}

describe('the sealed secret in DynamoDB answers', () => {
  it('never comes back to import, listing, counting, completion, operator writes or the undecryptable mark; the reseal write gets only what it sent', async () => {
    // Prepare
    const secret = fakeKey('reads-');
    const key = await sealNewKey(testSealer(), secret, pool, new Date().toISOString());
    const nowMs = Date.now();
    const seen: Record<string, string> = {};
    // Act: each method in turn, on a key whose sealed secret is stored.
    seen.insert = await answered(() => store.insert(key));
    seen.insertDuplicate = await answered(() => store.insert(key));
    seen.record = await answered(() => store.record(pool, key.keyId));
    seen.candidates = await answered(() => store.candidates(pool, 0, 3, 25, nowMs));
    seen.poolKeys = await answered(() => store.poolKeys(pool, 10));
    seen.increment = await answered(() => store.increment(pool, key.keyId, nowMs));
    seen.updateStatus = await answered(() => store.update({ keyId: key.keyId, pool, status: 'active' }));
    seen.updateCount = await answered(() => store.update({ keyId: key.keyId, pool, count: { seen: 1, to: 0 } }));
    const leased = await store.tryLease({
      keyId: key.keyId,
      pool,
      shard: 0,
      seenCount: 0,
      maxUses: 3,
      slot: 0,
      nonce: '0123456789abcdef',
      expiresAtMs: nowMs + 60_000,
      nowMs,
    });
    const completion = {
      keyId: key.keyId,
      pool,
      slot: 0,
      nonce: '0123456789abcdef',
      outcome: 'failure',
      nowMs,
      statusChange: 'apply',
      cooldownUntilMs: nowMs,
    } as const;
    seen.complete = await answered(() => store.tryComplete(completion));
    seen.completeRefused = await answered(() => store.tryComplete(completion));
    seen.idempotentLease = await answered(() => store.idempotentLease('no-such-record'));
    seen.setAsideRefused = await answered(() => store.setAsideUnsealed({ keyId: key.keyId, pool }));
    seen.replaceRefused = await answered(() =>
      store.replaceSecret({
        keyId: key.keyId,
        pool,
        from: { secret: 'not what is stored', sealed: true },
        sealed: key.secret,
        revive: false,
      }),
    );
    seen.markRefused = await answered(() =>
      store.markUndecryptable({ keyId: key.keyId, pool, sealed: 'not what is stored' }),
    );
    seen.mark = await answered(() => store.markUndecryptable({ keyId: key.keyId, pool, sealed: key.secret }));
    // The reseal write gets back (UPDATED_NEW) only the ciphertext it has just sent, nothing it did not hold.
    const resealed = await sealNewKey(testSealer(), secret, pool, key.createdAt);
    const replace = await answered(() =>
      store.replaceSecret({
        keyId: key.keyId,
        pool,
        from: { secret: key.secret, sealed: true },
        sealed: resealed.secret,
        revive: false,
      }),
    );
    // The paths that open the secret do get it back: the recording sees what a leak would look like.
    const opening = await answered(async () => {
      await store.get(key.keyId);
      await store.poolKeysWithSecrets(pool, 10);
    });
    // Assess
    expect(leased.granted).toBe(true);
    expect(key.keyId).toBe(keyIdFor(secret));
    expect(opening).toContain('sealedKey');
    expect(opening).toContain(resealed.secret);
    expect(replace).not.toContain(key.secret.slice(20, 60));
    for (const [method, text] of Object.entries(seen)) {
      expect(text.length, method).toBeGreaterThan(0);
      expect(text, method).not.toContain('sealedKey');
      expect(text, method).not.toContain(key.secret.slice(20, 60));
      expect(text, method).not.toContain(secret);
    }
  });
});
