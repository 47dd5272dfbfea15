/**
 * Proxy mode on AWS: a REST API (API Gateway v1) of its own, because only a REST API streams a
 * Lambda's answer (integration response transfer mode STREAM) while keeping IAM authorization
 * per resource path, which is what lets a pool's client policy reach that pool's proxy and no
 * other (docs/proxy-aws.md gives the choice and its limits). It serves exactly
 * `POST` and `GET /pools/{pool}/proxy/{path+}`, every method behind IAM (SigV4); everything
 * else answers API Gateway's own 403/404. The other routes stay on the HTTP API.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  type Method,
  MethodLoggingLevel,
  ResponseTransferMode,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PROXY_METHODS, PROXY_PATH, proxyResourcePath } from '../../lib/http/proxy-route.js';

/**
 * How long API Gateway waits on the streamed integration, in seconds: 15 minutes, the most a
 * streamed response may last, and no more than the function's own timeout (900 s, Lambda's
 * maximum). A buffered integration could wait 29 s (more only by a quota increase that lowers
 * the account's request rate).
 */
export const PROXY_INTEGRATION_TIMEOUT_SECONDS = 900;

export interface KeypoolProxyApiProps {
  /** the proxy function (functions/proxy.ts): streams its answer with awslambda.streamifyResponse */
  handler: IFunction;
  /** the stage name, the first segment of every path (`/<stage>/pools/...`) */
  stage: string;
  throttle: { rateLimit: number; burstLimit: number };
  logRetention: RetentionDays;
  removal: 'retain' | 'destroy';
}

/**
 * The access log line: who called which pool's proxy and how it ended. The resource path (not
 * the request path: a provider path can carry a job id), no query, no body, never a secret.
 */
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    time: '$context.requestTime',
    method: '$context.httpMethod',
    resourcePath: '$context.resourcePath',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    latencyMs: '$context.responseLatency',
    integrationLatencyMs: '$context.integrationLatency',
    integrationStatus: '$context.integration.status',
    integrationError: '$context.integration.error',
    sourceIp: '$context.identity.sourceIp',
    caller: '$context.identity.userArn',
  }),
);

export class KeypoolProxyApi extends Construct {
  readonly api: RestApi;
  /** the served stage's name (the REST API's only stage) */
  readonly stageName: string;
  /** the two proxy methods, POST and GET */
  readonly methods: readonly Method[];

  constructor(scope: Construct, id: string, props: KeypoolProxyApiProps) {
    super(scope, id);
    this.stageName = props.stage;
    const removalPolicy = props.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const accessLogs = new LogGroup(this, 'access-logs', { retention: props.logRetention, removalPolicy });

    this.api = new RestApi(this, 'api', {
      // Not unique (API names need not be): what the console lists and the metrics' ApiName.
      restApiName: `keypool-${props.stage}-proxy`,
      description:
        "keypool proxy mode: calls a pool's provider with a key of the pool and streams its answer (IAM-authorized)",
      // Regional: a streamed answer may pause up to 5 minutes between bytes on a regional
      // endpoint, 30 s on an edge-optimized one (a generation takes longer than that).
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      // Every request body reaches the function base64-encoded, whatever its content type:
      // a multipart upload arrives byte for byte, never re-encoded as text.
      binaryMediaTypes: ['*/*'],
      // A REST API stage writes its access and execution logs through the account's API Gateway
      // CloudWatch role (one setting per account and region), which this creates. Kept whatever
      // the stage's removal: other REST APIs of the account log through the same setting.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stage,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: ACCESS_LOG_FORMAT,
        // Execution logs of failures only, and never a request or response body.
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
      },
      defaultMethodOptions: { authorizationType: AuthorizationType.IAM },
    });

    const integration = new LambdaIntegration(props.handler, {
      proxy: true,
      // InvokeWithResponseStream: status and headers as soon as the provider's arrive, then the
      // body as it comes; past API Gateway's 10 MB and 29 s buffered bounds.
      responseTransferMode: ResponseTransferMode.STREAM,
      timeout: Duration.seconds(PROXY_INTEGRATION_TIMEOUT_SECONDS),
      // The console's test invocations are not a way in: no permission for them.
      allowTestInvoke: false,
    });
    const validator = this.api.addRequestValidator('path-parameters', {
      requestValidatorName: 'path-parameters',
      validateRequestParameters: true,
    });
    const resource = this.api.root.resourceForPath(PROXY_PATH);
    this.methods = PROXY_METHODS.map((method) =>
      resource.addMethod(method, integration, {
        authorizationType: AuthorizationType.IAM,
        requestParameters: { 'method.request.path.pool': true, 'method.request.path.path': true },
        requestValidator: validator,
      }),
    );
  }

  /** The execute-api ARNs of one pool's proxy (POST and GET, every provider path), or of every pool's. */
  proxyArns(pool?: string): string[] {
    return PROXY_METHODS.map((method) => this.api.arnForExecuteApi(method, proxyResourcePath(pool), this.stageName));
  }

  /** execute-api:Invoke on one pool's proxy resources (or every pool's): nothing else of the API. */
  invokeStatement(pool?: string): PolicyStatement {
    return new PolicyStatement({ actions: ['execute-api:Invoke'], resources: this.proxyArns(pool) });
  }
}
