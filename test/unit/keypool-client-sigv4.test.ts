/** KeypoolClient signs requests to a deployed API with SigV4 exactly as sent; the local stack gets plain HTTP. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeypoolApiError, KeypoolClient } from '../../lib/client/keypool-client.js';

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let url = '';
/** When set, every other path answers 307 to this one (which then answers a lease). */
let redirectTo: string | undefined;
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  request.on('end', () => {
    seen.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
    if (redirectTo !== undefined && request.url !== redirectTo) {
      response.writeHead(307, { location: redirectTo, 'content-length': 0 });
      response.end();
      return;
    }
    const lease = request.url === '/leases' || request.url === redirectTo;
    response.writeHead(lease ? 200 : 410, { 'content-type': 'application/json' });
    response.end(JSON.stringify(lease ? { leaseId: 'l', keyId: 'k', apiKey: 'sk-test-x', pool: 'p', usageCount: 0, expiresAt: new Date().toISOString() } : { error: 'lease_expired', message: 'lease "x" expired' }));
  });
});

beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('KeypoolClient', () => {
  it('signs with SigV4 for execute-api: the signature recomputed from what arrived matches', async () => {
    // Prepare
    const client = new KeypoolClient({ url, signing: 'sigv4', region: 'eu-west-1', credentials });
    seen.length = 0;
    // Act
    await client.lease({ pool: 'p', maxUses: 3 });
    // Assess
    const request = seen[0];
    if (!request) throw new Error('nothing arrived');
    const authorization = String(request.headers.authorization);
    expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/);
    const amzDate = String(request.headers['x-amz-date']);
    const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
    const signedNames = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
    const headers = Object.fromEntries(signedNames.map((name) => [name, String(request.headers[name])]));
    const signer = new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials, sha256: Sha256 });
    const again = await signer.sign(
      new HttpRequest({ method: request.method, protocol: 'http:', hostname: '127.0.0.1', path: request.path, headers, body: request.body }),
      { signingDate },
    );
    expect(again.headers.authorization).toBe(authorization);
    expect(JSON.parse(request.body)).toEqual({ pool: 'p', maxUses: 3 });
  });

  it('speaks plain HTTP to a loopback URL, and maps an error answer to a typed error with the API code', async () => {
    // Prepare
    const client = new KeypoolClient({ url });
    seen.length = 0;
    // Act
    const error = await client.complete('x', 'success').catch((e: unknown) => e);
    // Assess
    expect(seen[0]?.headers.authorization).toBeUndefined();
    expect(error).toBeInstanceOf(KeypoolApiError);
    expect(error).toMatchObject({ code: 'lease_expired', status: 410 });
  });

  it('never follows a redirect: the signed request is not resent and a 3xx is an error', async () => {
    // Prepare
    const client = new KeypoolClient({ url, signing: 'sigv4', region: 'eu-west-1', credentials });
    seen.length = 0;
    redirectTo = '/elsewhere';
    // Act
    const error = await client.lease({ maxUses: 3 }).catch((e: unknown) => e).finally(() => (redirectTo = undefined));
    // Assess
    expect(seen.map((r) => r.path)).not.toContain('/elsewhere');
    expect(seen).toHaveLength(1);
    expect(error).toBeInstanceOf(KeypoolApiError);
    expect(error).toMatchObject({ code: 'redirect', status: 307 });
  });

  it('refuses SigV4 without a region rather than signing for the wrong one', () => {
    // Prepare
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      // Act / Assess
      expect(() => new KeypoolClient({ url: 'https://keypool.example.com', credentials })).toThrow(/region/);
      expect(() => new KeypoolClient({ url: 'https://abc123.execute-api.ap-south-1.amazonaws.com', credentials })).not.toThrow();
    } finally {
      if (saved.r !== undefined) process.env.AWS_REGION = saved.r;
      if (saved.d !== undefined) process.env.AWS_DEFAULT_REGION = saved.d;
    }
  });
});
