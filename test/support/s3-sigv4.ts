/**
 * AWS Signature Version 4 as S3 checks it on a request that carries an Authorization header,
 * written from the AWS documentation (Amazon S3 API reference, "Authenticating Requests (AWS
 * Signature Version 4)": the Authorization header, the canonical request, the payload modes)
 * with node:crypto alone. It shares no code with the SDK's signer on purpose: a signer's
 * mistake (a path encoded twice, a query value not re-encoded, a header left unsigned, a body
 * hash that does not match the body) fails here as it would on S3 instead of being agreed with.
 *
 * Payload modes: a hex SHA-256 of the body (checked against the body received),
 * UNSIGNED-PAYLOAD, and STREAMING-UNSIGNED-PAYLOAD-TRAILER (the aws-chunked body the SDK sends
 * for a stream, decoded here; its trailing checksum is left to the caller). The signed chunk
 * modes (STREAMING-AWS4-HMAC-SHA256-PAYLOAD...) are refused as not implemented rather than
 * passed unchecked. Query-string (presigned) authentication is not accepted.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SigV4Options {
  credentials: S3Credentials;
  region: string;
  /** the service the scope must name ('s3' by default; the fake KMS checks 'kms' with S3's rules, its path being `/`) */
  service?: string;
  /** milliseconds since the epoch; Date.now by default */
  now?: () => number;
}

/** What the verifier needs of a request as it arrived (an IncomingMessage has these). */
export interface ArrivedRequest {
  method?: string;
  /** the request target as sent: the raw path and query, not decoded */
  url?: string;
  /** names and values in arrival order, repeats kept */
  rawHeaders: string[];
}

/** S3's answer to a request it refuses: its status, error code, message and extra elements. */
export interface S3Refusal {
  ok: false;
  status: number;
  code: string;
  message: string;
  details?: Record<string, string>;
}

/** A verified request: its body with any aws-chunked framing removed, and the trailers that framing carried. */
export interface S3Verified {
  ok: true;
  body: Buffer;
  trailers: Map<string, string>;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SKEW_MS = 15 * 60 * 1000;
const UNSIGNED = 'UNSIGNED-PAYLOAD';
const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';

const refuse = (status: number, code: string, message: string, details?: Record<string, string>): S3Refusal => ({
  ok: false,
  status,
  code,
  message,
  ...(details ? { details } : {}),
});

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 percent-encoding: unreserved characters stay, every other UTF-8 byte becomes %XX (upper case). */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Code-point order, which for the ASCII of encoded strings is plain comparison (never locale order). */
const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The canonical query string: every name and value decoded as it arrived and encoded again per
 * RFC 3986, sorted by name then value, a name without a value as `name=`. Undefined when a
 * percent-escape does not decode.
 */
function canonicalQuery(rawQuery: string): string | undefined {
  try {
    return rawQuery
      .split('&')
      .filter((pair) => pair !== '')
      .map((pair) => {
        const at = pair.indexOf('=');
        const [name, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
        return [uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))] as const;
      })
      .sort(([an, av], [bn, bv]) => byCodePoint(an, bn) || byCodePoint(av, bv))
      .map(([name, value]) => `${name}=${value}`)
      .join('&');
  } catch {
    return undefined;
  }
}

/** Header values by lower-case name, each trimmed with inner runs of spaces made one, repeats joined by commas. */
function headerValues(rawHeaders: string[]): Map<string, string> {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    const value = (rawHeaders[i + 1] ?? '').trim().replace(/ +/g, ' ');
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return new Map([...values].map(([name, list]) => [name, list.join(',')]));
}

