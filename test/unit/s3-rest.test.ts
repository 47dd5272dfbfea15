/**
 * The answer store's own S3 calls (lib/adapters/s3-rest.ts): where a call goes, how keys and
 * XML are spelled, and what is tried again, against a scripted S3 on loopback; and that what it
 * signs, S3's way, passes the fake S3's verifier (test/support/s3-sigv4.ts, written from the
 * SigV4 documentation, not from the signer these calls use).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsServiceError, readUpTo } from '../../lib/adapters/aws-http.js';
import { S3AnswerStore } from '../../lib/adapters/s3-answer-store.js';
import { answerRef } from '../../lib/domain/answer-ref.js';
import { completeUploadBody, encodeKeyPath, S3Rest, s3Target, xmlText, xmlValue } from '../../lib/adapters/s3-rest.js';
import { startFakeS3 } from '../support/fake-s3.js';

interface Scripted {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** end the connection without an answer */
  reset?: boolean;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A loopback server answering each request with the next scripted answer; it keeps what it was sent. */
async function scripted(answers: Scripted[]): Promise<{ endpoint: string; seen: IncomingMessage[]; bodies: string[] }> {
  const seen: IncomingMessage[] = [];
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push(request);
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      const next = answers.shift() ?? { status: 500 };
      if (next.reset) {
        request.socket.destroy();
        return;
      }
      response.writeHead(next.status, { 'content-type': 'application/xml', ...next.headers }).end(next.body ?? '');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, bodies };
}

function client(endpoint: string, waits: number[] = []): S3Rest {
  return new S3Rest({
    region: 'eu-west-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret', sessionToken: 'session-token' },
    wait: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  });
}

const error = (code: string): string => `<?xml version="1.0"?><Error><Code>${code}</Code><Message>m</Message></Error>`;

describe('where a call goes', () => {
  it('addresses a bucket that can be a host label virtual-hosted, a dotted one path-style, and China under its own domain', () => {
    expect(s3Target('eu-west-1', 'keypool-answers-abc', 'answers/r')).toEqual({
      protocol: 'https:',
      hostname: 'keypool-answers-abc.s3.eu-west-1.amazonaws.com',
      path: '/answers/r',
    });
    expect(s3Target('eu-west-1', 'my.answers', 'answers/r')).toEqual({
      protocol: 'https:',
      hostname: 's3.eu-west-1.amazonaws.com',
      path: '/my.answers/answers/r',
    });
    expect(s3Target('cn-north-1', 'answers-cn', 'k').hostname).toBe('answers-cn.s3.cn-north-1.amazonaws.com.cn');
  });

  it('addresses an endpoint the environment names path-style, after its own path', () => {
    expect(s3Target('us-east-1', 'b', 'answers/r', 'http://127.0.0.1:9000/base/')).toEqual({
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9000,
      path: '/base/b/answers/r',
    });
  });

  it('encodes a key once per segment, keeping its slashes and the unreserved characters', () => {
    expect(encodeKeyPath("answers/a b+c~d_e.f-g!'()*/%")).toBe('answers/a%20b%2Bc~d_e.f-g%21%27%28%29%2A/%25');
  });
});

describe('XML', () => {
  it('reads the first element of a name with its entities decoded, and writes text escaped', () => {
    expect(xmlValue('<R><UploadId>a&amp;b&quot;c&lt;</UploadId><UploadId>x</UploadId></R>', 'UploadId')).toBe('a&b"c<');
    expect(xmlValue('<R></R>', 'UploadId')).toBeUndefined();
    expect(xmlText('"etag" <&>\'')).toBe('&quot;etag&quot; &lt;&amp;&gt;&apos;');
  });
});

