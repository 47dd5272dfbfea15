/**
 * A fault-injecting HTTP proxy between keypool's DynamoDB client and DynamoDB Local, for the
 * faults DynamoDB Local never produces: throttling, transaction conflicts, 500s, latency,
 * connections reset before a request is forwarded, and writes that apply while their answer
 * is lost. Each fault is answered the way DynamoDB's JSON 1.0 protocol answers it (status,
 * `x-amzn-ErrorType` and a `__type` of `com.amazonaws.dynamodb.v20120810#<name>`), so the SDK
 * classifies it as it would DynamoDB's own: it retries throttling and 500s, not conflicts.
 *
 * Faults come at set rates, drawn from a seeded generator (the same seed gives the same
 * decisions for the same sequence of requests), or are queued for the next matching requests
 * (`inject`); every decision is counted per kind.
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { prng } from './prng.js';

export const FAULT_KINDS = [
  /** 400 ProvisionedThroughputExceededException: the SDK retries it as throttling */
  'provisionedThroughputExceeded',
  /** 400 ThrottlingException: the SDK retries it as throttling */
  'throttling',
  /**
   * A transaction throttled: 400 TransactionCanceledException whose reasons carry
   * `ThrottlingError` (TransactWriteItems only): the SDK does not retry it
   */
  'transactionThrottled',
  /**
   * A conflict with a concurrent transaction, not retried by the SDK: on TransactWriteItems a 400
   * TransactionCanceledException whose reasons carry `TransactionConflict`; on a single write
   * (PutItem, UpdateItem, DeleteItem) a 400 TransactionConflictException. Nothing is applied.
   */
  'transactionConflict',
  /** 500 InternalServerError, nothing applied: the SDK retries it */
  'internalError',
  /** the connection is reset before the request is forwarded: nothing applied, the SDK retries */
  'reset',
  /** writes only: forwarded and applied by DynamoDB Local, then the connection is reset before the answer */
  'lostAnswer',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** The operations each kind applies to (by X-Amz-Target action); a request of another gets none of it. */
const SINGLE_WRITES = ['PutItem', 'UpdateItem', 'DeleteItem'];
const WRITES = [...SINGLE_WRITES, 'TransactWriteItems', 'BatchWriteItem'];
const DATA = [...WRITES, 'GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems'];
const APPLIES_TO: Record<FaultKind, readonly string[]> = {
  provisionedThroughputExceeded: DATA,
  throttling: DATA,
  transactionThrottled: ['TransactWriteItems'],
  transactionConflict: [...SINGLE_WRITES, 'TransactWriteItems'],
  internalError: DATA,
  reset: DATA,
  lostAnswer: WRITES,
};

export interface FaultProxyOptions {
  /** where requests are forwarded (DynamoDB Local's endpoint) */
  target: string;
  /** seeds every decision (default 1) */
  seed?: number;
  /**
   * The share of requests each kind gets, among the requests it applies to; drawn once per
   * request, so the shares of the kinds one request could get add up to at most 1.
   */
  rates?: Partial<Record<FaultKind, number>>;
  /** on top of any fault: this share of requests waits up to `maxMs` before anything else happens */
  latency?: { rate: number; maxMs: number };
  /** only requests of these operations (X-Amz-Target actions) are ever faulted; default every data operation */
  operations?: readonly string[];
  /** told of every request DynamoDB Local answered, with that answer's status (also when the caller then lost it) */
  observe?: (exchange: ProxyExchange) => void;
}

/** A request the proxy forwarded and DynamoDB Local answered. */
export interface ProxyExchange {
  /** the X-Amz-Target action, e.g. `UpdateItem` */
  operation: string;
  /** the request's JSON body as sent */
  request: string;
  /** DynamoDB Local's status (200: applied) */
  status: number;
  /** the caller got no answer: the proxy reset its connection (lostAnswer) */
  lost: boolean;
  forwardedAtMs: number;
  answeredAtMs: number;
}

