/**
 * What DynamoDB Local actually applied, as the fault proxy saw it on the wire: every lease write
 * and every completion it forwarded and DynamoDB answered 200 — including those whose answer the
 * proxy then lost, which the caller can only guess at. The chaos suite audits keypool against
 * this record (exactly, not within bounds) and checks each refusal against it.
 *
 * It reads keypool's requests as the DynamoDB adapter writes them (lib/adapters/dynamo-lease-store.ts):
 * a lease write sets the slot to `:entry` ({n: nonce, e: expiry}); a completion closes the slot
 * of `:nonce` with `:outcome`, gives `:refund` back, and may give a report's status
 * (`:stStatus`, and `:stUntil`, the end of its rest). Writes to items that are not keys (a
 * caller's report budget) say nothing about counts. An applied write to a key of any other shape
 * is counted as unclassified, so a change of that shape fails the audit instead of hiding from
 * it.
 */
import { KEY_PREFIX } from '../../lib/table.js';
import type { ProxyExchange } from './fault-proxy.js';
import type { KeyTimeline } from './audit.js';

type AttributeValue = { S?: string; N?: string; M?: Record<string, AttributeValue> };
interface UpdateRequest {
  Key?: { keyId?: AttributeValue };
  ExpressionAttributeValues?: Record<string, AttributeValue>;
}

/** A lease write DynamoDB applied: one use counted on `keyId`. */
export interface AppliedLease {
  keyId: string;
  /** when the proxy forwarded it: it applied after this */
  forwardedAtMs: number;
}

/** A completion DynamoDB applied: the slot of its nonce closed. */
export interface AppliedCompletion {
  keyId: string;
  refund: boolean;
  /** the status it set, if any (a report's change) */
  status?: string;
  /** the end of the rest it set, if any (none: a status without an end) */
  untilMs?: number;
  forwardedAtMs: number;
  /** when DynamoDB's answer reached the proxy: it had applied by then */
  answeredAtMs: number;
}

export class WriteWitness {
  /** lease writes applied, by nonce (a retry the table recognised as the same transaction is one) */
  readonly leases = new Map<string, AppliedLease>();
  /** completions applied, by the nonce of the lease they closed (the condition lets one apply) */
  readonly completions = new Map<string, AppliedCompletion>();
  /** completions applied twice for one lease: the condition failed to hold */
  completedTwice = 0;
  /** applied writes of a shape this witness does not know */
  unclassified = 0;

  /** The proxy's `observe` hook. */
  readonly observe = (exchange: ProxyExchange): void => {
    if (exchange.status !== 200) return;
    const body = JSON.parse(exchange.request) as { TransactItems?: { Update?: UpdateRequest; Put?: unknown }[] };
    if (exchange.operation === 'UpdateItem') this.update(body as UpdateRequest, exchange);
    else if (exchange.operation === 'TransactWriteItems') {
      // The lease and its Idempotency-Key record: the record says nothing about counts.
      for (const item of body.TransactItems ?? []) if (item.Update) this.update(item.Update, exchange);
    } else if (['PutItem', 'DeleteItem', 'BatchWriteItem'].includes(exchange.operation)) this.unclassified++;
  };

  private update(request: UpdateRequest, exchange: ProxyExchange): void {
    const keyId = request.Key?.keyId?.S;
    if (keyId !== undefined && !keyId.startsWith(KEY_PREFIX)) return;
    const values = request.ExpressionAttributeValues ?? {};
    const entry = values[':entry']?.M?.n?.S;
    const nonce = values[':nonce']?.S;
    if (keyId !== undefined && entry !== undefined) {
      if (!this.leases.has(entry)) this.leases.set(entry, { keyId, forwardedAtMs: exchange.forwardedAtMs });
      return;
    }
    if (keyId !== undefined && nonce !== undefined && values[':outcome']?.S !== undefined) {
      if (this.completions.has(nonce)) {
        this.completedTwice++;
        return;
      }
      const until = values[':stUntil']?.N;
      const status = values[':stStatus']?.S;
      this.completions.set(nonce, {
        keyId,
        refund: values[':refund']?.N === '1',
        ...(status === undefined ? {} : { status }),
        ...(until === undefined ? {} : { untilMs: Number(until) }),
        forwardedAtMs: exchange.forwardedAtMs,
        answeredAtMs: exchange.answeredAtMs,
      });
      return;
    }
    this.unclassified++;
  }

  /**
   * Writes what was applied into `timeline`: a use counted from when its write was forwarded, a
   * refund from when it had certainly applied, a report's status from its forwarding until the
   * end of its rest, or for good.
   */
  feed(timeline: KeyTimeline): void {
    for (const lease of this.leases.values()) timeline.write(lease.keyId, lease.forwardedAtMs);
    for (const done of this.completions.values()) {
      if (done.refund) timeline.refund(done.keyId, done.answeredAtMs);
      if (done.status !== undefined) timeline.hold(done.keyId, done.forwardedAtMs, done.untilMs ?? Infinity);
    }
  }
}