/** The Authorization header's three components, or undefined when it is not a SigV4 header. */
function parseAuthorization(
  header: string,
): { credential: string[]; signedHeaders: string[]; signature: string } | undefined {
  if (!header.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const field of header.slice(ALGORITHM.length + 1).split(',')) {
    const at = field.indexOf('=');
    if (at < 0) return undefined;
    fields.set(field.slice(0, at).trim(), field.slice(at + 1).trim());
  }
  const [credential, signedHeaders, signature] = ['Credential', 'SignedHeaders', 'Signature'].map((k) => fields.get(k));
  if (fields.size !== 3 || !credential || !signedHeaders || !signature || !/^[0-9a-f]{64}$/.test(signature))
    return undefined;
  return { credential: credential.split('/'), signedHeaders: signedHeaders.split(';'), signature };
}

/** `YYYYMMDDTHHMMSSZ` as milliseconds since the epoch, or undefined. */
function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  return Number.isNaN(time) ? undefined : time;
}

/** An aws-chunked body (unsigned chunks, then trailers, then an empty line), or undefined when its framing is broken. */
export function decodeAwsChunked(raw: Buffer): { body: Buffer; trailers: Map<string, string> } | undefined {
  const chunks: Buffer[] = [];
  let at = 0;
  const line = (): string | undefined => {
    const end = raw.indexOf('\r\n', at);
    if (end < 0) return undefined;
    const text = raw.toString('latin1', at, end);
    at = end + 2;
    return text;
  };
  for (;;) {
    const size = line();
    if (size === undefined || !/^[0-9a-fA-F]{1,8}$/.test(size)) return undefined;
    const bytes = parseInt(size, 16);
    if (bytes === 0) break;
    if (raw.length < at + bytes + 2 || raw.toString('latin1', at + bytes, at + bytes + 2) !== '\r\n') return undefined;
    chunks.push(raw.subarray(at, at + bytes));
    at += bytes + 2;
  }
  const trailers = new Map<string, string>();
  for (let text = line(); text !== ''; text = line()) {
    const colon = text?.indexOf(':') ?? -1;
    if (text === undefined || colon <= 0) return undefined;
    trailers.set(text.slice(0, colon).trim().toLowerCase(), text.slice(colon + 1).trim());
  }
  return at === raw.length ? { body: Buffer.concat(chunks), trailers } : undefined;
}

/**
 * Checks a request's SigV4 Authorization header as S3 does, then its body against the payload
 * hash it signed. Answers the body to act on (aws-chunked framing removed), or S3's refusal:
 * 403 AccessDenied (no or a malformed Authorization header, a required header unsigned),
 * 403 InvalidAccessKeyId, 403 InvalidToken (a session token other than the configured one),
 * 403 RequestTimeTooSkewed (x-amz-date more than 15 minutes off), 400 AuthorizationHeaderMalformed
 * (a credential scope of another date, region or service), 403 SignatureDoesNotMatch (with the
 * canonical request and string to sign, as S3 gives them), 400 XAmzContentSHA256Mismatch.
 */