export interface FaultCounts {
  /** requests the proxy received */
  requests: number;
  /** requests that reached DynamoDB Local (a lostAnswer is forwarded too) */
  forwarded: number;
  /** requests that got each fault */
  faults: Record<FaultKind, number>;
  /** requests delayed */
  delayed: number;
  /** requests whose forwarding failed (DynamoDB Local down): answered with a reset */
  upstreamErrors: number;
}

export interface FaultProxy {
  /** the endpoint keypool's client is given */
  readonly endpoint: string;
  /** what the proxy did so far */
  counts(): FaultCounts;
  /** the next `times` requests of `operation` (any operation the kind applies to, if omitted) get `kind`, before any drawn fault */
  inject(kind: FaultKind, options?: { operation?: string; times?: number }): void;
  /** replaces the rates (e.g. 0 for every kind while a test prepares its data) */
  setRates(rates: Partial<Record<FaultKind, number>>): void;
  close(): Promise<void>;
}

const NAMESPACE = 'com.amazonaws.dynamodb.v20120810';

/** DynamoDB's answer for an error: JSON 1.0, the type in the body and in x-amzn-ErrorType. */
function answerError(response: ServerResponse, status: number, type: string, body: Record<string, unknown>): void {
  const text = JSON.stringify({ __type: `${NAMESPACE}#${type}`, ...body });
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    'x-amzn-errortype': type,
  });
  response.end(text);
}

/** A transaction's cancellation: one reason per item, `code` on one of them (chosen by `pick`), `None` on the others. */
function answerCancelled(response: ServerResponse, requestBody: string, code: string, pick: () => number): void {
  let items = 1;
  try {
    const parsed = JSON.parse(requestBody) as { TransactItems?: unknown[] };
    items = Math.max(1, parsed.TransactItems?.length ?? 1);
  } catch {
    // not JSON: one reason is as good as any
  }
  const at = Math.floor(pick() * items);
  const reasons = Array.from({ length: items }, (_, i) =>
    i === at ? { Code: code, Message: REASON_MESSAGES[code] ?? code } : { Code: 'None' },
  );
  answerError(response, 400, 'TransactionCanceledException', {
    Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
    CancellationReasons: reasons,
  });
}

const REASON_MESSAGES: Record<string, string> = {
  TransactionConflict: 'Transaction is ongoing for the item',
  ThrottlingError: 'Throughput exceeds the current capacity for one or more global secondary indexes.',
};

/** Resets the client's connection (a TCP RST): the SDK sees ECONNRESET and cannot know what happened. */
function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** Answers a request with `fault` instead of forwarding it: nothing reaches DynamoDB Local. */
function answerFault(
  fault: Exclude<FaultKind, 'lostAnswer'>,
  operation: string,
  body: Buffer,
  incoming: IncomingMessage,
  response: ServerResponse,
  random: () => number,
): void {
  switch (fault) {
    case 'provisionedThroughputExceeded':
      return answerError(response, 400, 'ProvisionedThroughputExceededException', {
        message:
          'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
      });
    case 'throttling':
      return answerError(response, 400, 'ThrottlingException', {
        message: 'Rate of requests exceeds the allowed throughput.',
      });
    case 'transactionThrottled':
      return answerCancelled(response, body.toString('utf8'), 'ThrottlingError', random);
    case 'transactionConflict':
      if (operation === 'TransactWriteItems')
        return answerCancelled(response, body.toString('utf8'), 'TransactionConflict', random);
      return answerError(response, 400, 'TransactionConflictException', {
        message: 'Transaction is ongoing for the item',
      });
    case 'internalError':
      return answerError(response, 500, 'InternalServerError', { message: 'Internal server error' });
    case 'reset':
      return reset(incoming.socket);
  }
}

function readBody(message: IncomingMessage): Promise<Buffer> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    message.on('data', (chunk: Buffer) => chunks.push(chunk));
    message.once('end', () => done(Buffer.concat(chunks)));
    message.once('error', fail);
  });
}