describe('a call', () => {
  it('goes signed for S3 in the region, its payload hashed, its session token sent', async () => {
    // Prepare
    const s3 = await scripted([{ status: 200, headers: { etag: '"e"' } }]);
    // Act
    const answer = await client(s3.endpoint).send({
      method: 'PUT',
      bucket: 'b',
      key: 'answers/r',
      body: Buffer.from('hi'),
    });
    answer.body.destroy();
    // Assess
    const [request] = s3.seen;
    expect(request?.url).toBe('/b/answers/r');
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*x-amz-content-sha256[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(request?.headers['x-amz-content-sha256']).toBe(
      '8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4',
    );
    expect(request?.headers['x-amz-security-token']).toBe('session-token');
    expect(s3.bodies).toEqual(['hi']);
  });

  it('tries a 503 SlowDown, a 500 and a reset connection again, backing off, and answers the success after them', async () => {
    // Prepare
    const waits: number[] = [];
    const s3 = await scripted([
      { status: 503, body: error('SlowDown') },
      { status: 200, body: 'ok' },
    ]);
    const reset = await scripted([
      { status: 0, reset: true },
      { status: 500, body: error('InternalError') },
      { status: 200 },
    ]);
    // Act
    const first = await client(s3.endpoint, waits).send({ method: 'GET', bucket: 'b', key: 'k' });
    const second = await client(reset.endpoint, waits).send({ method: 'GET', bucket: 'b', key: 'k' });
    second.body.destroy();
    // Assess
    const chunks: Buffer[] = [];
    for await (const chunk of first.body) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks).toString()).toBe('ok');
    expect(s3.seen).toHaveLength(2);
    expect(reset.seen).toHaveLength(3);
    // The SDK's backoff bases: a throttle's first retry under 1 s; a fault's under 50 ms, then 100 ms.
    expect(waits).toHaveLength(3);
    const [throttled, reset1, reset2] = waits as [number, number, number];
    expect(throttled).toBeGreaterThanOrEqual(0);
    expect(throttled).toBeLessThan(1000);
    expect(reset1).toBeLessThan(50);
    expect(reset2).toBeLessThan(100);
  });

  it('gives up after three attempts, and never tries a refusal again: the error is S3 code and status, and says no more', async () => {
    // Prepare
    const busy = await scripted([1, 2, 3, 4].map(() => ({ status: 503, body: error('SlowDown') })));
    const refused = await scripted([
      { status: 404, body: error('NoSuchKey') },
      { status: 403, body: '' },
    ]);
    const s3 = client(refused.endpoint);
    // Act
    const gaveUp = await client(busy.endpoint)
      .send({ method: 'GET', bucket: 'b', key: 'k' })
      .catch((e: unknown) => e);
    const missing = await s3.send({ method: 'GET', bucket: 'b', key: 'k' }).catch((e: unknown) => e);
    const denied = await s3.send({ method: 'GET', bucket: 'b', key: 'k' }).catch((e: unknown) => e);
    // Assess
    expect(busy.seen).toHaveLength(3);
    expect(gaveUp).toBeInstanceOf(AwsServiceError);
    expect(gaveUp).toMatchObject({ name: 'SlowDown', status: 503 });
    expect(missing).toMatchObject({ name: 'NoSuchKey', status: 404 });
    expect(denied).toMatchObject({ name: 'Http403', status: 403 });
    expect(refused.seen).toHaveLength(2);
    expect(String(missing)).not.toContain('test-secret');
  });

  it('reads an error document under a 200 (a completion that failed after its headers went) as a 503, as the SDK does, and tries it again', async () => {
    // Prepare
    const done = '<CompleteMultipartUploadResult><ETag>"whole"</ETag></CompleteMultipartUploadResult>';
    const s3 = await scripted([
      { status: 200, body: error('InternalError') },
      { status: 200, body: done },
      ...[1, 2, 3].map(() => ({ status: 200, body: error('InvalidPart') })),
    ]);
    const call = {
      method: 'POST',
      bucket: 'b',
      key: 'k',
      query: { uploadId: 'u' },
      body: Buffer.from('<x/>'),
    } as const;
    // Act
    const document = await client(s3.endpoint).sendForXml(call);
    const invalid = await client(s3.endpoint)
      .sendForXml(call)
      .catch((e: unknown) => e);
    // Assess
    expect(xmlValue(document, 'ETag')).toBe('"whole"');
    expect(s3.seen).toHaveLength(5);
    expect(s3.seen[0]?.url).toBe('/b/k?uploadId=u');
    expect(invalid).toMatchObject({ name: 'InvalidPart', status: 503 });
  });

  it("tries again what the SDK's classification tries again (429, 502, a timeout) and nothing it would not (400, 403)", async () => {
    // Prepare
    const s3 = await scripted([
      { status: 429, body: error('TooManyRequestsException') },
      { status: 502, body: '<html>bad gateway</html>' },
      { status: 200 },
      { status: 400, body: error('InvalidArgument') },
      { status: 403, body: error('AccessDenied') },
    ]);
    const s3Client = client(s3.endpoint);
    // Act
    (await s3Client.send({ method: 'GET', bucket: 'b', key: 'k' })).body.destroy();
    const invalid = await s3Client.send({ method: 'GET', bucket: 'b', key: 'k' }).catch((e: unknown) => e);
    const denied = await s3Client.send({ method: 'GET', bucket: 'b', key: 'k' }).catch((e: unknown) => e);
    // Assess
    expect(s3.seen).toHaveLength(5);
    expect(invalid).toMatchObject({ name: 'InvalidArgument', status: 400 });
    expect(denied).toMatchObject({ name: 'AccessDenied', status: 403 });
  });
});

