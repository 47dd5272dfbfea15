/**
 * The few S3 calls the answer store makes (PutObject, GetObject and a multipart upload's four),
 * over S3's REST API, signed and retried by AwsHttp (aws-http.ts): the payload's SHA-256 is
 * signed, which S3 checks against the body.
 *
 * Addressing: virtual-hosted (`<bucket>.s3.<region>.amazonaws.com`) for a DNS-compatible name
 * without dots, path-style otherwise and for an endpoint the environment names
 * (`AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, as the SDK reads them).
 */
import {
  AwsHttp,
  type AwsAnswer,
  type AwsHttpOptions,
  awsDomain,
  AwsServiceError,
  endpointTarget,
  readUpTo,
} from './aws-http.js';

export interface S3RestOptions extends Omit<AwsHttpOptions, 'service' | 'signPathAsSent'> {
  /** an endpoint override (path-style): a test's fake, or the environment's AWS_ENDPOINT_URL_S3 */
  endpoint?: string;
}

export interface S3Call {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  bucket: string;
  key: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
}

export type S3Answer = AwsAnswer;

/** The error body read at most this far: S3's error documents are a few hundred bytes. */
const MAX_ERROR_BYTES = 64 * 1024;
/** An XML answer (an upload's creation or completion) read at most this far. */
const MAX_XML_BYTES = 1024 * 1024;

/** A key's path as S3 signs it: each segment percent-encoded once (RFC 3986 unreserved kept), the slashes kept. */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

/** A bucket name that can be a host label under TLS: lowercase letters, digits and hyphens, no dots. */
const VIRTUAL_HOSTABLE = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Where a call goes: the host, port and path, virtual-hosted when it can be. */
export function s3Target(
  region: string,
  bucket: string,
  key: string,
  endpoint?: string,
): { protocol: string; hostname: string; port?: number; path: string } {
  const keyPath = encodeKeyPath(key);
  if (endpoint !== undefined) {
    const base = endpointTarget(endpoint);
    return { ...base, path: `${base.path}/${bucket}/${keyPath}` };
  }
  const host = `s3.${region}.${awsDomain(region)}`;
  return VIRTUAL_HOSTABLE.test(bucket)
    ? { protocol: 'https:', hostname: `${bucket}.${host}`, path: `/${keyPath}` }
    : { protocol: 'https:', hostname: host, path: `/${bucket}/${keyPath}` };
}

/** The value of the first `<name>` element of an XML document, its five entities decoded. */
export function xmlValue(document: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(document);
  return match?.[1]?.replace(/&(lt|gt|quot|apos|amp);/g, (_, entity: string) => XML_ENTITIES[entity] ?? '');
}

const XML_ENTITIES: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };
const XML_ESCAPES: Record<string, string> = Object.fromEntries(
  Object.entries(XML_ENTITIES).map(([entity, character]) => [character, `&${entity};`]),
);

/** A text as XML character data. */
export function xmlText(text: string): string {
  return text.replace(/[<>&"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/** The body of a CompleteMultipartUpload: the parts by number and ETag, as the SDK's S3 client writes it. */
export function completeUploadBody(parts: readonly { number: number; etag: string }[]): Buffer {
  const listed = parts
    .map((part) => `<Part><ETag>${xmlText(part.etag)}</ETag><PartNumber>${part.number}</PartNumber></Part>`)
    .join('');
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${listed}</CompleteMultipartUpload>`,
  );
}

/** An S3 error document (`<Error><Code>..</Code><Message>..</Message>`) as an AwsServiceError, or undefined. */
function errorOf(document: string, status: number): AwsServiceError | undefined {
  if (!/<Error[\s>]/.test(document)) return undefined;
  return new AwsServiceError(xmlValue(document, 'Code') ?? 'UnknownError', status, xmlValue(document, 'Message') ?? '');
}

export class S3Rest {
  private readonly endpoint: string | undefined;
  private readonly aws: AwsHttp;

  constructor(options: S3RestOptions) {
    const { endpoint, ...rest } = options;
    this.endpoint = endpoint;
    this.aws = new AwsHttp({ ...rest, service: 's3', signPathAsSent: true });
  }

  /** One call, tried again while its failure is a retryable one; a 3xx or worse is an AwsServiceError named by S3's code. */
  send(call: S3Call): Promise<S3Answer> {
    return this.aws.retrying(() => this.once(call));
  }

  /**
   * A call whose answer is its headers alone (a PUT's ETag): the body, which S3 leaves empty, is
   * read to its end, so the connection goes back to the agent's pool for the next call.
   */
  sendForHeaders(call: S3Call): Promise<S3Answer['headers']> {
    return this.aws.retrying(async () => {
      const answer = await this.once(call);
      await readUpTo(answer.body, MAX_ERROR_BYTES);
      return answer.headers;
    });
  }

  /**
   * A call whose answer is an XML document, read whole: an error document is an AwsServiceError even
   * under a 200, as S3 may answer a CompleteMultipartUpload that fails after its headers went.
   */
  sendForXml(call: S3Call): Promise<string> {
    return this.aws.retrying(async () => {
      const answer = await this.once(call);
      const document = (await readUpTo(answer.body, MAX_XML_BYTES)).toString('utf8');
      // An error document under a 200 is a 503, as the SDK's S3 client reads it: tried again.
      const error = errorOf(document, answer.status === 200 ? 503 : answer.status);
      if (error) throw error;
      // S3 ends a completion it gave up on after its 200 went with no document at all (its
      // keep-alive whitespace aside): the SDK names that InternalError, 503, and tries again.
      if (document.trim() === '') throw new AwsServiceError('InternalError', 503, 'S3 aborted the request');
      return document;
    });
  }

  private async once(call: S3Call): Promise<S3Answer> {
    const target = s3Target(this.aws.region, call.bucket, call.key, this.endpoint);
    const answer = await this.aws.exchange({
      ...target,
      method: call.method,
      ...(call.query ? { query: call.query } : {}),
      ...(call.headers ? { headers: call.headers } : {}),
      ...(call.body ? { body: call.body } : {}),
    });
    if (answer.status < 300) return answer;
    const document = (await readUpTo(answer.body, MAX_ERROR_BYTES)).toString('utf8');
    // A 404 or a 403 without a document still says what it is by its status.
    throw (
      errorOf(document, answer.status) ??
      new AwsServiceError(`Http${answer.status}`, answer.status, 'no error document')
    );
  }
}
