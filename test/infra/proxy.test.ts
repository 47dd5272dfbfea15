/**
 * Proxy mode on AWS, asserted on the synthesized templates (prod, offline, cdk-nag included):
 * a REST API whose two proxy methods stream the function's answer (STREAM, 15 minutes) behind
 * IAM, each pool's client policy reaching exactly that pool's proxy resources, the function's
 * timeout and grants, the answers bucket (lifecycle, SSE-KMS, public access blocked, TLS only)
 * and the alarms that watch proxy traffic. docs/proxy-aws.md says why this shape.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_POINTS } from '../../infra/entry-points.js';
import { buildKeypoolApp, type KeypoolApp } from '../../infra/keypool-app.js';
import { ProxyTimeoutSeconds } from '../../lib/domain/primitives.js';
import { ANSWERS_BUCKET_ENV } from '../../lib/domain/proxy-names.js';
import { iamMatches, joinTail, type Json, NO_BUNDLING, resource, resources } from '../support/templates.js';

const PROD_CONTEXT = { ...NO_BUNDLING, stage: 'prod', pools: 'a:3,b:2,sdxl-turbo:1' };
const POOLS = ['a', 'b', 'sdxl-turbo'];
/** The largest pool proxyTimeoutSeconds (issue 21: 1..600): the function must outlive such a call. */
const MAX_PROXY_TIMEOUT_SECONDS = 600;
/** The largest pool proxyTimeoutSeconds the domain takes (a policy can ask no more). */
const domainAcceptsUpTo = (seconds: number): boolean =>
  ProxyTimeoutSeconds.safeParse(seconds).success && !ProxyTimeoutSeconds.safeParse(seconds + 1).success;
/** Lambda's and a streamed API Gateway integration's most, in seconds. */
const PLATFORM_MAX_SECONDS = 900;

let built: KeypoolApp;
let data: Template;
let api: Template;

beforeAll(() => {
  // Prepare / Act: cdk-nag runs in synth, so a synthesis without a throw is the nag check.
  built = buildKeypoolApp({ context: PROD_CONTEXT, builtinCloudFormationValidation: false });
  built.app.synth();
  data = Template.fromStack(built.stateful);
  api = Template.fromStack(built.stateless);
});

const restApiId = (): string => resources(api, 'AWS::ApiGateway::RestApi')[0]?.[0] ?? '';
const stageId = (): string => resources(api, 'AWS::ApiGateway::Stage')[0]?.[0] ?? '';
const proxyFunctionId = (): string =>
  resources(api, 'AWS::Lambda::Function').find(([id]) => id.startsWith('proxyfunctionfn'))?.[0] ?? '';

/** The proxy ARN tails a caller policy allows on the REST API, and every other statement's resources. */
function proxyGrants(policyName: string): { proxy: string[]; statements: number } {
  const [[, policy] = ['', undefined]] = resources(api, 'AWS::IAM::ManagedPolicy').filter(
    ([, p]) => p.Properties.ManagedPolicyName === policyName,
  );
  const statements = (policy?.Properties.PolicyDocument as { Statement: Json[] }).Statement;
  const onRest = statements.filter((s) => JSON.stringify(s.Resource).includes(`{"Ref":"${restApiId()}"}`));
  expect(onRest, policyName).toHaveLength(1);
  expect(onRest[0]).toMatchObject({ Effect: 'Allow', Action: 'execute-api:Invoke' });
  return { proxy: (onRest[0]?.Resource as unknown[]).map(joinTail).sort(), statements: statements.length };
}

/** What an application sends to a pool's proxy: a generation, a poll, a v1 call. */
const proxyRequests = (pool: string): string[] => [
  `/prod/POST/pools/${pool}/proxy/v2beta/stable-image/generate/core`,
  `/prod/GET/pools/${pool}/proxy/v2beta/results/0123abc`,
  `/prod/POST/pools/${pool}/proxy/v1/generation/sd/text-to-image`,
];