describe('a connection', () => {
  it("is kept for the next call: the answer store reads each PUT's empty answer to its end rather than dropping it", async () => {
    // Prepare
    const s3 = await scripted([1, 2, 3].map(() => ({ status: 200, headers: { etag: '"e"' } })));
    const store = new S3AnswerStore({ client: client(s3.endpoint), bucket: 'b' });
    async function* body(): AsyncIterable<Uint8Array> {
      yield await Promise.resolve(Buffer.from('png'));
    }
    // Act
    for (let i = 0; i < 3; i++)
      await store.put(answerRef('pool', `request-${i}`), { status: 200, headers: {}, body: body() });
    // Assess
    expect(s3.seen).toHaveLength(3);
    expect(new Set(s3.seen.map((request) => request.socket)).size).toBe(1);
  });
});

describe('a signature', () => {
  it("passes S3's checks for a key that needs encoding, a session token, an upload's query and an XML body; a wrong secret does not", async () => {
    // Prepare
    const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret', sessionToken: 'tok' };
    const s3 = await startFakeS3({ credentials, region: 'eu-west-1' });
    const good = new S3Rest({ region: 'eu-west-1', endpoint: s3.endpoint, credentials });
    const bad = new S3Rest({
      region: 'eu-west-1',
      endpoint: s3.endpoint,
      credentials: { ...credentials, secretAccessKey: 'x' },
    });
    const key = "answers/a b+c~d!'()*%";
    try {
      // Act
      (await good.send({ method: 'PUT', bucket: 'b', key, body: Buffer.from('kept') })).body.destroy();
      const read = await good.send({ method: 'GET', bucket: 'b', key });
      const created = await good.sendForXml({ method: 'POST', bucket: 'b', key, query: { uploads: '' } });
      const uploadId = xmlValue(created, 'UploadId') ?? '';
      const part = await good.send({
        method: 'PUT',
        bucket: 'b',
        key,
        query: { partNumber: '1', uploadId },
        body: Buffer.from('part'),
      });
      part.body.destroy();
      await good.sendForXml({
        method: 'POST',
        bucket: 'b',
        key,
        query: { uploadId },
        body: Buffer.from(
          `<CompleteMultipartUpload><Part><ETag>${xmlText(part.headers.etag ?? '')}</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`,
        ),
      });
      const refused = await bad.send({ method: 'GET', bucket: 'b', key }).catch((e: unknown) => e);
      // Assess
      const chunks: Buffer[] = [];
      for await (const chunk of read.body) chunks.push(Buffer.from(chunk));
      expect(Buffer.concat(chunks).toString()).toBe('kept');
      expect(s3.requests.map((r) => r.verified)).toEqual([true, true, true, true, true, false]);
      expect(s3.objects.get(key)?.body.toString()).toBe('part');
      expect(refused).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
    } finally {
      await s3.close();
    }
  });
});

