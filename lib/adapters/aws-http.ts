/**
 * Signed calls to one AWS service in one region, for the services keypool's functions call
 * by hand: DynamoDB (dynamo-wire.ts), S3 (the proxy's kept answers, s3-rest.ts) and KMS (a KMS wrapping key's data keys,
 * kms-client.ts). A request is signed with SigV4 by the AWS SDK's own signer (payload signed),
 * sent by the SDK's own Node HTTP handler, and retried as the SDK's standard mode retries: three
 * attempts, full-jitter backoff under the SDK's own bases (50 ms, a throttle 1 s) doubling per
 * retry, on what the SDK's own error
 * classification calls a throttle, a transient fault or a server error. The SDK's service clients carry every operation's schema and their
 * service's endpoint rules, 28 KB (KMS) and ~160 KB (S3 with its checksums and XML) of a bundle,
 * for the three calls each of these makes.
 *
 * What is left out: the SDK's clock-skew correction (a Lambda function's clock is kept by AWS)
 * and its optional headers (user agent, invocation id, flexible checksums). Test fakes check every
 * signature with a verifier written from the SigV4 documentation, not with this signer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { isServerError, isThrottlingError, isTransientError, MAXIMUM_RETRY_DELAY, Retry } from '@smithy/core/retry';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

export interface AwsHttpOptions {
  service: string;
  region: string;
  /** default: the SDK's default chain, which memoizes what it found (the environment alone, in the Lambda bundles) */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** attempts per call, the first included (default 3, as the SDK's standard retry mode) */
  maxAttempts?: number;
  /** for tests: the backoff's wait */
  wait?: (ms: number) => Promise<unknown>;
  /** S3 signs the path as sent (encoded once); every other service encodes it again */
  signPathAsSent?: boolean;
  /** an answer's headers within this long, else a TimeoutError (default 60 s) */
  requestTimeoutMs?: number;
  /** a connection within this long (default 5 s) */
  connectionTimeoutMs?: number;
}

/** Where a request goes and what it carries; the host header and the signature are added. */
export interface AwsRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
}

/** One answer of a JSON-protocol service, its body parsed. */
export interface JsonAnswer {
  status: number;
  /** the body parsed (an empty body: {}); undefined when it is not JSON */
  document: unknown;
  /** the body when it is a JSON object, else {} */
  fields: Record<string, unknown>;
  /** a refusal (status 300 and up): its code as the SDK reads it (jsonErrorCode) and its message */
  error?: { code: string; message: string };
}

/** A JSON object (not an array, not null). */
export const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export interface AwsAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  /** the answer's body as it arrives; destroy() lets the connection go without reading it */
  body: AsyncIterable<Uint8Array> & { destroy(): void };
}

/**
 * A service refused a call: its error code (`NoSuchKey`, `InvalidCiphertextException`, ...) as
 * the error's name, the HTTP status, and the status where the SDK's errors keep it too.
 */
export class AwsServiceError extends Error {
  readonly status: number;
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, status: number, message: string) {
    super(`${code} (${status}): ${message}`);
    this.name = code;
    this.status = status;
    this.$metadata = { httpStatusCode: status };
  }
}

/**
 * What the SDK's standard retry strategy tries again, by its own classification: a throttle (429
 * or a throttling code such as SlowDown, ThrottlingException), a transient fault (500, 502, 503,
 * 504, a timeout, a connection reset or refused, a host not found) or any other 5xx.
 */
function retryKind(error: unknown): 'throttle' | 'fault' | undefined {
  if (!(error instanceof Error)) return undefined;
  // The error as the classification reads it: its name, code, status and a cause that is an Error.
  const seen = Object.assign(Object.create(error) as Error, {
    cause: error.cause instanceof Error ? error.cause : undefined,
  });
  if (isThrottlingError(seen)) return 'throttle';
  return isTransientError(seen) || isServerError(seen) ? 'fault' : undefined;
}

/**
 * An error's code as the SDK reads it from a JSON-RPC answer (@smithy/core's
 * loadJsonRpcErrorCode): the body's `__type`, else its `code`, else the `x-amzn-errortype`
 * header; then only what comes before a `,` or a `:`, and after a `#` (the namespace) if any;
 * `Unknown` when none names one, as the SDK names it.
 */
export function jsonErrorCode(type: unknown, code: unknown, header: string | undefined): string {
  const raw = [type, code, header].find((value) => typeof value === 'string' || typeof value === 'number');
  if (raw === undefined) return 'Unknown';
  let value = String(raw).split(',')[0] ?? '';
  value = value.split(':')[0] ?? '';
  if (value.includes('#')) value = value.split('#')[1] ?? '';
  return value || 'Unknown';
}

