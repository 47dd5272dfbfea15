/**
 * A fake S3 on loopback, just enough of the REST API for the answer store (path-style
 * addressing): PutObject, GetObject (404 NoSuchKey), CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload and AbortMultipartUpload. Every request must carry an AWS Signature
 * Version 4 that S3 would accept for the fake's credentials and region (checked by ./s3-sigv4.ts,
 * written from the AWS documentation and sharing no code with the SDK's signer, so a wrong
 * signer fails here as on S3): a refused one gets S3's 403/400 error and changes nothing. It
 * records every request (method, raw target, query, body size, headers, whether its signature
 * held) so tests can see how an answer went up. As S3 does, it checks a body's
 * `x-amz-checksum-crc32` (a header, or the trailer of an aws-chunked body), refuses a part checksum
 * for an upload created without that algorithm, and, for one created with it, a completion that
 * leaves out a part's checksum. It enforces neither part minimums nor encryption (the bucket's
 * settings are the stack's, proven by the template tests).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { crc32 } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { type S3Credentials, type S3Refusal, verifySigV4 } from './s3-sigv4.js';

export interface FakeS3Request {
  method: string;
  /** the request target as sent (path and query, still encoded) */
  url: string;
  key: string;
  query: URLSearchParams;
  bytes: number;
  headers: IncomingMessage['headers'];
  /** its SigV4 signature (and signed payload hash) held: false for a request the fake refused */
  verified: boolean;
}

export interface FakeS3Options {
  /** the one identity the fake knows (AKIDTEST / test-secret, no session token, by default) */
  credentials?: S3Credentials;
  /** the region requests must be signed for (us-east-1 by default) */
  region?: string;
}

export interface FakeS3 {
  endpoint: string;
  objects: Map<string, { body: Buffer; lastModified: Date }>;
  uploads: Map<string, Map<number, Buffer>>;
  requests: FakeS3Request[];
  close(): Promise<void>;
}

async function read(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const xml = (body: string): string => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const escape = (text: string): string => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

function errorXml({ code, message, details = {} }: S3Refusal): string {
  const elements = Object.entries({ Code: code, Message: message, ...details });
  return xml(`<Error>${elements.map(([name, text]) => `<${name}>${escape(text)}</${name}>`).join('')}</Error>`);
}

/** Starts the fake on a loopback port; every request must be signed for `options`' credentials and region. */
export async function startFakeS3(options: FakeS3Options = {}): Promise<FakeS3> {
  const signing = {
    credentials: options.credentials ?? { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
    region: options.region ?? 'us-east-1',
  };
  const objects = new Map<string, { body: Buffer; lastModified: Date }>();
  const uploads = new Map<string, Map<number, Buffer>>();
  /** the uploads created with CRC32 part checksums */
  const checksummed = new Set<string>();
  const requests: FakeS3Request[] = [];
  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://fake');
      const key = decodeURIComponent(url.pathname.replace(/^\/[^/]+\//, ''));
      const received = await read(request);
      const query = url.searchParams;
      const verdict = verifySigV4(request, received, signing);
      const body = verdict.ok ? verdict.body : received;
      requests.push({
        method: request.method ?? '',
        url: request.url ?? '/',
        key,
        query,
        bytes: body.length,
        headers: request.headers,
        verified: verdict.ok,
      });
      const uploadId = query.get('uploadId');
      const send = (status: number, text = '', headers: Record<string, string> = {}): void => {
        response.writeHead(status, { 'content-type': 'application/xml', ...headers }).end(text);
      };
      if (!verdict.ok) return send(verdict.status, errorXml(verdict));
      const sum = request.headers['x-amz-checksum-crc32'] ?? verdict.trailers.get('x-amz-checksum-crc32');
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(body));
      if (typeof sum === 'string' && sum !== crc.toString('base64'))
        return send(400, xml('<Error><Code>BadDigest</Code></Error>'));
      if (request.method === 'POST' && query.has('uploads')) {
        const id = randomUUID();
        uploads.set(id, new Map());
        if (request.headers['x-amz-checksum-algorithm'] === 'CRC32') checksummed.add(id);
        return send(
          200,
          xml(
            `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>${key}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
          ),
        );
      }
      if (request.method === 'PUT' && uploadId !== null) {
        const parts = uploads.get(uploadId);
        if (!parts) return send(404, xml('<Error><Code>NoSuchUpload</Code></Error>'));
        if (typeof sum === 'string' && !checksummed.has(uploadId))
          return send(400, xml('<Error><Code>InvalidRequest</Code><Message>Checksum Type mismatch</Message></Error>'));
        parts.set(Number(query.get('partNumber')), body);
        return send(200, '', {
          etag: `"part-${query.get('partNumber')}"`,
          ...(typeof sum === 'string' ? { 'x-amz-checksum-crc32': sum } : {}),
        });
      }
      if (request.method === 'POST' && uploadId !== null) {
        const parts = uploads.get(uploadId);
        if (!parts) return send(404, xml('<Error><Code>NoSuchUpload</Code></Error>'));
        const listed = body.toString('utf8');
        if (checksummed.has(uploadId) && (listed.match(/<ChecksumCRC32>/g) ?? []).length !== parts.size)
          return send(
            400,
            xml('<Error><Code>InvalidRequest</Code><Message>a part checksum is missing</Message></Error>'),
          );
        const numbers = [...listed.matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
        objects.set(key, {
          body: Buffer.concat(numbers.map((n) => parts.get(n) ?? Buffer.alloc(0))),
          lastModified: new Date(),
        });
        uploads.delete(uploadId);
        return send(
          200,
          xml(`<CompleteMultipartUploadResult><Key>${key}</Key><ETag>"whole"</ETag></CompleteMultipartUploadResult>`),
        );
      }
      if (request.method === 'DELETE' && uploadId !== null) {
        uploads.delete(uploadId);
        return send(204);
      }
      if (request.method === 'PUT') {
        objects.set(key, { body, lastModified: new Date() });
        return send(200, '', { etag: '"whole"' });
      }
      if (request.method === 'GET') {
        const object = objects.get(key);
        if (!object)
          return send(
            404,
            xml(`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`),
          );
        response.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(object.body.length),
          'last-modified': object.lastModified.toUTCString(),
        });
        return response.end(object.body);
      }
      send(405);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    objects,
    uploads,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