describe('the proxy REST API', () => {
  it('is regional and takes every body as binary (base64 to the function, multipart byte for byte)', () => {
    // Assess
    const [[, rest] = ['', undefined]] = resources(api, 'AWS::ApiGateway::RestApi');
    expect(resources(api, 'AWS::ApiGateway::RestApi')).toHaveLength(1);
    expect(rest?.Properties).toMatchObject({
      Name: 'keypool-prod-proxy',
      EndpointConfiguration: { Types: ['REGIONAL'] },
      BinaryMediaTypes: ['*/*'],
    });
  });

  it('serves exactly POST and GET on /pools/{pool}/proxy/{path+}, nothing on any other resource', () => {
    // Prepare
    const byId = new Map(resources(api, 'AWS::ApiGateway::Resource').map(([id, r]) => [id, r.Properties]));
    const pathOf = (id: string): string => {
      const props = byId.get(id);
      if (!props) return '';
      const parent = (props.ParentId as Json).Ref as string | undefined;
      return `${parent ? pathOf(parent) : ''}/${String(props.PathPart)}`;
    };
    // Act
    const methods = resources(api, 'AWS::ApiGateway::Method').map(([, m]) => [
      m.Properties.HttpMethod,
      pathOf(String((m.Properties.ResourceId as Json).Ref)),
    ]);
    // Assess
    expect(methods.sort()).toEqual([
      ['GET', '/pools/{pool}/proxy/{path+}'],
      ['POST', '/pools/{pool}/proxy/{path+}'],
    ]);
  });

  it('requires IAM (SigV4) on every method, with the pool and the provider path validated as present', () => {
    for (const [, method] of resources(api, 'AWS::ApiGateway::Method')) {
      // Assess
      expect(method.Properties.AuthorizationType).toBe('AWS_IAM');
      expect(method.Properties.RequestParameters).toEqual({
        'method.request.path.pool': true,
        'method.request.path.path': true,
      });
      expect(method.Properties.RequestValidatorId).toBeDefined();
    }
  });

  it("streams the proxy function's answer: a Lambda proxy integration in STREAM mode over InvokeWithResponseStream, for 15 minutes", () => {
    for (const [, method] of resources(api, 'AWS::ApiGateway::Method')) {
      // Prepare
      const integration = method.Properties.Integration as Json;
      // Assess
      expect(integration).toMatchObject({
        Type: 'AWS_PROXY',
        IntegrationHttpMethod: 'POST',
        ResponseTransferMode: 'STREAM',
        TimeoutInMillis: PLATFORM_MAX_SECONDS * 1000,
      });
      const uri = JSON.stringify(integration.Uri);
      expect(uri).toContain('/2021-11-15/functions/');
      expect(uri).toContain('/response-streaming-invocations');
      expect(uri).toContain(proxyFunctionId());
    }
  });

  it('runs the function long enough for the longest provider call a pool may ask for, within what Lambda and the integration allow', () => {
    // Prepare
    const fn = resource(api, proxyFunctionId()).Properties;
    const [[, method] = ['', undefined]] = resources(api, 'AWS::ApiGateway::Method');
    const integrationSeconds = ((method?.Properties.Integration as Json).TimeoutInMillis as number) / 1000;
    // Assess: the provider call (<= 600 s) plus the lease before it and the kept answer after it.
    expect(domainAcceptsUpTo(MAX_PROXY_TIMEOUT_SECONDS)).toBe(true);
    expect(fn.Timeout).toBe(ENTRY_POINTS.proxy.timeoutSeconds);
    expect(fn.Timeout as number).toBeGreaterThanOrEqual(MAX_PROXY_TIMEOUT_SECONDS + 60);
    expect(fn.Timeout as number).toBeLessThanOrEqual(PLATFORM_MAX_SECONDS);
    expect(integrationSeconds).toBeGreaterThanOrEqual(fn.Timeout as number);
    expect(integrationSeconds).toBeLessThanOrEqual(PLATFORM_MAX_SECONDS);
  });

  it('lets only API Gateway invoke the function, only through the two proxy methods of this API', () => {
    // Prepare
    const permissions = resources(api, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => JSON.stringify(p.FunctionName).includes(proxyFunctionId()));
    // Assess: no test-invoke permission, one per method, on the deployed stage of this API.
    expect(permissions.map((p) => [p.Principal, p.Action, joinTail(p.SourceArn)]).sort()).toEqual([
      ['apigateway.amazonaws.com', 'lambda:InvokeFunction', '/GET/pools/*/proxy/*'],
      ['apigateway.amazonaws.com', 'lambda:InvokeFunction', '/POST/pools/*/proxy/*'],
    ]);
    for (const p of permissions) {
      expect(JSON.stringify(p.SourceArn)).toContain(`{"Ref":"${restApiId()}"}`);
      expect(JSON.stringify(p.SourceArn)).toContain(`{"Ref":"${stageId()}"}`);
    }
  });

  it('throttles the stage, logs access without bodies, queries or request paths, and execution errors without data', () => {
    // Prepare
    const [[, stage] = ['', undefined]] = resources(api, 'AWS::ApiGateway::Stage');
    const format = ((stage?.Properties.AccessLogSetting as Json | undefined)?.Format ?? '') as string;
    // Assess
    expect(stage?.Properties).toMatchObject({
      StageName: 'prod',
      MethodSettings: [
        {
          HttpMethod: '*',
          ResourcePath: '/*',
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
          // The stage's setting, as on the HTTP API (docs/scaling.md: the table, not the gateway, limits a pool).
          ThrottlingRateLimit: 1000,
          ThrottlingBurstLimit: 2000,
        },
      ],
    });
    expect(Object.keys(JSON.parse(format) as Json)).toEqual(expect.arrayContaining(['requestId', 'caller', 'status']));
    expect(format).not.toMatch(/body|\$context\.path\b|querystring/i);
  });

  it("logs through the account's API Gateway CloudWatch role, kept when the stack goes (other APIs of the account use it)", () => {
    // Prepare
    const [[accountId, account] = ['', undefined]] = resources(api, 'AWS::ApiGateway::Account');
    const roleId = ((account?.Properties.CloudWatchRoleArn as Json)['Fn::GetAtt'] as string[])[0] ?? '';
    // Assess
    expect(accountId).not.toBe('');
    expect(resource(api, roleId).DeletionPolicy).toBe('Retain');
  });

  it("outputs its base URL, the stage included: the client's proxyUrl", () => {
    // Prepare
    const outputs = (api.toJSON() as { Outputs: Record<string, { Value: unknown }> }).Outputs;
    // Assess
    expect(JSON.stringify(outputs.ProxyUrl?.Value)).toContain(`{"Ref":"${restApiId()}"}`);
    expect(JSON.stringify(outputs.ProxyUrl?.Value)).toContain('.execute-api.');
    expect(JSON.stringify(outputs.ProxyUrl?.Value)).toContain(`{"Ref":"${stageId()}"}`);
    expect(resource(api, stageId()).Properties.StageName).toBe('prod');
  });
});

