/**
 * Helpers for the HTTP tests of the pool routes: typed bodies of the answers, a few calls the
 * tests repeat (create a pool, import keys, lease, complete) that assert their own status, and
 * the EMF records printed while a request runs.
 */
import { expect } from 'vitest';
import { fakeKey } from './dynamo.js';
import { type Answer, call, captureOutput } from './server.js';
import type { LeaseGrant } from '../../lib/domain/types.js';

export interface PoolViewBody {
  pool: string;
  maxUses: number;
  leaseTtlSeconds: number;
  cooldownSeconds: number;
  provider: string;
  minCredits: number;
  shards: number;
  /** while a change of shards is being applied */
  previousShards?: number;
  shardsChangedAt?: string;
  createdAt: string;
  updatedAt: string;
}

export interface KeyViewBody {
  keyId: string;
  pool: string;
  label?: string;
  maskedKey: string;
  usageCount: number;
  status: string;
  createdAt: string;
  lastUsedAt: string | null;
  account: string | null;
  credits: number | null;
  creditsCheckedAt: string | null;
}

/** A lease's HTTP body: the domain's LeaseGrant as JSON. */
export type LeaseGrantBody = LeaseGrant;

export interface ErrorBodyShape {
  error: string;
  message: string;
  retryAfterSeconds?: number;
  details?: { path: string; message: string }[];
  /** no_usable_key: the pool's unusable keys by why, when counted, the next return */
  unusable?: Record<string, number>;
  countedAt?: string;
  nextReturnAt?: string;
}

/** The fields of a PoolView, in sorted order. */
export const POOL_VIEW_FIELDS = [
  'cooldownSeconds',
  'createdAt',
  'leaseTtlSeconds',
  'maxClientCooldownSeconds',
  'maxClientReportsPerMinute',
  'maxUses',
  'minCredits',
  'pool',
  'provider',
  'proxyAttempts',
  'proxyTimeoutSeconds',
  'rateLimitScope',
  'shards',
  'updatedAt',
];
/** The fields of a KeyView without a label, in sorted order. */
export const KEY_VIEW_FIELDS = [
  'account',
  'cooldownUntil',
  'createdAt',
  'credits',
  'creditsCheckedAt',
  'keyId',
  'lastUsedAt',
  'maskedKey',
  'pool',
  'status',
  'statusAt',
  'statusBy',
  'statusReason',
  'usageCount',
];

/** The calls the pool tests repeat, against one server; each asserts the status it expects. */
export function poolApi(base: string) {
  const api = {
    call: (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> =>
      call(base, method, path, body, headers),

    /** PUT /pools/{pool}: 200 and the PoolView. */
    async putPool(pool: string, settings: Record<string, unknown> = {}): Promise<PoolViewBody> {
      const answer = await call(base, 'PUT', `/pools/${pool}`, settings);
      expect(answer.status, answer.text).toBe(200);
      return answer.body as PoolViewBody;
    },

    /** POST /pools/{pool}/keys with `count` fresh fake keys (or the given secrets): 201. */
    async importKeys(pool: string, keys: number | string[]): Promise<{ keys: KeyViewBody[]; secrets: string[] }> {
      const secrets = typeof keys === 'number' ? Array.from({ length: keys }, () => fakeKey()) : keys;
      const answer = await call(base, 'POST', `/pools/${pool}/keys`, { keys: secrets.map((apiKey) => ({ apiKey })) });
      expect(answer.status, answer.text).toBe(201);
      return { keys: (answer.body as { keys: KeyViewBody[] }).keys, secrets };
    },

    /** POST /pools/{pool}/leases, whatever it answers. */
    lease: (pool: string, body?: Record<string, unknown>): Promise<Answer> =>
      call(base, 'POST', `/pools/${pool}/leases`, body),

    /**
     * POST /pools/{pool}/leases until a 409 carries the pool's counts: a refusal waits for its
     * count a bounded time, and a count still being read comes with a later refusal.
     */
    async countedRefusal(pool: string): Promise<Answer> {
      for (let tries = 0; ; tries++) {
        const answer = await api.lease(pool);
        const counted = answer.status === 409 && (answer.body as { countedAt?: unknown }).countedAt !== undefined;
        if (counted || answer.status !== 409 || tries >= 50) return answer;
        await new Promise((done) => setTimeout(done, 100));
      }
    },

    /** POST /pools/{pool}/leases: 200 and the grant. */
    async grant(pool: string, body?: Record<string, unknown>): Promise<LeaseGrantBody> {
      const answer = await api.lease(pool, body);
      expect(answer.status, answer.text).toBe(200);
      return answer.body as LeaseGrantBody;
    },

    /** POST /pools/{pool}/leases/{leaseId}/complete, whatever it answers. */
    complete: (pool: string, leaseId: string, body?: Record<string, unknown>): Promise<Answer> =>
      call(base, 'POST', `/pools/${pool}/leases/${leaseId}/complete`, body),

    /** Every key of the pool, walking the pages. */
    async listAll(pool: string, query = ''): Promise<KeyViewBody[]> {
      const all: KeyViewBody[] = [];
      let cursor: string | null = null;
      do {
        const answer = await call(
          base,
          'GET',
          `/pools/${pool}/keys?limit=1000${query}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(answer.status, answer.text).toBe(200);
        const page = answer.body as { keys: KeyViewBody[]; cursor: string | null };
        all.push(...page.keys);
        cursor = page.cursor;
      } while (cursor);
      return all;
    },

    /** One key of the pool as the list shows it. */
    async view(pool: string, keyId: string): Promise<KeyViewBody | undefined> {
      return (await api.listAll(pool)).find((k) => k.keyId === keyId);
    },
  };
  return api;
}

/** Runs `work` while capturing stdout and stderr; answers the EMF records (lines with `"_aws"`) printed meanwhile. */
export async function captureEmf<T>(
  work: () => Promise<T>,
): Promise<{ result: T; records: Record<string, unknown>[]; text: string }> {
  const capture = captureOutput();
  let result: T;
  try {
    result = await work();
  } finally {
    capture.stop();
  }
  const text = capture.lines();
  const records = text
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { result, records, text };
}

/** The lease id with its expiry field replaced: `<keyId>.<slot>.<expiry base36>.<nonce>`. */
export function withExpiry(leaseId: string, expiresAtMs: number): string {
  const [keyId, slot, , nonce] = leaseId.split('.');
  return `${keyId ?? ''}.${slot ?? ''}.${expiresAtMs.toString(36)}.${nonce ?? ''}`;
}

/** Asserts the answer is a JSON error `{ error, message }` with this status and code. */
export function expectError(answer: Answer, status: number, error: string): ErrorBodyShape {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toBe('application/json');
  const body = answer.body as ErrorBodyShape;
  expect(body).toMatchObject({ error, message: expect.any(String) as string });
  expect(body.message.length).toBeGreaterThan(0);
  return body;
}
