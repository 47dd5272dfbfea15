/**
 * The fake S3 checks SigV4 as S3 does: what the official SDK signs passes (a key that needs
 * encoding, a query that needs encoding, a streamed aws-chunked body, a multipart upload), and
 * what S3 would refuse is refused with S3's code — another secret, another key id, another
 * session token or region, a body changed after signing, a path spelled otherwise than signed.
 * So a test that passes against the fake says a signer is right, not merely that it signs.
 */
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeS3, type FakeS3Request, startFakeS3 } from '../support/fake-s3.js';

const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const KEY = 'answers/a b+c~d';
let s3: FakeS3;

beforeAll(async () => {
  s3 = await startFakeS3();
});

afterAll(async () => {
  await s3.close();
});

function client(
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = CREDENTIALS,
  endpoint = s3.endpoint,
  region = 'us-east-1',
): S3Client {
  return new S3Client({ endpoint, forcePathStyle: true, region, credentials, maxAttempts: 1 });
}

/** Sends a recorded request's headers again over plain HTTP with `body` (the fake keeps none); resolves with S3's status and error code. */
async function replay(
  recorded: FakeS3Request,
  body: string,
  url = recorded.url,
): Promise<{ status: number; code: string | undefined }> {
  const { connection: _connection, ...headers } = recorded.headers;
  return new Promise((resolve, reject) => {
    const sent = httpRequest(`${s3.endpoint}${url}`, { method: recorded.method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: response.statusCode ?? 0, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1] });
      });
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

const since = (before: number): FakeS3Request[] => s3.requests.slice(before);