describe("each pool's client policy and the proxy", () => {
  it("lets keypool-client-<pool> invoke exactly that pool's proxy, POST and GET, any provider path", () => {
    for (const pool of POOLS) {
      // Act
      const { proxy, statements } = proxyGrants(`keypool-client-${pool}`);
      // Assess: the HTTP API's client routes and the proxy, nothing else.
      expect(statements).toBe(2);
      expect(proxy).toEqual([`/prod/GET/pools/${pool}/proxy/*`, `/prod/POST/pools/${pool}/proxy/*`]);
      for (const request of proxyRequests(pool))
        expect(
          proxy.some((p) => iamMatches(p, request)),
          request,
        ).toBe(true);
    }
  });

  it("never lets pool a's policy proxy through pool b, a pool whose name extends a, or another method", () => {
    for (const pool of POOLS) {
      // Prepare
      const { proxy } = proxyGrants(`keypool-client-${pool}`);
      const foreign = [
        ...POOLS.filter((other) => other !== pool).flatMap(proxyRequests),
        ...proxyRequests(`${pool}2`),
        ...proxyRequests(`${pool}.old`),
        ...proxyRequests(`x${pool}`),
        `/prod/PUT/pools/${pool}/proxy/v2beta/stable-image/generate/core`,
        `/prod/DELETE/pools/${pool}/proxy/v2beta/results/0123abc`,
        `/prod/POST/pools/${pool}/leases`,
        `/other/POST/pools/${pool}/proxy/v2beta/stable-image/generate/core`,
      ];
      // Assess
      for (const request of foreign)
        expect(
          proxy.filter((p) => iamMatches(p, request)),
          `${pool} -> ${request}`,
        ).toEqual([]);
    }
  });

  it("lets the operator's policy proxy through every pool", () => {
    // Act
    const { proxy } = proxyGrants('keypool-admin');
    // Assess
    expect(proxy).toEqual(['/prod/GET/pools/*/proxy/*', '/prod/POST/pools/*/proxy/*']);
  });
});