describe('the wire, against the SDK', () => {
  it("sends each call's method, path, query and body as the SDK's S3Client does for the same call", async () => {
    // Prepare: a loopback S3 that keeps what each request carried and answers what the call expects.
    const seen: { method: string; path: string; query: string[]; type: string | undefined; body: string }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const url = new URL(request.url ?? '/', 'http://s3');
        // The SDK names its operation in an x-id parameter S3 ignores.
        const query = [...url.searchParams].filter(([name]) => name !== 'x-id').map(([n, v]) => `${n}=${v}`);
        const body = Buffer.concat(chunks).toString('utf8');
        const type = request.method === 'POST' ? request.headers['content-type'] : undefined;
        seen.push({ method: request.method ?? '', path: url.pathname, query: query.sort(), type, body });
        const xml = url.searchParams.has('uploads')
          ? '<InitiateMultipartUploadResult><UploadId>u-1</UploadId></InitiateMultipartUploadResult>'
          : request.method === 'POST'
            ? '<CompleteMultipartUploadResult><ETag>"whole"</ETag></CompleteMultipartUploadResult>'
            : request.method === 'GET'
              ? 'kept'
              : '';
        response
          .writeHead(request.method === 'DELETE' ? 204 : 200, {
            etag: '"e-1"',
            'last-modified': new Date().toUTCString(),
          })
          .end(xml);
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
    const sdk = new S3Client({ endpoint, forcePathStyle: true, region: 'eu-west-1', credentials });
    const ours = new S3Rest({ endpoint, region: 'eu-west-1', credentials });
    const [Bucket, Key] = ['answers-bucket', 'answers/0123abcd-ef'];
    try {
      // Act: each call through the SDK, then through ours.
      await sdk.send(new PutObjectCommand({ Bucket, Key, Body: Buffer.from('answer') }));
      await ours.sendForHeaders({ method: 'PUT', bucket: Bucket, key: Key, body: Buffer.from('answer') });
      const got = await sdk.send(new GetObjectCommand({ Bucket, Key }));
      await got.Body?.transformToString();
      await readUpTo((await ours.send({ method: 'GET', bucket: Bucket, key: Key })).body, 1024);
      await sdk.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      await ours.sendForXml({ method: 'POST', bucket: Bucket, key: Key, query: { uploads: '' } });
      await sdk.send(new UploadPartCommand({ Bucket, Key, UploadId: 'u-1', PartNumber: 1, Body: Buffer.from('part') }));
      await ours.sendForHeaders({
        method: 'PUT',
        bucket: Bucket,
        key: Key,
        query: { partNumber: '1', uploadId: 'u-1' },
        body: Buffer.from('part'),
      });
      await sdk.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId: 'u-1',
          MultipartUpload: { Parts: [{ ETag: '"e-1"', PartNumber: 1 }] },
        }),
      );
      await ours.sendForXml({
        method: 'POST',
        bucket: Bucket,
        key: Key,
        query: { uploadId: 'u-1' },
        headers: { 'content-type': 'application/xml' },
        body: completeUploadBody([{ number: 1, etag: '"e-1"' }]),
      });
      await sdk.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: 'u-1' }));
      await ours.sendForHeaders({ method: 'DELETE', bucket: Bucket, key: Key, query: { uploadId: 'u-1' } });
    } finally {
      sdk.destroy();
    }
    // Assess: pairwise the same (the XML compared without the SDK's whitespace and with quotes as it escapes them).
    const xmlOf = (body: string): string => body.replace(/>\s+</g, '><').replace(/"/g, '&quot;');
    expect(seen).toHaveLength(12);
    for (let i = 0; i < seen.length; i += 2) {
      const [sdkCall, ourCall] = [seen[i], seen[i + 1]];
      expect({ ...ourCall, body: xmlOf(ourCall?.body ?? '') }, sdkCall?.method).toEqual({
        ...sdkCall,
        body: xmlOf(sdkCall?.body ?? ''),
      });
    }
  });
});