describe('the fake S3 signature check', () => {
  it("accepts the SDK's PutObject and GetObject of a key that needs encoding, and its encoded query", async () => {
    // Prepare
    const before = s3.requests.length;
    // Act
    await client().send(new PutObjectCommand({ Bucket: 'answers', Key: KEY, Body: Buffer.from('hello') }));
    const got = await client().send(
      new GetObjectCommand({
        Bucket: 'answers',
        Key: KEY,
        ResponseContentDisposition: `attachment; filename="a b (1)*'!.png"`,
      }),
    );
    // Assess
    expect(await got.Body?.transformToString()).toBe('hello');
    expect(s3.objects.get(KEY)?.body.toString()).toBe('hello');
    const requests = since(before);
    expect(requests.map((r) => [r.method, r.key, r.verified])).toEqual([
      ['PUT', KEY, true],
      ['GET', KEY, true],
    ]);
    expect(requests[0]?.url).toMatch(/^\/answers\/answers\/a%20b%2Bc~d\?/);
    expect(requests[1]?.query.get('response-content-disposition')).toContain('filename="a b (1)');
  });

  it('accepts a streamed body the SDK sends aws-chunked with a trailing checksum, and keeps what it decodes', async () => {
    // Prepare
    const before = s3.requests.length;
    const Body = Readable.from([Buffer.from('streamed '), Buffer.from('body')]);
    // Act
    await client().send(new PutObjectCommand({ Bucket: 'answers', Key: 'answers/streamed', Body, ContentLength: 13 }));
    // Assess
    const [put] = since(before);
    expect(put?.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(put?.verified).toBe(true);
    expect(s3.objects.get('answers/streamed')?.body.toString()).toBe('streamed body');
  });

  it("accepts the SDK's multipart upload: create, a part, complete", async () => {
    // Prepare
    const before = s3.requests.length;
    const target = { Bucket: 'answers', Key: 'answers/parts one+two', ChecksumAlgorithm: 'CRC32' } as const;
    // Act
    const { UploadId } = await client().send(new CreateMultipartUploadCommand(target));
    const part = await client().send(
      new UploadPartCommand({ ...target, UploadId, PartNumber: 1, Body: Buffer.from('one part') }),
    );
    await client().send(
      new CompleteMultipartUploadCommand({
        Bucket: target.Bucket,
        Key: target.Key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32 }] },
      }),
    );
    // Assess
    expect(s3.objects.get(target.Key)?.body.toString()).toBe('one part');
    expect(since(before).map((r) => r.verified)).toEqual([true, true, true]);
  });

  it('refuses another secret with SignatureDoesNotMatch and another key id with InvalidAccessKeyId, storing nothing', async () => {
    // Prepare
    const before = s3.requests.length;
    const put = (credentials: typeof CREDENTIALS): Promise<unknown> =>
      client(credentials).send(new PutObjectCommand({ Bucket: 'answers', Key: 'answers/refused', Body: 'x' }));
    // Act: each refusal settled before the next put starts.
    const wrongSecret = await put({ ...CREDENTIALS, secretAccessKey: 'other-secret' }).catch((e: unknown) => e);
    const wrongKeyId = await put({ ...CREDENTIALS, accessKeyId: 'AKIDOTHER' }).catch((e: unknown) => e);
    // Assess
    expect(wrongSecret).toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    expect(wrongKeyId).toMatchObject({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
    expect(since(before).map((r) => r.verified)).toEqual([false, false]);
    expect(s3.objects.has('answers/refused')).toBe(false);
  });

  it('refuses a signed request sent again with another body, or its path spelled otherwise; takes it as signed', async () => {
    // Prepare
    await client().send(new PutObjectCommand({ Bucket: 'answers', Key: KEY, Body: Buffer.from('hello') }));
    const signed = s3.requests.at(-1);
    if (!signed) throw new Error('the put was not recorded');
    // Act
    const otherBody = await replay(signed, 'jello');
    const otherPath = await replay(signed, 'hello', signed.url.replace('~', '%7E'));
    const unchanged = await replay(signed, 'hello');
    // Assess: the same length, so the signed content-length holds and the body hash is what fails
    expect(otherBody).toEqual({ status: 400, code: 'XAmzContentSHA256Mismatch' });
    expect(otherPath).toEqual({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(unchanged).toEqual({ status: 200, code: undefined });
    expect(s3.objects.get(KEY)?.body.toString()).toBe('hello');
  });

  it('takes a query spelled otherwise than the signer encoded it, as S3 re-encodes what arrived', async () => {
    // Prepare
    await client().send(
      new GetObjectCommand({ Bucket: 'answers', Key: KEY, ResponseContentDisposition: 'inline; filename=a~b' }),
    );
    const signed = s3.requests.at(-1);
    if (!signed) throw new Error('the get was not recorded');
    // Act
    const [path, query = ''] = signed.url.split('?');
    const respelled = await replay(signed, '', `${path}?${query.replace('%3B', ';').replace('~', '%7e')}`);
    // Assess
    expect(query).toContain('%3B');
    expect(query).toContain('~');
    expect(respelled).toEqual({ status: 200, code: undefined });
  });

  it('refuses an unsigned request, and an x-amz- header added after signing', async () => {
    // Prepare
    await client().send(new PutObjectCommand({ Bucket: 'answers', Key: KEY, Body: Buffer.from('hello') }));
    const signed = s3.requests.at(-1);
    if (!signed) throw new Error('the put was not recorded');
    const { authorization: _authorization, ...bare } = signed.headers;
    // Act
    const unsigned = await replay({ ...signed, headers: bare }, 'hello');
    const added = await replay({ ...signed, headers: { ...signed.headers, 'x-amz-meta-late': 'yes' } }, 'hello');
    // Assess
    expect(unsigned).toEqual({ status: 403, code: 'AccessDenied' });
    expect(added).toEqual({ status: 403, code: 'AccessDenied' });
  });

  it('signs only for its own session token and region', async () => {
    // Prepare
    const temporary = await startFakeS3({
      credentials: { ...CREDENTIALS, sessionToken: 'token-1' },
      region: 'eu-west-1',
    });
    const put = (sessionToken: string | undefined, region: string): Promise<unknown> =>
      client({ ...CREDENTIALS, ...(sessionToken ? { sessionToken } : {}) }, temporary.endpoint, region).send(
        new PutObjectCommand({ Bucket: 'answers', Key: 'answers/t', Body: 'x' }),
      );
    try {
      // Act: one after another, each settled before the next (a refusal left pending while another
      // is awaited is an unhandled rejection).
      const settle = (answer: Promise<unknown>): Promise<unknown> => answer.catch((error: unknown) => error);
      const right = await settle(put('token-1', 'eu-west-1'));
      const otherToken = await settle(put('token-2', 'eu-west-1'));
      const noToken = await settle(put(undefined, 'eu-west-1'));
      const otherRegion = await settle(put('token-1', 'us-east-1'));
      // Assess
      expect(right).not.toBeInstanceOf(Error);
      expect(otherToken).toMatchObject({ name: 'InvalidToken' });
      expect(noToken).toMatchObject({ name: 'InvalidToken' });
      expect(otherRegion).toMatchObject({ name: 'AuthorizationHeaderMalformed' });
      expect(temporary.requests.map((r) => r.verified).sort()).toEqual([false, false, false, true]);
    } finally {
      await temporary.close();
    }
  });
});