export function verifySigV4(request: ArrivedRequest, received: Buffer, options: SigV4Options): S3Verified | S3Refusal {
  const { credentials, region } = options;
  const service = options.service ?? 's3';
  const headers = headerValues(request.rawHeaders);
  const authorization = headers.get('authorization');
  if (authorization === undefined) return refuse(403, 'AccessDenied', 'Access Denied: the request is not signed');
  const auth = parseAuthorization(authorization);
  if (!auth) return refuse(403, 'AccessDenied', 'the Authorization header is not AWS4-HMAC-SHA256 as S3 reads it');
  const [accessKeyId, scopeDate, scopeRegion, scopeService, terminator, ...extra] = auth.credential;
  if (scopeDate === undefined || terminator === undefined || extra.length > 0)
    return refuse(403, 'AccessDenied', 'the Credential is not AKID/date/region/service/aws4_request');
  if (accessKeyId !== credentials.accessKeyId)
    return refuse(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKeyId ?? '',
    });

  const amzDate = headers.get('x-amz-date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === undefined)
    return refuse(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date header (YYYYMMDDTHHMMSSZ)');
  if (scopeDate !== amzDate.slice(0, 8))
    return refuse(400, 'AuthorizationHeaderMalformed', `the credential date ${scopeDate} is not that of x-amz-date`);
  if (scopeRegion !== region)
    return refuse(400, 'AuthorizationHeaderMalformed', `the region '${scopeRegion}' is wrong; expecting '${region}'`, {
      Region: region,
    });
  if (scopeService !== service || terminator !== 'aws4_request')
    return refuse(400, 'AuthorizationHeaderMalformed', `the credential scope must end in ${service}/aws4_request`);
  const now = (options.now ?? Date.now)();
  if (Math.abs(now - signedAt) > SKEW_MS)
    return refuse(
      403,
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
      { RequestTime: amzDate, ServerTime: new Date(now).toISOString() },
    );

  // S3 wants the host, the payload hash and every x-amz-* header (the session token and the
  // checksums among them) and Content-MD5 inside the signature.
  const signed = new Set(auth.signedHeaders);
  const required = ['host', 'x-amz-content-sha256'];
  const unsigned = [
    ...required,
    ...[...headers.keys()].filter((name) => name.startsWith('x-amz-') || name === 'content-md5'),
  ].filter((name) => !signed.has(name));
  if (unsigned.length > 0)
    return refuse(403, 'AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: [...new Set(unsigned)].join(', '),
    });
  if (headers.get('x-amz-security-token') !== credentials.sessionToken)
    return refuse(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');

  const payloadHash = headers.get('x-amz-content-sha256') ?? '';
  const hexPayload = /^[0-9a-f]{64}$/.test(payloadHash);
  if (payloadHash.startsWith('STREAMING-') && payloadHash !== STREAMING_UNSIGNED_TRAILER)
    return refuse(501, 'NotImplemented', `this S3 does not verify ${payloadHash} chunk signatures`);
  if (!hexPayload && payloadHash !== UNSIGNED && payloadHash !== STREAMING_UNSIGNED_TRAILER)
    return refuse(400, 'InvalidArgument', 'x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or streaming');

  const target = request.url ?? '/';
  const queryAt = target.indexOf('?');
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  const query = canonicalQuery(queryAt < 0 ? '' : target.slice(queryAt + 1));
  if (query === undefined) return refuse(400, 'InvalidURI', 'Couldn’t parse the specified URI.');
  const names = [...signed].sort(byCodePoint);
  const canonicalRequest = [
    request.method ?? '',
    // S3 signs the path as sent: neither normalized nor encoded a second time.
    path === '' ? '/' : path,
    query,
    ...names.map((name) => `${name}:${headers.get(name) ?? ''}`),
    '',
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256(canonicalRequest)].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, scopeDate), region), service),
    'aws4_request',
  );
  const expected = hmac(signingKey, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(auth.signature, 'hex')))
    return refuse(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: accessKeyId, StringToSign: stringToSign, CanonicalRequest: canonicalRequest },
    );

  // S3 checks the signature on the headers first, and the body against the hash they carry once it has arrived.
  if (hexPayload) {
    const actual = sha256(received);
    return actual === payloadHash
      ? { ok: true, body: received, trailers: new Map() }
      : refuse(
          400,
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
          {
            ClientComputedContentSHA256: payloadHash,
            S3ComputedContentSHA256: actual,
          },
        );
  }
  if (payloadHash === UNSIGNED) return { ok: true, body: received, trailers: new Map() };
  const decoded = decodeAwsChunked(received);
  if (!decoded || String(decoded.body.length) !== headers.get('x-amz-decoded-content-length'))
    return refuse(
      400,
      'IncompleteBody',
      'the aws-chunked body does not end as framed or as x-amz-decoded-content-length says',
    );
  const announced = (headers.get('x-amz-trailer') ?? '').split(',').filter((name) => name !== '');
  if (
    [...decoded.trailers.keys()].sort().join(',') !==
    announced
      .map((n) => n.trim().toLowerCase())
      .sort()
      .join(',')
  )
    return refuse(400, 'MalformedTrailerError', 'the trailers sent are not those x-amz-trailer announced');
  return { ok: true, ...decoded };
}