describe('review: what the SDK would not have let through', () => {
  /** A loopback S3 whose answers `answer` writes, leaving the response open if it likes; it reports each socket's close. */
  async function hand(
    answer: (request: IncomingMessage, response: import('node:http').ServerResponse, body: string) => void,
  ): Promise<{ endpoint: string; closed: Promise<void>[] }> {
    const closed: Promise<void>[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => answer(request, response, Buffer.concat(chunks).toString('utf8')));
    });
    server.on('connection', (socket) => closed.push(new Promise((resolve) => socket.on('close', () => resolve()))));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, closed };
  }
  const within = (ms: number, what: Promise<unknown>): Promise<unknown> =>
    Promise.race([what.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still open'), ms))]);

  it('lets the connection go when a replayed answer is abandoned part way (the caller went away)', async () => {
    // Prepare: S3 sends the head frame and a first chunk of a large body, then more later.
    const head = Buffer.from(JSON.stringify({ status: 200, headers: {} }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(head.length);
    const s3 = await hand((_request, response) => {
      response.writeHead(200, { 'last-modified': new Date().toUTCString(), 'content-length': String(1 << 20) });
      response.write(Buffer.concat([length, head, Buffer.from('first')]));
    });
    const store = new S3AnswerStore({ client: client(s3.endpoint), bucket: 'b' });
    // Act
    const kept = await store.get(answerRef('pool', 'request-1'));
    for await (const chunk of kept?.body ?? []) {
      expect(Buffer.from(chunk).toString()).toBe('first');
      break;
    }
    // Assess: the SDK's caller destroys Body; here the generator is the only handle the caller has.
    expect(await within(1000, s3.closed[0] ?? Promise.resolve())).toBe('closed');
  });

  it('lets the connection go when a kept head does not parse', async () => {
    // Prepare
    const s3 = await hand((_request, response) => {
      response.writeHead(200, { 'last-modified': new Date().toUTCString(), 'content-length': String(1 << 20) });
      const length = Buffer.alloc(4);
      length.writeUInt32BE(4);
      response.write(Buffer.concat([length, Buffer.from('{no}')]));
    });
    const store = new S3AnswerStore({ client: client(s3.endpoint), bucket: 'b' });
    // Act
    const failure = await store.get(answerRef('pool', 'request-2')).catch((e: unknown) => e);
    // Assess
    expect(failure).toBeInstanceOf(SyntaxError);
    expect(await within(1000, s3.closed[0] ?? Promise.resolve())).toBe('closed');
  });

  it('does not take an empty 200 to CompleteMultipartUpload for a completed upload (the SDK names it InternalError, 503, and tries again)', async () => {
    // Prepare
    let completions = 0;
    const s3 = await hand((request, response) => {
      const url = new URL(request.url ?? '/', 'http://s3');
      if (request.method === 'POST' && url.searchParams.has('uploads'))
        return response
          .writeHead(200)
          .end('<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>');
      if (request.method === 'PUT') return response.writeHead(200, { etag: '"p"' }).end();
      if (request.method === 'POST') {
        completions++;
        return response
          .writeHead(200)
          .end(
            completions === 1 ? '' : '<CompleteMultipartUploadResult><ETag>"w"</ETag></CompleteMultipartUploadResult>',
          );
      }
      return response.writeHead(204).end();
    });
    const store = new S3AnswerStore({ client: client(s3.endpoint), bucket: 'b', partBytes: 16 });
    async function* body(): AsyncIterable<Uint8Array> {
      yield await Promise.resolve(Buffer.alloc(64, 1));
    }
    // Act
    await store.put(answerRef('pool', 'request-3'), { status: 200, headers: {}, body: body() });
    // Assess
    expect(completions).toBe(2);
  });
});