/** Starts the proxy on a free loopback port. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = prng(options.seed ?? 1);
  let rates: Partial<Record<FaultKind, number>> = { ...options.rates };
  const allowed = new Set(options.operations ?? DATA);
  const queued: { kind: FaultKind; operation: string | undefined; times: number }[] = [];
  const counts: FaultCounts = {
    requests: 0,
    forwarded: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    delayed: 0,
    upstreamErrors: 0,
  };
  // Many concurrent callers: keep connections to DynamoDB Local open rather than one per request.
  const upstream = new Agent({ keepAlive: true, maxSockets: 256 });

  /** The fault for a request of `operation`: a queued one first, else one drawn at the set rates. */
  const decide = (operation: string): FaultKind | undefined => {
    const index = queued.findIndex(
      (q) => (q.operation ?? operation) === operation && APPLIES_TO[q.kind].includes(operation),
    );
    if (index >= 0) {
      const entry = queued[index] as (typeof queued)[number];
      if (--entry.times <= 0) queued.splice(index, 1);
      return entry.kind;
    }
    // One draw per request whatever its operation, so the sequence of draws depends only on the
    // sequence of requests.
    let draw = random();
    if (!allowed.has(operation)) return undefined;
    for (const kind of FAULT_KINDS) {
      const rate = APPLIES_TO[kind].includes(operation) ? (rates[kind] ?? 0) : 0;
      if ((draw -= rate) < 0) return kind;
    }
    return undefined;
  };

  const forward = (
    incoming: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> =>
    new Promise((done, fail) => {
      const out = request(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          method: incoming.method,
          path: incoming.url,
          // As signed: DynamoDB Local does not check the signature, but nothing is rewritten.
          headers: incoming.headers,
          agent: upstream,
        },
        (answer) => {
          readBody(answer).then(
            (answerBody) => done({ status: answer.statusCode ?? 502, headers: answer.headers, body: answerBody }),
            fail,
          );
        },
      );
      out.once('error', fail);
      out.end(body);
    });

  const handle = async (incoming: IncomingMessage, response: ServerResponse): Promise<void> => {
    counts.requests++;
    const body = await readBody(incoming);
    const targetHeader = incoming.headers['x-amz-target'];
    const operation = (typeof targetHeader === 'string' ? targetHeader : '').split('.').pop() ?? '';
    const fault = decide(operation);
    const latency = options.latency;
    if (latency && allowed.has(operation) && random() < latency.rate) {
      counts.delayed++;
      await new Promise((done) => setTimeout(done, random() * latency.maxMs));
    }
    if (fault) counts.faults[fault]++;
    if (fault && fault !== 'lostAnswer') return answerFault(fault, operation, body, incoming, response, random);
    let answer: Awaited<ReturnType<typeof forward>>;
    const forwardedAtMs = Date.now();
    try {
      answer = await forward(incoming, body);
    } catch {
      counts.upstreamErrors++;
      return reset(incoming.socket);
    }
    counts.forwarded++;
    options.observe?.({
      operation,
      request: body.toString('utf8'),
      status: answer.status,
      lost: fault === 'lostAnswer',
      forwardedAtMs,
      answeredAtMs: Date.now(),
    });
    // Applied (or refused) by DynamoDB Local; the caller never hears which.
    if (fault === 'lostAnswer') return reset(incoming.socket);
    response.writeHead(answer.status, answer.headers);
    response.end(answer.body);
  };

  const server: Server = createServer((incoming, response) => {
    handle(incoming, response).catch(() => reset(incoming.socket));
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts, faults: { ...counts.faults } }),
    inject: (kind, { operation, times = 1 } = {}) => {
      queued.push({ kind, operation, times });
    },
    setRates: (next) => {
      rates = { ...next };
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      upstream.destroy();
    },
  };
}
