/**
 * The HTTP API (API Gateway v2), built from ROUTES in lib/http/routes.ts: each route goes to
 * the function its spec names, with IAM (SigV4) authorization unless the spec says
 * `authorized: false` (GET /health only). `$default` answers everything else through the
 * meta function (404/405 JSON), also behind IAM.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_ROUTE_FUNCTION, type FunctionName, ROUTE_KEYS, ROUTES, type RouteKey, type RouteSpec } from '../../lib/http/routes.js';

/** The routes a calling application needs: lease, complete, count a use. */
export const CLIENT_ROUTES = ['POST /leases', 'POST /leases/{leaseId}/complete', 'POST /keys/{keyId}/usage'] as const satisfies readonly RouteKey[];

/** The stage every route is served from: the API's root URL. */
export const STAGE_NAME = '$default';

export interface KeypoolHttpApiProps {
  handlers: Record<FunctionName, IFunction>;
  throttle: { rateLimit: number; burstLimit: number };
  logRetention: RetentionDays;
  removal: 'retain' | 'destroy';
}

/** A construct id from a route key: `POST /leases/{leaseId}/complete` -> `post-leases-lease-id-complete`. */
export function routeId(routeKey: string): string {
  return routeKey
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/**
 * The access log line: who called which route and how it ended. No request or response
 * body, no query string and no path (paths carry key and lease ids); never a secret.
 */
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    time: '$context.requestTime',
    routeKey: '$context.routeKey',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    latencyMs: '$context.responseLatency',
    integrationLatencyMs: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
    sourceIp: '$context.identity.sourceIp',
    caller: '$context.identity.userArn',
    authError: '$context.authorizer.error',
  }),
);

export class KeypoolHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly clientPolicy: ManagedPolicy;
  readonly adminPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: KeypoolHttpApiProps) {
    super(scope, id);
    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integration = (name: FunctionName): HttpLambdaIntegration => {
      let found = integrations.get(name);
      if (!found) {
        found = new HttpLambdaIntegration(`${name}-integration`, props.handlers[name]);
        integrations.set(name, found);
      }
      return found;
    };
    const iam = new HttpIamAuthorizer();

    this.api = new HttpApi(this, 'api', {
      description: 'keypool: lease API keys from the pool (IAM-authorized)',
      createDefaultStage: false,
      defaultAuthorizer: iam,
      // `$default`: unmatched requests get the meta function's JSON 404/405, still behind IAM.
      defaultIntegration: integration(DEFAULT_ROUTE_FUNCTION),
    });

    const accessLogs = new LogGroup(this, 'access-logs', {
      retention: props.logRetention,
      removalPolicy: props.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, 'stage', {
      httpApi: this.api,
      stageName: STAGE_NAME,
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: ACCESS_LOG_FORMAT },
    });

    for (const routeKey of ROUTE_KEYS) {
      const spec: RouteSpec = ROUTES[routeKey];
      new HttpRoute(this, routeId(routeKey), {
        httpApi: this.api,
        routeKey: HttpRouteKey.with(spec.path, HttpMethod[spec.method]),
        integration: integration(spec.function),
        // Only GET /health is open (a load balancer or uptime check carries no credentials).
        authorizer: spec.authorized ? iam : new HttpNoneAuthorizer(),
      });
    }

    this.clientPolicy = new ManagedPolicy(this, 'client-policy', {
      description: 'keypool-client: lease a key, complete the lease, count a use',
      statements: [this.invokeStatement(CLIENT_ROUTES)],
    });
    this.adminPolicy = new ManagedPolicy(this, 'admin-policy', {
      description: 'keypool-admin: every route of the keypool API',
      statements: [this.invokeStatement(ROUTE_KEYS)],
    });
  }

  /** The execute-api ARN of one route on the served stage; a path parameter becomes `*`. */
  routeArn(routeKey: RouteKey): string {
    const spec: RouteSpec = ROUTES[routeKey];
    return this.api.arnForExecuteApi(spec.method, spec.path.replace(/\{[^}]+\}/g, '*'), STAGE_NAME);
  }

  private invokeStatement(routeKeys: readonly RouteKey[]): PolicyStatement {
    return new PolicyStatement({ actions: ['execute-api:Invoke'], resources: routeKeys.map((key) => this.routeArn(key)) });
  }
}
