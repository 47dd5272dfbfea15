/**
 * The KMS client the sealer's KMS keyrings call: the three operations the keyring sends
 * (GenerateDataKey to seal, Decrypt to open, Encrypt for further wrapping keys) over KMS's
 * JSON protocol (awsJson1_1), signed with SigV4 by the SDK's own signer and credential chain,
 * one per region, kept once KMS has answered there (the ESDK's own cacheClients).
 *
 * Why not `@aws-sdk/client-kms`: even bare, with three commands, it carries every KMS error
 * class and schema (~28 KB of each sealing function's bundle, ~3 ms of its cold start) for
 * three requests whose shape is a few lines of JSON. What the SDK client did that matters
 * here is kept: the endpoint its rules give (partition DNS suffix, FIPS and dual-stack from
 * AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT, AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL
 * as an override), its standard retries (up to AWS_MAX_ATTEMPTS, default 3, with jittered
 * exponential backoff, for throttling, 5xx and connection failures only), errors named by
 * KMS's error code (what the sealer records and classifies), keep-alive connections. Every
 * attempt has a timeout.
 */
import { createHash, createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { cacheClients } from '@aws-crypto/kms-keyring';
import { partition } from '@aws-sdk/core/client';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { KmsClientLike } from './wrapping-keys.js';

/** Fields KMS's JSON protocol carries as base64 strings. */
const BLOBS = new Set(['CiphertextBlob', 'Plaintext']);
/** Error codes the SDK's standard retry strategy treats as throttling (@smithy/core's service-error-classification). */
const THROTTLING = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const TRANSIENT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
/** Connection failures the SDK retries. */
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** One attempt's bound: KMS answers in milliseconds; a lease's whole budget is 10 s. */
const ATTEMPT_TIMEOUT_MS = 3_000;

/** A KMS error answer, named by its code (`AccessDeniedException`, `InvalidCiphertextException`, ...). */
export class KmsServiceError extends Error {
  /** whose fault, as the SDK says it: a 4xx is the caller's, a 5xx KMS's */
  readonly $fault: 'client' | 'server';

  constructor(
    override readonly name: string,
    message: string,
    readonly $metadata: { httpStatusCode: number; requestId?: string; attempts: number },
  ) {
    super(message);
    this.$fault = $metadata.httpStatusCode >= 500 ? 'server' : 'client';
  }
}

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (data: SourceData): string | Uint8Array =>
  typeof data === 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);

/** SigV4's hash, as the SDK gives it on Node (HMAC when keyed). */
export class NodeSha256 {
  readonly #hash;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(bytesOf(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#hash.digest());
  }
}

const isTrue = (value: string | undefined) => value?.trim().toLowerCase() === 'true';

/**
 * KMS's endpoint for `region`, as the SDK's KMS endpoint rules give it. Throws for a region
 * that is not a host label: the region comes from a key ARN in a message header.
 */
export function kmsEndpoint(region: string, env: NodeJS.ProcessEnv = process.env): URL {
  const override = env.AWS_ENDPOINT_URL_KMS?.trim() || env.AWS_ENDPOINT_URL?.trim();
  if (override) return new URL(override);
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(region)) throw new RangeError(`not a KMS region: ${region}`);
  const { dnsSuffix, dualStackDnsSuffix } = partition(region);
  const fips = isTrue(env.AWS_USE_FIPS_ENDPOINT) ? '-fips' : '';
  const suffix = isTrue(env.AWS_USE_DUALSTACK_ENDPOINT) ? dualStackDnsSuffix : dnsSuffix;
  return new URL(`https://kms${fips}.${region}.${suffix}/`);
}

function maxAttempts(env: NodeJS.ProcessEnv): number {
  const n = Number(env.AWS_MAX_ATTEMPTS?.trim() || 3);
  return Number.isInteger(n) && n >= 1 ? n : 3;
}

/** The body of a request: blobs as base64, absent fields left out. */
function encodeInput(input: object): string {
  return JSON.stringify(input, (key, value: unknown) =>
    BLOBS.has(key) && value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
  );
}

