/**
 * SigV4, checked by a verifier written here from the specification (AWS General Reference,
 * "Create a signed AWS API request"), not by the signer the package uses: it re-derives a
 * recorded request's signature from the credentials the test gave the client.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Seen } from './recorder.js';

const encode = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Every service but S3: each path segment URI-encoded twice (once for the wire, once more for the signature). */
const canonicalUri = (path: string): string =>
  path
    .split('/')
    .map((segment) => encode(encode(decodeURIComponent(segment))))
    .join('/') || '/';

function canonicalQuery(query: string): string {
  const pairs = query
    ? query.split('&').map((part) => {
        const [name = '', value = ''] = part.split(/=(.*)/s);
        const decoded = (text: string): string => decodeURIComponent(text.replace(/\+/g, ' '));
        return `${encode(decoded(name))}=${encode(decoded(value))}`;
      })
    : [];
  return pairs.sort().join('&');
}

const hmac = (key: Buffer | string, text: string): Buffer => createHmac('sha256', key).update(text, 'utf8').digest();
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

export interface SignatureCheck {
  accessKeyId: string;
  region: string;
  service: string;
  signedHeaders: string[];
  /** the signature the request carries */
  signature: string;
  /** the signature the specification gives for the request as it arrived */
  expected: string;
}

/** Re-derives the signature of a recorded request with `secretAccessKey`. */
export function checkSignature(request: Seen, secretAccessKey: string): SignatureCheck {
  const authorization = String(request.headers.authorization);
  const fields = Object.fromEntries(
    authorization
      .replace(/^AWS4-HMAC-SHA256 /, '')
      .split(',')
      .map((field) => field.trim().split(/=(.*)/s).slice(0, 2)),
  ) as Record<string, string | undefined>;
  const [accessKeyId = '', date = '', region = '', service = '', terminator = ''] = (fields.Credential ?? '').split(
    '/',
  );
  const signedHeaders = (fields.SignedHeaders ?? '').split(';');
  const header = (name: string): string => {
    const value = request.headers[name];
    return (Array.isArray(value) ? value.join(',') : (value ?? '')).trim().replace(/\s+/g, ' ');
  };
  const [path = '', query = ''] = request.path.split(/\?(.*)/s);
  const canonicalRequest = [
    request.method,
    canonicalUri(path),
    canonicalQuery(query),
    signedHeaders.map((name) => `${name}:${header(name)}\n`).join(''),
    signedHeaders.join(';'),
    sha256(request.body),
  ].join('\n');
  const scope = `${date}/${region}/${service}/${terminator}`;
  const stringToSign = ['AWS4-HMAC-SHA256', header('x-amz-date'), scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  return {
    accessKeyId,
    region,
    service,
    signedHeaders,
    signature: fields.Signature ?? '',
    expected: hmac(key, stringToSign).toString('hex'),
  };
}
