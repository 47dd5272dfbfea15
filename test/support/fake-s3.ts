/**
 * A fake S3 on loopback, just enough of the REST API for the answer store (path-style
 * addressing): PutObject, GetObject (404 NoSuchKey), CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload and AbortMultipartUpload. It records every request (method, query,
 * body size, headers) so tests can see how an answer went up. As S3 does, it checks a body's
 * `x-amz-checksum-crc32`, refuses a part checksum for an upload created without that algorithm,
 * and, for one created with it, a completion that leaves out a part's checksum. It checks no
 * signature and enforces neither part minimums nor encryption (the bucket's settings are the stack's, proven
 * by the template tests).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { crc32 } from 'node:zlib';
import type { AddressInfo } from 'node:net';

export interface FakeS3Request {
  method: string;
  key: string;
  query: URLSearchParams;
  bytes: number;
  headers: IncomingMessage['headers'];
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

export async function startFakeS3(): Promise<FakeS3> {
  const objects = new Map<string, { body: Buffer; lastModified: Date }>();
  const uploads = new Map<string, Map<number, Buffer>>();
  /** the uploads created with CRC32 part checksums */
  const checksummed = new Set<string>();
  const requests: FakeS3Request[] = [];
  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://fake');
      const key = decodeURIComponent(url.pathname.replace(/^\/[^/]+\//, ''));
      const body = await read(request);
      const query = url.searchParams;
      requests.push({ method: request.method ?? '', key, query, bytes: body.length, headers: request.headers });
      const uploadId = query.get('uploadId');
      const send = (status: number, text = '', headers: Record<string, string> = {}): void => {
        response.writeHead(status, { 'content-type': 'application/xml', ...headers }).end(text);
      };
      const sum = request.headers['x-amz-checksum-crc32'];
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
