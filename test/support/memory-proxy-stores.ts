/**
 * In-memory proxy stores for the proxy use case's unit tests: the same contract as the DynamoDB
 * and file stores (test/contract/proxy-stores.contract.test.ts runs both), in a Map. The answer
 * store keeps bodies whole: it is for tests, not for 50 MiB answers.
 */
import type {
  AnswerStore,
  JobPin,
  JobPins,
  KeptAnswer,
  ProxyBegin,
  ProxyIdempotency,
  ProxyRequestRecord,
} from '../../lib/ports/proxy.js';

export class MemoryProxyIdempotency implements ProxyIdempotency {
  readonly records = new Map<string, ProxyRequestRecord>();

  begin(record: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin> {
    const standing = this.records.get(record.id);
    return this.put(record, !standing || standing.expiresAtMs <= nowMs);
  }

  takeOver(record: ProxyRequestRecord, examined: ProxyRequestRecord, nowMs: number): Promise<ProxyBegin> {
    const standing = this.records.get(record.id);
    if (!standing) return this.begin(record, nowMs);
    const dead =
      standing.state === 'in_progress' &&
      standing.leaseUntilMs <= nowMs &&
      standing.requestHash === record.requestHash &&
      standing.callerDigest === record.callerDigest &&
      standing.answerRef === examined.answerRef;
    return this.put(record, dead);
  }

  private put(record: ProxyRequestRecord, free: boolean): Promise<ProxyBegin> {
    const standing = this.records.get(record.id);
    if (!free && standing) return Promise.resolve({ started: false, record: { ...standing } });
    this.records.set(record.id, { ...record, state: 'in_progress' });
    return Promise.resolve({ started: true });
  }

  finish(id: string, heldBy: string): Promise<boolean> {
    const standing = this.records.get(id);
    if (!this.holds(standing, heldBy)) return Promise.resolve(false);
    this.records.set(id, { ...standing, state: 'done' });
    return Promise.resolve(true);
  }

  abandon(id: string, heldBy: string): Promise<void> {
    if (this.holds(this.records.get(id), heldBy)) this.records.delete(id);
    return Promise.resolve();
  }

  renew(id: string, heldBy: string, leaseUntilMs: number): Promise<boolean> {
    const standing = this.records.get(id);
    if (!this.holds(standing, heldBy)) return Promise.resolve(false);
    this.records.set(id, { ...standing, leaseUntilMs });
    return Promise.resolve(true);
  }

  /** The record is in progress and held by the request that drew `heldBy`. */
  private holds(standing: ProxyRequestRecord | undefined, heldBy: string): standing is ProxyRequestRecord {
    return standing?.state === 'in_progress' && standing.answerRef === heldBy;
  }
}

export class MemoryJobPins implements JobPins {
  private readonly pins = new Map<string, JobPin>();

  constructor(private readonly clock: () => number = Date.now) {}

  pin(pin: JobPin): Promise<void> {
    const name = `${pin.pool}\n${pin.jobId}`;
    const standing = this.pins.get(name);
    if (!standing || standing.keyId === pin.keyId || standing.expiresAtMs <= this.clock())
      this.pins.set(name, { ...pin });
    return Promise.resolve();
  }

  find(pool: string, jobId: string, nowMs: number): Promise<string | undefined> {
    const pin = this.pins.get(`${pool}\n${jobId}`);
    return Promise.resolve(pin && pin.expiresAtMs > nowMs ? pin.keyId : undefined);
  }
}

async function* replay(chunks: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const chunk of chunks) yield await Promise.resolve(Uint8Array.from(chunk));
}

export class MemoryAnswerStore implements AnswerStore {
  readonly answers = new Map<string, { status: number; headers: Record<string, string>; chunks: Uint8Array[] }>();

  async put(ref: string, answer: KeptAnswer): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of answer.body) chunks.push(Uint8Array.from(chunk));
    this.answers.set(ref, { status: answer.status, headers: { ...answer.headers }, chunks });
  }

  get(ref: string): Promise<KeptAnswer | undefined> {
    const kept = this.answers.get(ref);
    return Promise.resolve(kept && { status: kept.status, headers: { ...kept.headers }, body: replay(kept.chunks) });
  }
}