describe('the proxy function', () => {
  /** Every statement of the proxy function's role. */
  const statements = (): Json[] => {
    const roleId = ((resource(api, proxyFunctionId()).Properties.Role as Json)['Fn::GetAtt'] as string[])[0];
    return resources(api, 'AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Json[] }).Statement);
  };

  it('knows its provider and its answers bucket from the environment, and publishes metrics', () => {
    // Prepare
    const env = (resource(api, proxyFunctionId()).Properties.Environment as { Variables: Json }).Variables;
    // Assess
    expect(env).toMatchObject({
      STABILITY_API_BASE_URL: 'https://api.stability.ai',
      POWERTOOLS_METRICS_NAMESPACE: 'keypool',
    });
    expect(JSON.stringify(env[ANSWERS_BUCKET_ENV])).toMatch(/Fn::ImportValue.*proxyanswers/);
  });

  it('writes and reads only the objects under answers/ of the answers bucket, and uses its key through S3 only', () => {
    // Prepare
    const s3 = statements().filter((s) => JSON.stringify(s.Action).includes('s3:'));
    const answersKey = resources(data, 'AWS::KMS::Key').find(([id]) => id.startsWith('answerskey'))?.[0] ?? '';
    const onKey = statements().filter((s) => JSON.stringify(s.Resource).includes(answersKey));
    // Assess: objects under answers/ only; ListBucket on that one bucket, so that an answer not
    // kept yet is a 404 to a retry, not a 403
    expect(s3).toHaveLength(2);
    expect([s3[0]?.Action].flat().sort()).toEqual(['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject']);
    expect(JSON.stringify(s3[0]?.Resource)).toMatch(
      /^\{"Fn::Join":\["",\[\{"Fn::ImportValue":"keypool-prod-answers-bucket-arn"\},"\/answers\/\*"\]\]\}$/,
    );
    expect([s3[1]?.Action].flat()).toEqual(['s3:ListBucket']);
    expect(JSON.stringify(s3[1]?.Resource)).toBe('{"Fn::ImportValue":"keypool-prod-answers-bucket-arn"}');
    expect(onKey).toHaveLength(1);
    expect([onKey[0]?.Action].flat().sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(JSON.stringify(onKey[0]?.Condition)).toContain('"kms:ViaService"');
    expect(JSON.stringify(onKey[0]?.Condition)).toContain('s3.');
  });
});

describe('the answers bucket', () => {
  const bucket = (): Json => resources(data, 'AWS::S3::Bucket')[0]?.[1].Properties ?? {};

  it('keeps answers one day (a 24 h idempotency record always finds its answer), and drops unfinished uploads', () => {
    // Assess
    expect(resources(data, 'AWS::S3::Bucket')).toHaveLength(1);
    expect((bucket().LifecycleConfiguration as Json).Rules).toEqual([
      {
        Id: 'answers-expire',
        Status: 'Enabled',
        ExpirationInDays: 1,
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      },
    ]);
    expect(bucket().VersioningConfiguration).toBeUndefined();
  });

  it('encrypts with its own customer-managed key (SSE-KMS, a bucket key), usable through S3 only', () => {
    // Prepare
    const [[keyId, key] = ['', undefined]] = resources(data, 'AWS::KMS::Key').filter(([id]) =>
      id.startsWith('answerskey'),
    );
    const statements = (key?.Properties.KeyPolicy as { Statement: Json[] }).Statement;
    // Assess
    expect(bucket().BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } },
        },
      ],
    });
    expect(key?.Properties.EnableKeyRotation).toBe(true);
    const use = statements.find((s) => s.Sid === 'AccountUsesTheKeyThroughS3Only');
    expect([use?.Action].flat().sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(JSON.stringify(use?.Condition)).toContain('kms:ViaService');
    expect(statements.map((s) => s.Sid).sort()).toEqual(['AccountAdministersTheKey', 'AccountUsesTheKeyThroughS3Only']);
  });

  it('blocks public access, enforces the owner, refuses plain HTTP, and is retained in prod', () => {
    // Prepare
    const [[, policy] = ['', undefined]] = resources(data, 'AWS::S3::BucketPolicy');
    const deny = (policy?.Properties.PolicyDocument as { Statement: Json[] }).Statement.find(
      (s) => s.Effect === 'Deny',
    );
    const [[, raw] = ['', undefined]] = resources(data, 'AWS::S3::Bucket');
    // Assess
    expect(bucket().PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket().OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(deny).toMatchObject({ Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    expect([raw?.DeletionPolicy, raw?.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
  });
});

describe('alarms on proxy traffic', () => {
  const alarms = (): Json[] => resources(api, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);

  it("pages on the 5xx the proxy answers for keypool's own faults, never on the provider's passed through, beside the HTTP API's 5xx", () => {
    // Prepare: the REST API's 5XXError counts a provider's 5xx passed through and the 502/504 of
    // a provider out of reach: a provider outage, not keypool failing.
    const rest5xx = alarms().filter((a) => a.Namespace === 'AWS/ApiGateway' && a.MetricName === '5XXError');
    const own5xx = alarms().filter((a) => a.Namespace === 'keypool' && a.MetricName === 'ProxyKeypool5xx');
    // Assess: keypool's count, published by the proxy function with no dimension (no pool may be named).
    expect(rest5xx).toEqual([]);
    expect(own5xx).toHaveLength(1);
    expect(own5xx[0]).toMatchObject({
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Period: 300,
      TreatMissingData: 'notBreaching',
    });
    expect(own5xx[0]?.Dimensions).toBeUndefined();
    expect(alarms().filter((a) => a.Namespace === 'AWS/ApiGateway' && a.MetricName === '5xx')).toHaveLength(1);
  });

  it("pages on a dry pool whichever route found it dry, and on the proxy function's errors and throttles", () => {
    // Assess: NoUsableKey is the pool's count, published by the lease and proxy functions alike.
    const dry = alarms().filter((a) => a.MetricName === 'NoUsableKey');
    expect(dry.map((a) => (a.Dimensions as Json[])[0]?.Value)).toEqual(POOLS);
    for (const alarm of dry) expect(alarm.AlarmDescription).toContain('proxy');
    for (const metric of ['Errors', 'Throttles'])
      expect(
        alarms().filter(
          (a) => a.MetricName === metric && JSON.stringify(a.Dimensions).includes(`{"Ref":"${proxyFunctionId()}"}`),
        ),
        metric,
      ).toHaveLength(1);
  });
});