/** Reads a body whole, up to `limit` bytes; past that, the rest is let go. */
export async function readUpTo(body: AwsAnswer['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    bytes += chunk.byteLength;
    if (bytes >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/** Where the environment points a service (`S3`, `KMS`, `DYNAMODB`): AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, as the SDK reads them. */
export function configuredEndpoint(service: 'S3' | 'KMS' | 'DYNAMODB', env: NodeJS.ProcessEnv): string | undefined {
  return env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
}

/** An endpoint URL as a request's protocol, host, port and base path (no trailing slash). */
export function endpointTarget(endpoint: string): Omit<AwsRequest, 'method'> {
  const url = new URL(endpoint);
  return {
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname.replace(/\/+$/, ''),
  };
}

/** The service's domain in a region: China's regions are under their own. */
export function awsDomain(region: string): string {
  return region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
}

export class AwsHttp {
  readonly region: string;
  private readonly signer: SignatureV4;
  /**
   * A connection within 5 s; an answer's headers within 60 s, else a TimeoutError (tried again):
   * without throwOnRequestTimeout the handler only logs a warning past requestTimeout. Once the
   * headers came, nothing bounds a body that stops arriving (nor did the SDK's S3 client).
   */
  private readonly http: NodeHttpHandler;
  private readonly maxAttempts: number;
  private readonly wait: (ms: number) => Promise<unknown>;

  constructor(options: AwsHttpOptions) {
    this.region = options.region;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.wait = options.wait ?? sleep;
    this.http = new NodeHttpHandler({
      connectionTimeout: options.connectionTimeoutMs ?? 5_000,
      requestTimeout: options.requestTimeoutMs ?? 60_000,
      throwOnRequestTimeout: true,
    });
    this.signer = new SignatureV4({
      credentials: options.credentials ?? defaultProvider(),
      region: options.region,
      service: options.service,
      sha256: Sha256,
      uriEscapePath: !options.signPathAsSent,
      applyChecksum: true,
    });
  }

  /** Signs and sends one request; answers whatever status came back. */
  async exchange(request: AwsRequest): Promise<AwsAnswer> {
    const body = request.body;
    const unsigned = new HttpRequest({
      method: request.method,
      protocol: request.protocol,
      hostname: request.hostname,
      ...(request.port !== undefined ? { port: request.port } : {}),
      path: request.path,
      query: request.query ?? {},
      headers: {
        host: request.port !== undefined ? `${request.hostname}:${request.port}` : request.hostname,
        ...(body !== undefined ? { 'content-length': String(body.length) } : {}),
        ...request.headers,
      },
      ...(body !== undefined ? { body } : {}),
    });
    const signed = await this.signer.sign(unsigned);
    // The signer answers a copy of the request it was given, of the same class.
    const { response } = await this.http.handle(HttpRequest.isInstance(signed) ? signed : HttpRequest.clone(signed));
    return { status: response.statusCode, headers: response.headers, body: response.body as AwsAnswer['body'] };
  }

  /**
   * One call of a JSON-protocol service (awsJson1_0: DynamoDB; awsJson1_1: KMS): a POST to the
   * endpoint's path naming `target` (`DynamoDB_20120810.Query`, `TrentService.Decrypt`), its
   * answer read whole up to `maxBytes` and parsed. Answers whatever status came back.
   */
  async postJson(
    endpoint: Omit<AwsRequest, 'method'>,
    call: { version: '1.0' | '1.1'; target: string; body: Buffer; maxBytes: number },
  ): Promise<JsonAnswer> {
    const answer = await this.exchange({
      ...endpoint,
      method: 'POST',
      path: endpoint.path || '/',
      headers: { 'content-type': `application/x-amz-json-${call.version}`, 'x-amz-target': call.target },
      body: call.body,
    });
    const text = (await readUpTo(answer.body, call.maxBytes)).toString('utf8');
    let document: unknown;
    try {
      document = text === '' ? {} : JSON.parse(text);
    } catch {
      document = undefined;
    }
    const fields = isJsonObject(document) ? document : {};
    if (answer.status < 300) return { status: answer.status, document, fields };
    const message = fields.message ?? fields.Message;
    return {
      status: answer.status,
      document,
      fields,
      error: {
        code: jsonErrorCode(fields.__type, fields.code, answer.headers['x-amzn-errortype']),
        message: typeof message === 'string' ? message : 'no message',
      },
    };
  }

  /** Closes the connections kept open for further requests. */
  destroy(): void {
    this.http.destroy();
  }

  /** `attempt` again while what it throws is retryable, up to the attempts allowed. */
  async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    for (let tried = 1; ; tried++) {
      try {
        return await attempt();
      } catch (error) {
        const kind = retryKind(error);
        if (tried >= this.maxAttempts || !kind) throw error;
        // The SDK's backoff: full jitter under its base (a throttle's longer) doubled per retry, capped.
        const base = kind === 'throttle' ? Retry.throttlingDelay() : Retry.delay();
        await this.wait(Math.random() * Math.min(MAXIMUM_RETRY_DELAY, base * 2 ** (tried - 1)));
      }
    }
  }
}