/** An answer's fields: blobs back to bytes. */
function decodeOutput(body: string): Record<string, unknown> {
  const output = JSON.parse(body || '{}') as Record<string, unknown>;
  for (const key of BLOBS)
    if (typeof output[key] === 'string') output[key] = new Uint8Array(Buffer.from(output[key], 'base64'));
  return output;
}

interface Answer {
  status: number;
  body: string;
  requestId?: string;
}

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/** One HTTP exchange; rejects on a connection failure or a timeout (its `code` says which). */
function send(url: URL, headers: Record<string, string>, body: string): Promise<Answer> {
  const https = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers, agent: https ? agents.https : agents.http, timeout: ATTEMPT_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const requestId = res.headers['x-amzn-requestid'];
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(typeof requestId === 'string' ? { requestId } : {}),
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('KMS did not answer in time'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** The error KMS answered with, named by its code (`__type` without its namespace). */
function serviceError(answer: Answer, attempts: number): KmsServiceError {
  let parsed: { __type?: unknown; message?: unknown; Message?: unknown } = {};
  try {
    parsed = JSON.parse(answer.body) as typeof parsed;
  } catch {
    // not JSON (a proxy's page): named by the status below
  }
  const type = typeof parsed.__type === 'string' ? parsed.__type : '';
  const code = type.split('#').at(-1)?.split(':')[0] || `Http${answer.status}Error`;
  const message =
    typeof parsed.message === 'string' ? parsed.message : typeof parsed.Message === 'string' ? parsed.Message : code;
  return new KmsServiceError(code, message, {
    httpStatusCode: answer.status,
    ...(answer.requestId ? { requestId: answer.requestId } : {}),
    attempts,
  });
}

const retryable = (error: unknown): boolean =>
  error instanceof KmsServiceError
    ? THROTTLING.has(error.name) ||
      TRANSIENT.has(error.name) ||
      error.$metadata.httpStatusCode === 429 ||
      error.$metadata.httpStatusCode >= 500
    : NETWORK.has(String((error as { code?: unknown } | undefined)?.code));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A KMS client for `region` (the region of the key ARN the keyring calls), built when first asked for. */
export function kmsClient(region: string, env: NodeJS.ProcessEnv = process.env): KmsClientLike {
  const attempts = maxAttempts(env);
  const signer = new SignatureV4({ service: 'kms', region, credentials: defaultProvider(), sha256: NodeSha256 });

  // The endpoint is worked out per call, so a bad region fails the call (recorded by name), not the keyring.
  const call = async (operation: string, input: object): Promise<Record<string, unknown>> => {
    const endpoint = kmsEndpoint(region, env);
    const body = encodeInput(input);
    for (let attempt = 1; ; attempt++) {
      try {
        const signed = await signer.sign({
          method: 'POST',
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
          path: endpoint.pathname,
          query: {},
          headers: {
            host: endpoint.host,
            'content-type': 'application/x-amz-json-1.1',
            'content-length': String(Buffer.byteLength(body)),
            'x-amz-target': `TrentService.${operation}`,
            // Unsigned, as the SDK leaves it: names keypool in KMS's CloudTrail records.
            'user-agent': 'keypool',
          },
          body,
        });
        const answer = await send(endpoint, signed.headers, body);
        if (answer.status >= 200 && answer.status < 300) return decodeOutput(answer.body);
        throw serviceError(answer, attempt);
      } catch (error) {
        if (attempt >= attempts || !retryable(error)) throw error;
        // The SDK's standard backoff: full jitter under 100 ms * 2^(attempt - 1), at most 20 s.
        await sleep(Math.random() * Math.min(20_000, 100 * 2 ** (attempt - 1)));
      }
    }
  };

  return {
    generateDataKey: (input) => call('GenerateDataKey', input),
    encrypt: (input) => call('Encrypt', input),
    decrypt: (input) => call('Decrypt', input),
  };
}

/** One client per region, cached once KMS answered there (so a bogus region in a header fills no cache). */
export const cachedKmsClients: (region: string) => KmsClientLike | false = cacheClients((region: string) =>
  kmsClient(region),
);
