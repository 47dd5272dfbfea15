/**
 * The operator's use cases over keys: import, change a status, list. They depend only on the
 * KeyStore port and never return a secret.
 */
import { InvalidRequest, KeyNotFound } from './errors.js';
import type { KeyStore } from './key-store.js';
import { keyIdFor, KEY_ID_PATTERN, toKeyView } from './keys.js';
import { DEFAULT_POOL, type ImportResult, type KeyPage, type KeyStatus, type KeyView, type ListQuery, type NewKey } from './types.js';
import { mapLimit } from '../shared/map-limit.js';

export interface KeyAdminOptions {
  store: KeyStore;
  clock?: () => number;
  /** how many imports run at once */
  importConcurrency?: number;
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

export class KeyAdmin {
  private readonly store: KeyStore;
  private readonly clock: () => number;
  private readonly importConcurrency: number;

  constructor(options: KeyAdminOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    this.importConcurrency = options.importConcurrency ?? 16;
  }

  /** Imports keys; a secret already present (in any pool) is a duplicate and is left as it is. */
  async importKeys(keys: NewKey[]): Promise<ImportResult> {
    const base = this.clock();
    const seen = new Map<string, number>();
    const outcomes = await mapLimit(keys, this.importConcurrency, async (newKey, index) => {
      const keyId = keyIdFor(newKey.apiKey);
      const first = seen.get(keyId);
      if (first !== undefined && first < index) return { inserted: false, keyId };
      seen.set(keyId, index);
      // Each key of a batch gets its own millisecond, so "oldest import first" is the batch order.
      const createdAt = new Date(base + index).toISOString();
      const result = await this.store.insert({
        keyId,
        pool: newKey.pool ?? DEFAULT_POOL,
        apiKey: newKey.apiKey,
        ...(newKey.label === undefined ? {} : { label: newKey.label }),
        usageCount: 0,
        status: 'active',
        createdAt,
        lastUsedAt: null,
        slots: {},
      });
      return { inserted: result.inserted, keyId, key: result.key };
    });
    const views = new Map<string, KeyView>();
    for (const outcome of outcomes) if (outcome.key) views.set(outcome.keyId, toKeyView(outcome.key));
    return {
      imported: outcomes.filter((o) => o.inserted).length,
      duplicates: outcomes.filter((o) => !o.inserted).length,
      keys: outcomes.map((o) => views.get(o.keyId)).filter((v): v is KeyView => v !== undefined),
    };
  }

  async setStatus(keyId: string, status: Extract<KeyStatus, 'active' | 'disabled'>): Promise<KeyView> {
    const key = KEY_ID_PATTERN.test(keyId) ? await this.store.setStatus(keyId, status) : undefined;
    if (!key) throw new KeyNotFound(keyId);
    return toKeyView(key, this.clock());
  }

  /** One page of keys, never with secrets; `cursor` continues where the previous page ended. */
  async list(query: ListQuery = {}): Promise<KeyPage> {
    const limit = Math.min(query.limit ?? DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
    const nowMs = this.clock();
    let start = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const keys: KeyView[] = [];
    do {
      const page = await this.store.scan({ pool: query.pool, status: query.status, nowMs }, Math.max(limit, 100), start);
      const room = limit - keys.length;
      if (page.keys.length > room) {
        const taken = page.keys.slice(0, room);
        keys.push(...taken.map((k) => toKeyView(k, nowMs)));
        const last = taken[taken.length - 1];
        return { keys, cursor: last ? encodeCursor({ keyId: last.keyId }) : null };
      }
      keys.push(...page.keys.map((k) => toKeyView(k, nowMs)));
      start = page.next;
    } while (start && keys.length < limit);
    return { keys, cursor: start ? encodeCursor(start) : null };
  }

  /** Every page of list, merged (the CLI's --json). */
  async listAll(query: Omit<ListQuery, 'cursor' | 'limit'> = {}): Promise<KeyView[]> {
    const all: KeyView[] = [];
    let cursor: string | null = null;
    do {
      const page: KeyPage = await this.list({ ...query, limit: MAX_LIST_LIMIT, ...(cursor ? { cursor } : {}) });
      all.push(...page.keys);
      cursor = page.cursor;
    } while (cursor);
    return all;
  }
}

function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ k: key.keyId }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): Record<string, unknown> {
  let keyId: unknown;
  try {
    keyId = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown }).k;
  } catch {
    keyId = undefined;
  }
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId)) {
    throw new InvalidRequest('cursor is not one this API returned', [{ path: 'cursor', message: 'unrecognised cursor' }]);
  }
  return { keyId };
}
